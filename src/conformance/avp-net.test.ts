// SPDX-License-Identifier: Apache-2.0
/**
 * The whole conformance catalog against AVP's virtio-net switch with one port (`avp serve net`),
 * started as a real program. Every verdict must be the one recorded in
 * conformance/expected/avp-net.txt (PASS, REJECT and SKIP only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseExpected } from './expected.js';
import { expectedFile, runAgainstExpected } from './testing.js';

const AVP = `${JSON.stringify(process.execPath)} ${fileURLToPath(new URL('../../bin/avp.js', import.meta.url))}`;

test('expected file avp-net.txt allows only PASS, REJECT and SKIP', () => {
  for (const [id, e] of parseExpected(readFileSync(expectedFile('avp-net.txt'), 'utf8'), 'avp-net.txt')) assert.ok(['PASS', 'REJECT', 'SKIP'].includes(e.verdict), `${id} ${e.verdict}`);
});

test('conformance: avp serve net (a switch of one port)', async () => {
  const { report, problems } = await runAgainstExpected('net', `${AVP} serve net --socket-path {socket} --mac 52:54:00:00:00:01 --mtu 9000`, expectedFile('avp-net.txt'));
  assert.deepEqual(problems, []);
  assert.equal(report.failed, 0);
});
