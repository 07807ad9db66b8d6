// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canFrame } from './frame.js';
import { countStuffBits, crc15, frameBits, frameTimeUs } from './timing.js';

const bitsOf = (value: number, width: number) => Array.from({ length: width }, (_, i) => (value >> (width - 1 - i)) & 1);

test('CRC-15/CAN: a sequence followed by its CRC divides evenly', () => {
  for (const seq of [[1, 0, 1, 1, 0, 0, 1], bitsOf(0x123, 11), bitsOf(0x5a5a, 16)]) {
    const crc = crc15(seq);
    assert.equal(crc15([...seq, ...bitsOf(crc, 15)]), 0);
  }
  assert.equal(crc15(new Array<number>(19).fill(0)), 0);
});

test('stuffing: after five equal bits a complement, which starts the next run', () => {
  assert.equal(countStuffBits([0, 0, 0, 0]), 0);
  assert.equal(countStuffBits([0, 0, 0, 0, 0]), 1);
  assert.equal(countStuffBits(new Array<number>(10).fill(0)), 2);
  // The stuff bit (1) plus four 1s make five: another stuff bit.
  assert.equal(countStuffBits([0, 0, 0, 0, 0, 1, 1, 1, 1]), 2);
  assert.equal(countStuffBits([0, 1, 0, 1, 0, 1, 0, 1]), 0);
});

test('standard frame, id 0, no data: 34 dominant bits get 6 stuff bits, 53 bits with the trailer', () => {
  const b = frameBits(canFrame({ id: 0 }));
  assert.equal(b.stuff, 6);
  assert.equal(b.nominal, 53);
  assert.equal(b.data, 0);
});

test('classic frames: 47 + 8n (standard) and 67 + 8n (extended) bits before stuffing; stuffing within the worst case', () => {
  for (let n = 0; n <= 8; n++) {
    for (const id of [0, 0x155, 0x2aa, 0x7ff]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (id + i * 37) & 0xff);
      const std = frameBits(canFrame({ id, data }));
      assert.equal(std.nominal - std.stuff, 47 + 8 * n);
      assert.ok(std.stuff <= Math.floor((34 + 8 * n - 1) / 4));
      const ext = frameBits(canFrame({ id: id * 0x3ffff + 5, extended: true, data }));
      assert.equal(ext.nominal - ext.stuff, 67 + 8 * n);
      assert.ok(ext.stuff <= Math.floor((54 + 8 * n - 1) / 4));
    }
  }
});

test('a remote frame carries no data bits, whatever length it asks for', () => {
  const b = frameBits(canFrame({ id: 0x2aa, rtr: true, rtrLength: 8 }));
  assert.equal(b.nominal - b.stuff, 47);
});

test('CAN FD without BRS: 22 header bits, CRC field 21 + 6 fixed stuff bits, everything at the nominal rate', () => {
  // id 0x2AA alternates; RRS, IDE dominant; FDF 1; res, BRS, ESI and DLC 0000 make 7 dominant bits: one stuff bit.
  const b = frameBits(canFrame({ id: 0x2aa, fd: true }));
  assert.deepEqual(b, { nominal: 22 + 1 + 21 + 6 + 1 + 12, data: 0, stuff: 7 });
});

test('CAN FD with BRS: SOF to BRS and the trailer at the nominal rate, ESI to the CRC delimiter at the data rate', () => {
  const b = frameBits(canFrame({ id: 0x2aa, fd: true, brs: true }));
  // Nominal: 17 bits (SOF..BRS, no stuffing) + ACK, delimiter, EOF, intermission (12).
  // Data: ESI + DLC (5 dominant: one stuff bit) + CRC field 21 + 6 fixed + CRC delimiter.
  assert.deepEqual(b, { nominal: 29, data: 5 + 1 + 21 + 6 + 1, stuff: 7 });
  assert.equal(frameTimeUs(canFrame({ id: 0x2aa, fd: true, brs: true }), { bitrate: 500_000, dataBitrate: 2_000_000 }), 29 * 2 + 34 * 0.5);
  // 21-bit CRC above 16 bytes.
  const big = frameBits(canFrame({ id: 0x2aa, fd: true, data: new Uint8Array(20).fill(0x55) }));
  assert.equal(big.nominal - big.stuff, 22 + 160 + 25 + 1 + 12);
});

test('frame time at 500 kbit/s is 2 us per bit', () => {
  const f = canFrame({ id: 0x123, data: [1, 2, 3, 4, 5, 6, 7, 8] });
  assert.equal(frameTimeUs(f, { bitrate: 500_000 }), frameBits(f).nominal * 2);
});
