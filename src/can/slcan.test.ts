// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canFrame } from './frame.js';
import { SLCAN_MAX_LINE, SlcanDecoder, decodeLine, encodeSlcanError, encodeSlcanFrame, encodeSlcanState, type SlcanMessage } from './slcan.js';

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const text = (b: Uint8Array) => String.fromCharCode(...b);

// What slcand and Linux's slcan write (drivers/net/can/slcan/slcan-core.c examples), spelled by hand.
const STREAM = 'C\rS6\rO\rt1234DEADBEEF\rT12ABCDEF2AA55\rr1230\rR000007FF8\rd1239112233445566778899AABB\rB000000010\rd1239112233445566778899AABBCC\r';

function decodeAll(chunks: Uint8Array[]): SlcanMessage[] {
  const d = new SlcanDecoder();
  return chunks.flatMap((c) => d.push(c));
}

test('slcan: the stream slcand and the kernel write, decoded; the same at every split point', () => {
  const whole = decodeAll([bytes(STREAM)]);
  assert.deepEqual(whole.slice(0, 3), [
    { kind: 'command', code: 'C', arg: '' },
    { kind: 'command', code: 'S', arg: '6' },
    { kind: 'command', code: 'O', arg: '' },
  ]);
  assert.deepEqual(whole[3], { kind: 'frame', frame: canFrame({ id: 0x123, data: [0xde, 0xad, 0xbe, 0xef] }) });
  assert.deepEqual(whole[4], { kind: 'frame', frame: canFrame({ id: 0x12abcdef, extended: true, data: [0xaa, 0x55] }) });
  assert.deepEqual(whole[5], { kind: 'frame', frame: canFrame({ id: 0x123, rtr: true }) });
  assert.deepEqual(whole[6], { kind: 'frame', frame: canFrame({ id: 0x7ff, extended: true, rtr: true, rtrLength: 8 }) });
  assert.equal(whole[7]?.kind, 'invalid', 'an FD frame with DLC 9 needs 12 data bytes');
  assert.deepEqual(whole[8], { kind: 'frame', frame: canFrame({ id: 0x1, extended: true, fd: true, brs: true }) });
  assert.deepEqual(whole[9], { kind: 'frame', frame: canFrame({ id: 0x123, fd: true, data: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc] }) });
  const all = bytes(STREAM);
  for (let cut = 0; cut <= all.length; cut++) assert.deepEqual(decodeAll([all.subarray(0, cut), all.subarray(cut)]), whole, `split at ${cut}`);
  assert.deepEqual(decodeAll([...all].map((b) => Uint8Array.of(b))), whole, 'byte by byte');
});

test('slcan: LF and BEL end a line too; empty lines are skipped', () => {
  assert.deepEqual(decodeAll([bytes('\r\r\nO\nC\x07')]), [
    { kind: 'command', code: 'O', arg: '' },
    { kind: 'command', code: 'C', arg: '' },
  ]);
});

test('slcan: hostile lines are reported, never kept beyond the limit', () => {
  const d = new SlcanDecoder();
  const long = 't123' + 'A'.repeat(10_000);
  const out = d.push(bytes(`${long}\rt1230\r`));
  assert.equal(out.length, 2);
  assert.equal(out[0]?.kind, 'invalid');
  assert.match(out[0]?.kind === 'invalid' ? out[0].reason : '', new RegExp(`${SLCAN_MAX_LINE}`));
  assert.deepEqual(out[1], { kind: 'frame', frame: canFrame({ id: 0x123 }) });
  for (const bad of ['t12', 't1239', 't1232AA', 't12G0', 'T1234567', 'tFFF1X1', 'T3FFFFFFF0', 'r1239', 'x', 'e9a', 'e1z', 'd12310']) {
    assert.equal(decodeLine(bad).kind, 'invalid', bad);
  }
  // 0x800 does not fit 11 bits: 't' ids are 3 hex digits, but 'FFF' > 0x7FF.
  assert.equal(decodeLine('tFFF0').kind, 'invalid');
});

test('slcan: a time stamp after the data (Z1 mode) is ignored, as Linux does', () => {
  assert.deepEqual(decodeLine('t1231AA1F2E'), { kind: 'frame', frame: canFrame({ id: 0x123, data: [0xaa] }) });
});

test('slcan: encoding frames, states and errors', () => {
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x456, data: [0x11, 0x22, 0x33] }))), 't4563112233\r');
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x12abcdef, extended: true, data: [0xaa, 0x55] }))), 'T12ABCDEF2AA55\r');
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x1, rtr: true, rtrLength: 4 }))), 'r0014\r');
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x1, extended: true, rtr: true }))), 'R000000010\r');
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x1, fd: true, brs: true, data: new Uint8Array(12).fill(0xab) }))), `b0019${'AB'.repeat(12)}\r`);
  assert.equal(text(encodeSlcanFrame(canFrame({ id: 0x1, extended: true, fd: true, data: new Uint8Array(64) }))), `D00000001F${'00'.repeat(64)}\r`);
  assert.equal(text(encodeSlcanState('bus-off', 0, 256)), 'sb000256\r');
  assert.equal(text(encodeSlcanState('passive', 57, 2000)), 'sp057999\r');
  assert.equal(text(encodeSlcanError('a')), 'e1a\r');
  assert.deepEqual(decodeLine('sb000256'), { kind: 'state', state: 'bus-off', rxErrors: 0, txErrors: 256 });
  assert.deepEqual(decodeLine('e1a'), { kind: 'error', codes: 'a' });
});

test('slcan: every frame encodes to a line that decodes to it', () => {
  const frames = [
    canFrame({ id: 0 }),
    canFrame({ id: 0x7ff, data: [1, 2, 3, 4, 5, 6, 7, 8] }),
    canFrame({ id: 0x1fffffff, extended: true, data: [9] }),
    canFrame({ id: 0x100, rtr: true, rtrLength: 8 }),
    canFrame({ id: 0x100, fd: true, esi: false, data: new Uint8Array(48).fill(7) }),
  ];
  for (const f of frames) {
    const line = text(encodeSlcanFrame(f));
    assert.deepEqual(decodeLine(line.slice(0, -1)), { kind: 'frame', frame: f }, line);
  }
});
