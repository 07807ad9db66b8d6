// SPDX-License-Identifier: Apache-2.0
/**
 * The whole conformance catalog against AVP's own back-ends, started as real programs
 * (`avp serve rng`, `avp serve blk`, writable and read-only) through `--exec`-style spawning.
 * Every verdict must be the one recorded in conformance/expected/avp-*.txt, and those files may
 * hold only PASS, REJECT and SKIP: our back-ends never FAIL, WEDGE or CRASH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseExpected } from './expected.js';
import { expectedFile, runAgainstExpected } from './testing.js';

const AVP = `${JSON.stringify(process.execPath)} ${fileURLToPath(new URL('../../bin/avp.js', import.meta.url))}`;

function image(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  // 16 MiB with a pattern, so reads return data and the checks' restore step is visible.
  writeFileSync(file, Buffer.alloc(16 << 20, 0x3c));
  return file;
}

for (const name of ['avp-rng.txt', 'avp-blk.txt', 'avp-blk-ro.txt']) {
  test(`expected file ${name} allows only PASS, REJECT and SKIP`, () => {
    for (const [id, e] of parseExpected(readFileSync(expectedFile(name), 'utf8'), name)) assert.ok(['PASS', 'REJECT', 'SKIP'].includes(e.verdict), `${id} ${e.verdict}`);
  });
}

test('conformance: avp serve rng', async () => {
  const { report, problems } = await runAgainstExpected('rng', `${AVP} serve rng --socket-path {socket}`, expectedFile('avp-rng.txt'));
  assert.deepEqual(problems, []);
  assert.equal(report.failed, 0);
});

test('conformance: avp serve blk (writable); the image keeps its contents', async (t) => {
  const img = image(t);
  const before = readFileSync(img);
  const { report, problems } = await runAgainstExpected('blk', `${AVP} serve blk --socket-path {socket} --image ${img}`, expectedFile('avp-blk.txt'));
  assert.deepEqual(problems, []);
  assert.equal(report.failed, 0);
  assert.ok(readFileSync(img).equals(before), 'every sector a check wrote was written back');
});

test('conformance: avp serve blk --read-only', async (t) => {
  const img = image(t);
  const { report, problems } = await runAgainstExpected('blk', `${AVP} serve blk --socket-path {socket} --image ${img} --read-only`, expectedFile('avp-blk-ro.txt'));
  assert.deepEqual(problems, []);
  assert.equal(report.failed, 0);
});
