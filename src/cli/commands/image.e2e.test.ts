// SPDX-License-Identifier: Apache-2.0
/**
 * `avp image build --out DIR` end to end: builds (or takes from the cache) the guest image and
 * copies it out; the printed paths and sizes match the files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const AVP = fileURLToPath(new URL('../../../bin/avp.js', import.meta.url));

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AVP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('avp image build --out DIR prints the kernel and initramfs with their sizes', { timeout: 600_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'avp-cli-image-e2e-'));
  try {
    const r = await run(['image', 'build', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /avp image: resolving linux-image-6\.12-amd64/);
    const kernel = /^kernel\s+(\S+) ([\d.]+ [KM]iB)$/m.exec(r.stdout);
    const initramfs = /^initramfs\s+(\S+) ([\d.]+ [KM]iB)$/m.exec(r.stdout);
    assert.ok(kernel && initramfs, r.stdout);
    assert.equal(kernel[1], join(out, 'vmlinuz'));
    assert.equal(initramfs[1], join(out, 'initramfs.cpio.gz'));
    assert.ok((await stat(join(out, 'vmlinuz'))).size > 1 << 20);
    assert.ok((await stat(join(out, 'initramfs.cpio.gz'))).size > 100 << 10);
    assert.match(r.stdout, /^release 6\.12\.\S+, \d+ modules \(built: gpio-virtio i2c-virtio\), command line up to \d+ bytes, (from cache|built) in/m);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
