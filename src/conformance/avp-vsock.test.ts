// SPDX-License-Identifier: Apache-2.0
/**
 * The whole conformance catalog against AVP's vsock device for one guest (`avp serve vsock`),
 * started as a real program. Every verdict must be the one recorded in
 * conformance/expected/avp-vsock.txt (PASS, REJECT and SKIP only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseExpected } from './expected.js';
import { expectedFile, runAgainstExpected } from './testing.js';

const AVP = `${JSON.stringify(process.execPath)} ${fileURLToPath(new URL('../../bin/avp.js', import.meta.url))}`;

test('expected file avp-vsock.txt allows only PASS, REJECT and SKIP', () => {
  for (const [id, e] of parseExpected(readFileSync(expectedFile('avp-vsock.txt'), 'utf8'), 'avp-vsock.txt')) assert.ok(['PASS', 'REJECT', 'SKIP'].includes(e.verdict), `${id} ${e.verdict}`);
});

test('conformance: avp serve vsock (one guest, hybrid vsock to a Unix socket nobody listens on)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { report, problems } = await runAgainstExpected('vsock', `${AVP} serve vsock --socket-path {socket} --guest-cid 3 --uds-path ${join(dir, 'v.sock')}`, expectedFile('avp-vsock.txt'));
  assert.deepEqual(problems, []);
  assert.equal(report.failed, 0);
});
