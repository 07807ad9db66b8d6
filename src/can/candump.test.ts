// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCandumpLine, parseCandumpLine } from './candump.js';
import { canFrame } from './frame.js';

test('candump: lines as candump -l writes them', () => {
  assert.equal(formatCandumpLine(1436509052249713, 'vcan0', canFrame({ id: 0x123, data: [0xde, 0xad, 0xbe, 0xef] })), '(1436509052.249713) vcan0 123#DEADBEEF');
  assert.equal(formatCandumpLine(5, 'bus', canFrame({ id: 0x12345678, extended: true })), '(0.000005) bus 12345678#');
  assert.equal(formatCandumpLine(0, 'bus', canFrame({ id: 0x7ff, rtr: true })), '(0.000000) bus 7FF#R');
  assert.equal(formatCandumpLine(0, 'bus', canFrame({ id: 0x7ff, rtr: true, rtrLength: 3 })), '(0.000000) bus 7FF#R3');
  assert.equal(formatCandumpLine(0, 'bus', canFrame({ id: 0x42, fd: true, brs: true, data: [1, 2] })), '(0.000000) bus 042##10102');
});

test('candump: parsing what can-utils writes, dots, FD flags, RTR length, comments', () => {
  assert.deepEqual(parseCandumpLine('(1436509052.249713) vcan0 123#DEADBEEF'), { kind: 'frame', timeUs: 1436509052249713, ifname: 'vcan0', frame: canFrame({ id: 0x123, data: [0xde, 0xad, 0xbe, 0xef] }) });
  assert.deepEqual(parseCandumpLine('(1.5) can1 1F334455#11.22.33'), { kind: 'frame', timeUs: 1_500_000, ifname: 'can1', frame: canFrame({ id: 0x1f334455, extended: true, data: [0x11, 0x22, 0x33] }) });
  assert.deepEqual(parseCandumpLine('(0.000001) c 5A1#R6'), { kind: 'frame', timeUs: 1, ifname: 'c', frame: canFrame({ id: 0x5a1, rtr: true, rtrLength: 6 }) });
  assert.deepEqual(parseCandumpLine('(0.1) c 5A1##3' + '00'.repeat(12)), { kind: 'frame', timeUs: 100_000, ifname: 'c', frame: canFrame({ id: 0x5a1, fd: true, brs: true, esi: true, data: new Uint8Array(12) }) });
  assert.deepEqual(parseCandumpLine('(0.1) c 5A1#1122334455667788_9'), { kind: 'frame', timeUs: 100_000, ifname: 'c', frame: canFrame({ id: 0x5a1, data: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88] }) });
  assert.deepEqual(parseCandumpLine('(0.2) can0 20000080#0000000000000000'), { kind: 'error-frame', timeUs: 200_000, ifname: 'can0' });
  assert.deepEqual(parseCandumpLine('  # a comment'), { kind: 'blank' });
  assert.deepEqual(parseCandumpLine(''), { kind: 'blank' });
});

test('candump: bad lines say what is wrong', () => {
  for (const [line, why] of [
    ['123#DEADBEEF', /expected/],
    ['(1.0) can0 1234#00', /3 \(standard\) or 8/],
    ['(1.0) can0 800#00', /11 bits/],
    ['(1.0) can0 123#123', /hex bytes/],
    ['(1.0) can0 123#112233445566778899', /at most 8/],
    ['(1.0) can0 123##1' + '00'.repeat(9), /cannot carry 9/],
    ['(1.0) can0 123##Z00', /FD flags/],
    ['(1.0) can0 123#R99', /remote frame/],
    [`(1.0) can0 123#${'0'.repeat(600)}`, /longer than/],
  ] as const) {
    const r = parseCandumpLine(line);
    assert.equal(r.kind, 'invalid', line);
    assert.match(r.kind === 'invalid' ? r.reason : '', why, line);
  }
});

test('candump: format then parse gives the frame back', () => {
  for (const f of [canFrame({ id: 1 }), canFrame({ id: 0x1abcdef0, extended: true, data: [1, 2, 3] }), canFrame({ id: 2, fd: true, data: new Uint8Array(64).fill(9) }), canFrame({ id: 3, rtr: true, rtrLength: 8 })]) {
    const r = parseCandumpLine(formatCandumpLine(123456789, 'x', f));
    assert.deepEqual(r, { kind: 'frame', timeUs: 123456789, ifname: 'x', frame: f });
  }
});
