// SPDX-License-Identifier: Apache-2.0
/** Unit tests of FlatGuestMemory and RegionGuestMemory: bounds, 64-bit addresses, split accesses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlatGuestMemory, GuestMemoryError, RegionGuestMemory } from './index.js';
import { getU64 } from '../spec/codec.js';
import { virtqDesc } from '../spec/split-ring.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e: unknown) {
    if (e instanceof GuestMemoryError) return e.code;
    throw e;
  }
  return 'no error';
}

/** Two adjacent regions [0x1000, 0x2000) and [0x2000, 0x3000), then a gap, then [0x8000, 0x9000). */
function regions(): { mem: RegionGuestMemory; a: Uint8Array; b: Uint8Array; c: Uint8Array } {
  const a = new Uint8Array(0x1000);
  const b = new Uint8Array(0x1000);
  const c = new Uint8Array(0x1000);
  const mem = new RegionGuestMemory([
    { guestBase: 0x2000, bytes: b },
    { guestBase: 0x1000, bytes: a },
    { guestBase: 0x8000, bytes: c },
  ]);
  return { mem, a, b, c };
}

test('flat: scalar reads and writes are little-endian', () => {
  const mem = new FlatGuestMemory(64);
  mem.writeU16(0, 0x1234);
  mem.writeU32(2, 0xdeadbeef);
  mem.writeU64(8, 0x0001_0203_0405_0607);
  const raw = new Uint8Array(mem.buffer, 0, 16);
  assert.deepEqual([...raw], [0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00]);
  assert.equal(mem.readU16(0), 0x1234);
  assert.equal(mem.readU32(2), 0xdeadbeef);
  assert.equal(mem.readU64(8), 0x0001_0203_0405_0607);
  assert.equal(mem.readU8(1), 0x12);
});

test('flat: the last byte is accessible and one past it is not', () => {
  const mem = new FlatGuestMemory(4096);
  mem.writeU8(4095, 7);
  assert.equal(mem.readU8(4095), 7);
  assert.equal(code(() => mem.readU8(4096)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(code(() => mem.readU32(4094)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(code(() => mem.view(4000, 97)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(mem.view(4000, 96).byteLength, 96);
  assert.equal(mem.isValidRange(4096, 0), true, 'empty range at the end touches nothing');
  assert.equal(mem.isValidRange(4097, 0), false);
});

test('invalid addresses: negative, fractional, >= 2^53, and a u64 whose high word is set', () => {
  const mem = new FlatGuestMemory(4096);
  for (const addr of [-1, 0.5, 2 ** 53, Number.NaN, Infinity]) {
    assert.equal(code(() => mem.readU8(addr)), 'GUEST_MEMORY_INVALID_ADDRESS', `addr ${addr}`);
  }
  assert.equal(code(() => mem.read(0, -1)), 'GUEST_MEMORY_INVALID_ADDRESS');
  // A u64 0xffff_ffff_ffff_f000 with length 0x2000 would wrap to 0x1000 in 64-bit arithmetic.
  const dv = new DataView(new ArrayBuffer(8));
  dv.setUint32(0, 0xfffff000, true);
  dv.setUint32(4, 0xffffffff, true);
  const wrapped = getU64(dv, 0);
  assert.equal(code(() => mem.checkRange(wrapped, 0x2000)), 'GUEST_MEMORY_INVALID_ADDRESS');
  // High word 1, low word 0: 4 GiB, a valid address that is simply outside this 4 KiB memory.
  dv.setUint32(0, 0, true);
  dv.setUint32(4, 1, true);
  assert.equal(getU64(dv, 0), 2 ** 32);
  assert.equal(code(() => mem.checkRange(getU64(dv, 0), 1)), 'GUEST_MEMORY_OUT_OF_RANGE');
});

test('regions: an access spanning two adjacent regions is split', () => {
  const { mem, a, b } = regions();
  const data = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  mem.write(0x1ff0, data);
  assert.deepEqual([...a.subarray(0xff0)], [...data.subarray(0, 16)]);
  assert.deepEqual([...b.subarray(0, 16)], [...data.subarray(16)]);
  assert.deepEqual([...mem.read(0x1ff0, 32)], [...data]);
  mem.writeU32(0x1ffe, 0xa1b2c3d4);
  assert.deepEqual([a[0xffe], a[0xfff], b[0], b[1]], [0xd4, 0xc3, 0xb2, 0xa1]);
  assert.equal(mem.readU32(0x1ffe), 0xa1b2c3d4);
  mem.writeU64(0x1ffc, 2 ** 40 + 5);
  assert.equal(mem.readU64(0x1ffc), 2 ** 40 + 5);
  const segs = mem.segments(0x1ff0, 32);
  assert.deepEqual(segs.map((s) => s.byteLength), [16, 16]);
  assert.equal(segs[0]?.buffer, a.buffer, 'segments are zero-copy views');
  assert.equal(code(() => mem.view(0x1ff0, 32)), 'GUEST_MEMORY_NOT_CONTIGUOUS');
  const desc = { addr: 2 ** 45 + 3, len: 512, flags: 3, next: 9 };
  mem.writeObj(virtqDesc, 0x1ff8, desc);
  assert.deepEqual(mem.readObj(virtqDesc, 0x1ff8), desc);
});

test('regions: a range touching a gap fails whole, and a failed write changes nothing', () => {
  const { mem, b, c } = regions();
  assert.equal(code(() => mem.write(0x2ff8, new Uint8Array(16).fill(9))), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.deepEqual([...b.subarray(0xff8)], [0, 0, 0, 0, 0, 0, 0, 0], 'no partial write before the gap');
  assert.equal(code(() => mem.readU8(0x3000)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(code(() => mem.readU8(0x0fff)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(code(() => mem.fill(0x8ff0, 0x20, 1)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(c[0xff0], 0);
  assert.equal(mem.totalSize, 0x3000);
  assert.equal(mem.isValidRange(0x1000, 0x2000), true);
  assert.equal(mem.isValidRange(0x1000, 0x2001), false);
});

test('regions: high bases work with exact 64-bit arithmetic', () => {
  const base = 2 ** 47 - 0x1000;
  const bytes = new Uint8Array(0x1000);
  const mem = new RegionGuestMemory([{ guestBase: base, bytes }]);
  mem.writeU16(base + 0xffe, 0xbeef);
  assert.equal(bytes[0xffe], 0xef);
  assert.equal(code(() => mem.readU16(base + 0xfff)), 'GUEST_MEMORY_OUT_OF_RANGE');
  assert.equal(code(() => mem.readU8(base - 1)), 'GUEST_MEMORY_OUT_OF_RANGE');
});

test('regions: overlapping, empty and oversized regions are refused', () => {
  const r = (guestBase: number, size: number) => ({ guestBase, bytes: new Uint8Array(size) });
  assert.equal(code(() => new RegionGuestMemory([r(0, 0x2000), r(0x1000, 0x1000)])), 'GUEST_MEMORY_BAD_REGION');
  assert.equal(code(() => new RegionGuestMemory([r(0, 0)])), 'GUEST_MEMORY_BAD_REGION');
  assert.equal(code(() => new RegionGuestMemory([r(2 ** 53 - 8, 16)])), 'GUEST_MEMORY_BAD_REGION');
  assert.equal(code(() => new RegionGuestMemory([r(-4096, 16)])), 'GUEST_MEMORY_BAD_REGION');
});

test('views write through to the backing buffer', () => {
  const { mem, c } = regions();
  mem.view(0x8010, 4).set([1, 2, 3, 4]);
  assert.deepEqual([...c.subarray(0x10, 0x14)], [1, 2, 3, 4]);
  assert.equal(mem.view(0x8010, 0).byteLength, 0);
});
