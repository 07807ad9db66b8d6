// SPDX-License-Identifier: Apache-2.0
/**
 * Chain cursors: the contiguous fast path and the segment path give the same bytes, across buffer
 * boundaries, zero-length buffers and region boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlatGuestMemory, RegionGuestMemory } from '../memory/guest-memory.js';
import { DescriptorChain } from './chain.js';

test('chain cursors: reads and writes of any size land at the same bytes whatever the buffer split', () => {
  const mem = new FlatGuestMemory(4096);
  mem.write(0, Uint8Array.from({ length: 64 }, (_, i) => i));
  // 64 readable bytes split 0 + 5 + 0 + 11 + 48, 64 writable bytes split 0 + 1 + 30 + 33.
  const chain = new DescriptorChain(
    mem,
    0,
    [{ addr: 0, len: 0 }, { addr: 0, len: 5 }, { addr: 5, len: 0 }, { addr: 5, len: 11 }, { addr: 16, len: 48 }],
    [{ addr: 1000, len: 0 }, { addr: 1000, len: 1 }, { addr: 1001, len: 30 }, { addr: 1031, len: 33 }],
  );
  const r = chain.reader();
  assert.deepEqual([...r.readBytes(3)], [0, 1, 2]);
  assert.deepEqual([...r.readBytes(4)], [3, 4, 5, 6], 'across a buffer and a zero-length one');
  assert.deepEqual([...r.readBytes(9)], [7, 8, 9, 10, 11, 12, 13, 14, 15]);
  assert.deepEqual([...r.readBytes(48)], Array.from({ length: 48 }, (_, i) => i + 16));
  assert.throws(() => r.readBytes(1), RangeError);
  const w = chain.writer();
  w.writeU8(0xa1);
  w.write(Uint8Array.of(1, 2, 3));
  w.skip(26);
  w.write(Uint8Array.of(4, 5, 6, 7));
  w.writeU8(0xa2);
  assert.deepEqual([...mem.read(1000, 4)], [0xa1, 1, 2, 3]);
  assert.deepEqual([...mem.read(1030, 5)], [4, 5, 6, 7, 0xa2]);
  assert.equal(w.remaining, 64 - 35);
  w.skip(w.remaining);
  assert.throws(() => w.writeU8(0), RangeError);
});

test('chain cursors: a buffer that spans two memory regions is read and written through segments', () => {
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096);
  const mem = new RegionGuestMemory([
    { guestBase: 0, bytes: a },
    { guestBase: 4096, bytes: b },
  ]);
  const chain = new DescriptorChain(mem, 0, [{ addr: 4090, len: 12 }], [{ addr: 4094, len: 4 }]);
  a.set([1, 2, 3, 4, 5, 6], 4090);
  b.set([7, 8, 9, 10, 11, 12], 0);
  assert.deepEqual([...chain.reader().readBytes(12)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const w = chain.writer();
  w.write(Uint8Array.of(0xf1, 0xf2, 0xf3));
  w.writeU8(0xf4);
  assert.deepEqual([...a.subarray(4094, 4096), ...b.subarray(0, 2)], [0xf1, 0xf2, 0xf3, 0xf4]);
});
