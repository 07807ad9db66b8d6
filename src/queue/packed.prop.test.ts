// SPDX-License-Identifier: Apache-2.0
/**
 * Property tests of the packed virtqueue, driven device side ↔ driver side. AVP_PROPERTY_RUNS
 * sets the number of cases (`npm run test:props` runs 10^5).
 *
 * 1. Random valid lists (direct or indirect, readable then writable buffers, any start position
 *    and wrap counter, any ring size 1..16 including non-powers of 2, completion in any order)
 *    round-trip driver → device → driver unchanged, and both sides agree on the ring position.
 * 2. Random hostile lists mixed with valid ones (the decision table's chain errors): every list
 *    comes back to the driver (bad ones with length 0 and the expected error), valid ones
 *    unchanged, the queue never breaks.
 * 3. Random garbage in the descriptor ring and both event areas never throws out of the device
 *    API, never hands out memory outside the guest, and never writes outside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GUARDED_GUEST_BASE, GUARDED_NOISE_OFFSET, createGuardedGuest, createPackedQueuePair, seedGarbageDescriptors, serveGarbageQueue } from './testing.js';
import { PackedDeviceQueue } from './packed-device.js';
import { resolvePackedRings } from './rings.js';
import type { DescriptorChain } from './chain.js';


const runs = Number(process.env['AVP_PROPERTY_RUNS'] ?? 200);

const listArb = fc.record({
  readable: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 4 }),
  writable: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 4 }),
  indirect: fc.boolean(),
  /** 0 or above 4: valid; 1..4: a hostile variant when it applies (see `run`). */
  kind: fc.integer({ min: 0, max: 12 }),
  seed: fc.integer({ min: 0, max: 255 }),
});

type Buf = { addr: number; len: number };
type ListCase = { readable: number[]; writable: number[]; indirect: boolean; kind: number; seed: number };

function run(size: number, eventIdx: boolean, base: number, lists: ReadonlyArray<ListCase>, withHostile: boolean, completeReversed: boolean): void {
  const p = createPackedQueuePair({ size, eventIdx, indirect: true, base, memorySize: 2 << 20 });
  const expected = new Map<number, { readable: Buf[]; writable: Buf[] } | string>();
  const lens = new Map<number, number>();
  // One indirect-table slot per token modulo size: at most `size` lists are in flight at once.
  const SLOT = 10 * 16;
  const tables = p.alloc.alloc(size * SLOT, 16);
  const bufferBase = p.alloc.alloc(0, 4096);
  let token = 0;
  let rejected = 0;
  const drain = (): void => {
    const popped: DescriptorChain[] = [];
    for (let c = p.device.pop(); c !== null; c = p.device.pop()) popped.push(c);
    if (completeReversed) popped.reverse();
    for (const c of popped) {
      const n = Math.floor(c.writableLength / 2);
      c.writer().write(new Uint8Array(n).fill(0x5a));
      p.device.pushUsed(c.head, n);
    }
    p.device.needsNotification();
    for (let u = p.driver.popUsed(); u !== null; u = p.driver.popUsed()) {
      const want = expected.get(u.token);
      assert.ok(want !== undefined, `token ${u.token} came back twice or was never sent`);
      if (typeof want === 'string') {
        assert.equal(u.len, 0, `hostile list ${u.token} (${want}) came back with length 0`);
        rejected++;
      }
      else assert.equal(u.len, lens.get(u.token));
      expected.delete(u.token);
    }
  };
  for (const l of lists) {
    p.alloc.reset();
    p.alloc.alloc(bufferBase);
    const mk = (len: number): Buf => ({ addr: p.alloc.alloc(len, 8) + (l.seed % 8), len });
    const readable = l.readable.map(mk);
    const writable = l.writable.map(mk);
    const table = tables + (token % size) * SLOT;
    const valid = [...readable, ...writable.map((b) => ({ ...b, writable: true }))];
    // The hostile variants (one extra buffer, or a bad table length), or the valid list.
    let bufs = valid;
    let why = '';
    let badTableLen = 0;
    const hostile = withHostile ? l.kind : 0;
    if (hostile === 1 && l.indirect) {
      bufs = [...valid, { addr: table, len: 16 }];
      why = 'nested indirect';
    } else if (hostile === 2 && writable.length > 0) {
      bufs = [...valid, { addr: bufferBase, len: 4 }];
      why = 'readable after writable';
    } else if (hostile === 3) {
      bufs = [...readable, { addr: p.memory.totalSize + 4096 * l.seed, len: 8 }];
      why = 'outside guest memory';
    } else if (hostile === 4 && l.indirect && valid.length > 0) {
      badTableLen = 16 * valid.length + 1 + (l.seed % 15);
      why = 'indirect table length';
    }
    const need = l.indirect ? 1 : bufs.length;
    if (bufs.length === 0 || need > size) continue;
    if (p.driver.numFree < need || p.driver.inFlight === size) drain();
    const opts = l.indirect ? { indirectTable: table } : {};
    if (badTableLen > 0) {
      p.driver.addRaw([{ addr: table, len: badTableLen, id: 0, flags: 4 }], token);
    } else {
      p.driver.add(bufs, token, opts);
      // Nested: the extra last table entry is itself INDIRECT.
      if (why === 'nested indirect') p.memory.writeU16(table + 16 * (bufs.length - 1) + 14, 4);
    }
    if (why === '') {
      expected.set(token, { readable, writable });
      lens.set(token, Math.floor(writable.reduce((a, b) => a + b.len, 0) / 2));
    } else {
      expected.set(token, why);
    }
    token++;
    if (l.seed % 3 === 0) drain();
  }
  drain();
  assert.equal(expected.size, 0, 'every list came back');
  assert.equal(p.device.broken, undefined);
  for (const e of p.errors) assert.equal(e.error.fatal, false, e.error.message);
  assert.equal(p.errors.length, rejected, 'one error per hostile list');
  // Nothing in flight: the device's used position equals its avail position, as the driver's.
  const vb = p.device.vringBase;
  assert.equal(vb & 0xffff, vb >>> 16);
  assert.equal(vb & 0xffff, p.driver.base & 0xffff);
}

test('property: valid packed lists round-trip driver → device → driver unchanged, any size, wrap and completion order', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 15 }),
      fc.boolean(),
      fc.boolean(),
      fc.array(listArb, { minLength: 1, maxLength: 40 }),
      (size, eventIdx, start, wrap, reversed, lists) => {
        const base = ((start % size) | (wrap ? 0x8000 : 0)) * 0x10001;
        run(size, eventIdx, base, lists, false, reversed);
      },
    ),
    { numRuns: runs },
  );
});

test('property: hostile packed lists mixed with valid ones all come back, bad ones with length 0, the queue goes on', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 16 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 15 }),
      fc.boolean(),
      fc.array(listArb, { minLength: 1, maxLength: 40 }),
      (size, eventIdx, start, reversed, lists) => {
        run(size, eventIdx, ((start % size) | 0x8000) * 0x10001, lists, true, reversed);
      },
    ),
    { numRuns: runs },
  );
});

test('property: garbage packed rings never throw, never hand out memory outside the guest, never write outside it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.boolean(),
      fc.boolean(),
      fc.uint8Array({ minLength: 16 * 16 + 8, maxLength: 16 * 16 + 8 }),
      fc.uint8Array({ minLength: 0, maxLength: 512 }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      (size, indirect, eventIdx, ringBytes, tableNoise, base) => {
        const g = createGuardedGuest();
        const { memory, guest } = g;
        const addrs = { desc: GUARDED_GUEST_BASE, avail: GUARDED_GUEST_BASE + 16 * 16, used: GUARDED_GUEST_BASE + 16 * 16 + 4 };
        guest.set(ringBytes, 0);
        guest.set(tableNoise, GUARDED_NOISE_OFFSET);
        seedGarbageDescriptors(g, ringBytes, size);
        const errors: string[] = [];
        const q = new PackedDeviceQueue({ size, rings: resolvePackedRings(memory, size, addrs), memory, indirect, eventIdx, base, onError: (e) => errors.push(e.code) });
        for (const b of serveGarbageQueue(q)) assert.ok(memory.isValidRange(b.addr, b.len));
        // Pushing ids that are not in flight is reported, never thrown.
        q.pushUsed(0xffff, 1);
        assert.deepEqual(g.canariesWritten(), [], 'bytes outside guest memory (offsets from its start) were written');
        for (const code of errors) assert.match(code, /^VIRTQ_/);
      },
    ),
    { numRuns: runs },
  );
});
