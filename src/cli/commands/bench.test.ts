// SPDX-License-Identifier: Apache-2.0
/**
 * `avp bench blk` as a program: runs a case against a back-end it starts itself and prints the
 * figures (as JSON here). Only the shape is checked: tests never assert on time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AVP_BIN } from '../testing/backend-process.js';

function avp(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AVP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bench blk: --exec, a short case, JSON figures; usage errors in one line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'disk.img');
  writeFileSync(img, Buffer.alloc(4 << 20, 1));
  const exec = `${JSON.stringify(process.execPath)} ${AVP_BIN} serve blk --socket-path {socket} --image ${img}`;
  const r = await avp(['bench', 'blk', '--exec', exec, '--seconds', '0.2', '--cases', 'randread-4k-qd1,randwrite-4k-qd32', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(r.stdout) as Array<{ name: string; ios: number; iops: number; mbps: number; p50us: number; p99us: number; errors: number }>;
  assert.deepEqual(results.map((x) => x.name), ['randread-4k-qd1', 'randwrite-4k-qd32']);
  for (const x of results) {
    assert.ok(x.ios > 0 && x.iops > 0 && x.mbps > 0, x.name);
    assert.ok(x.p99us >= x.p50us, x.name);
    assert.equal(x.errors, 0, x.name);
  }
  const bad = await avp(['bench', 'blk', '--exec', exec, '--cases', 'randread-9k']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^avp: bench blk: unknown case\(s\) randread-9k/);
});
