// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arbitrationKey, canFrame, dlcToLength, frameProblem, lengthToDlc, parseHexBytes, hexBytes, sameFrame } from './frame.js';

test('arbitration: lower identifier wins; data beats remote; standard beats extended of the same base', () => {
  const order = [
    canFrame({ id: 0x000, extended: true }), // base 0, extended: still beats any standard id >= 1
    canFrame({ id: 0x001 }),
    canFrame({ id: 0x123 }),
    canFrame({ id: 0x123, rtr: true }),
    canFrame({ id: 0x123 << 18, extended: true }),
    canFrame({ id: (0x123 << 18) | 1, extended: true }),
    canFrame({ id: (0x123 << 18) | 1, extended: true, rtr: true }),
    canFrame({ id: 0x124 }),
    canFrame({ id: 0x7ff }),
    canFrame({ id: 0x1fffffff, extended: true }),
  ];
  for (let i = 1; i < order.length; i++) assert.ok(arbitrationKey(order[i - 1]!) < arbitrationKey(order[i]!), `frame ${i - 1} beats frame ${i}`);
});

test('arbitration: an FD frame competes as a data frame (RRS is dominant)', () => {
  assert.equal(arbitrationKey(canFrame({ id: 0x321, fd: true, data: new Uint8Array(12) })), arbitrationKey(canFrame({ id: 0x321 })));
});

test('frame checks: ids, lengths, remote and FD rules', () => {
  assert.equal(frameProblem(canFrame({ id: 0x7ff, data: [1, 2, 3, 4, 5, 6, 7, 8] })), undefined);
  assert.match(frameProblem(canFrame({ id: 0x800 })) ?? '', /11 bits/);
  assert.match(frameProblem(canFrame({ id: 0x20000000, extended: true })) ?? '', /29 bits/);
  assert.match(frameProblem(canFrame({ id: 1, data: new Uint8Array(9) })) ?? '', /at most 8/);
  assert.match(frameProblem(canFrame({ id: 1, fd: true, data: new Uint8Array(9) })) ?? '', /FD frame/);
  assert.equal(frameProblem(canFrame({ id: 1, fd: true, brs: true, data: new Uint8Array(64) })), undefined);
  assert.match(frameProblem(canFrame({ id: 1, fd: true, rtr: true })) ?? '', /no remote/);
  assert.match(frameProblem(canFrame({ id: 1, rtr: true, data: [1] })) ?? '', /no data/);
  assert.match(frameProblem(canFrame({ id: 1, rtr: true, rtrLength: 9 })) ?? '', /0-8/);
  assert.match(frameProblem(canFrame({ id: 1, brs: true })) ?? '', /only in FD/);
  assert.match(frameProblem(canFrame({ id: -1 })) ?? '', /fit/);
  assert.match(frameProblem(canFrame({ id: 1.5 })) ?? '', /fit/);
});

test('DLC: classic caps at 8, FD follows the table', () => {
  assert.deepEqual([9, 15].map((d) => dlcToLength(d, false)), [8, 8]);
  assert.deepEqual([9, 10, 11, 12, 13, 14, 15].map((d) => dlcToLength(d, true)), [12, 16, 20, 24, 32, 48, 64]);
  assert.equal(lengthToDlc(64), 15);
  assert.equal(lengthToDlc(13), undefined);
  assert.equal(dlcToLength(16, true), 0);
});

test('hex bytes round trip; odd or non-hex text is refused', () => {
  assert.equal(hexBytes(Uint8Array.of(0xde, 0xad, 0x0f)), 'DEAD0F');
  assert.deepEqual(parseHexBytes('dead0F'), Uint8Array.of(0xde, 0xad, 0x0f));
  assert.equal(parseHexBytes('abc'), undefined);
  assert.equal(parseHexBytes('zz'), undefined);
  assert.ok(sameFrame(canFrame({ id: 5, data: [1] }), canFrame({ id: 5, data: Uint8Array.of(1) })));
  assert.ok(!sameFrame(canFrame({ id: 5, data: [1] }), canFrame({ id: 5, data: [2] })));
});
