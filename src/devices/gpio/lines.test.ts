// SPDX-License-Identifier: Apache-2.0
/** virtio-gpio line specs, script steps, the names block and the timeline. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignalTrace } from '../signal-trace.js';
import { buildLines, buildTimeline, namesBlock, parseDriveStep, parseLineSpec } from './lines.js';

test('gpio lines: NAME[:in|:out][=0|1][@SIGNAL]', () => {
  assert.deepEqual(parseLineSpec('door'), { name: 'door', direction: 'in', level: 0, signal: 'door' });
  assert.deepEqual(parseLineSpec('led:out=1'), { name: 'led', direction: 'out', level: 1, signal: 'led' });
  assert.deepEqual(parseLineSpec('ign:in=1@Vehicle.Ignition'), { name: 'ign', direction: 'in', level: 1, signal: 'Vehicle.Ignition' });
  for (const bad of ['', '1door', 'door:up', 'door=2', 'a'.repeat(33), 'door@', 'do or']) {
    assert.throws(() => parseLineSpec(bad), { code: 'GPIO_BAD_OPTION', message: /^--lines: expected NAME/ }, bad);
  }
});

test('gpio lines: unnamed lines fill up to ngpio; duplicates and too many names are refused', () => {
  assert.equal(buildLines([], undefined).length, 8);
  const l = buildLines(['a', 'b:out'], 4);
  assert.deepEqual(l.map((x) => [x.name, x.direction]), [['a', 'in'], ['b', 'out'], ['', 'in'], ['', 'in']]);
  assert.equal(buildLines(['a', 'b'], undefined).length, 2);
  assert.throws(() => buildLines(['a', 'a:out'], undefined), { message: /'a' is used twice/ });
  assert.throws(() => buildLines(['a', 'b', 'c'], 2), { message: /^--ngpio: 2 lines, but 3 are named/ });
  assert.throws(() => buildLines([], 1025), { message: /^--ngpio: expected 1 to 1024/ });
});

test('gpio lines: the names block is NUL-terminated names in line order, empty names a single NUL', () => {
  assert.deepEqual(new TextDecoder().decode(namesBlock(buildLines(['MMC-CD', 'led'], 4))), 'MMC-CD\0led\0\0\0');
  assert.equal(namesBlock(buildLines([], 4)).length, 0);
});

test('gpio lines: script steps and the timeline (trace rows first at equal times)', () => {
  assert.deepEqual(parseDriveStep('2.5:door=1'), { time: 2.5, line: 'door', value: 1 });
  assert.deepEqual(parseDriveStep('3s:0=0'), { time: 3, line: '0', value: 0 });
  for (const bad of ['door=1', '1:door=2', '-1:door=1', '1:door']) assert.throws(() => parseDriveStep(bad), { message: /^--drive: expected SECONDS:LINE=0\|1/ }, bad);
  const lines = buildLines(['door@D', 'led:out'], 3);
  const trace = SignalTrace.parse('1,D,1\n0,D,0\n1,other,1\n');
  assert.deepEqual(buildTimeline(lines, trace, [parseDriveStep('1:door=0'), parseDriveStep('0.5:2=1')]), [
    { time: 0, line: 0, value: 0, source: 'trace' },
    { time: 0.5, line: 2, value: 1, source: 'script' },
    { time: 1, line: 0, value: 1, source: 'trace' },
    { time: 1, line: 0, value: 0, source: 'script' },
  ]);
  assert.throws(() => buildTimeline(lines, undefined, [parseDriveStep('1:nope=1')]), { message: /^--drive: no line 'nope'/ });
  assert.throws(() => buildTimeline(lines, undefined, [parseDriveStep('1:3=1')]), { message: /no line '3'/ });
});
