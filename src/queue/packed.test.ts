// SPDX-License-Identifier: Apache-2.0
/**
 * Packed virtqueue, device side driven by the driver side (VIRTIO 1.3 §2.8), and the hostile-list
 * decision table of packed-device.ts, one test per row. Expected ring bytes are written or read
 * with plain DataView offsets, independently of the codecs under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPackedQueuePair } from './testing.js';
import { QueueError } from './errors.js';
import { PackedDeviceQueue } from './packed-device.js';
import { resolvePackedRings } from './rings.js';
import { packedNeedEvent } from '../spec/packed-ring.js';

const F_NEXT = 1;
const F_WRITE = 2;
const F_INDIRECT = 4;
const F_AVAIL = 0x80;
const F_USED = 0x8000;

/** Descriptor `i` of the ring read with raw offsets. */
function rawDesc(p: ReturnType<typeof createPackedQueuePair>, i: number): { len: number; id: number; flags: number } {
  const v = new DataView(p.memory.view(p.addrs.desc + 16 * i, 16).slice().buffer);
  return { len: v.getUint32(8, true), id: v.getUint16(12, true), flags: v.getUint16(14, true) };
}

test('packed: a two-buffer list goes out and comes back with its id and length; the used descriptor overwrites the first slot', () => {
  const p = createPackedQueuePair({ size: 8 });
  const out = p.alloc.alloc(16, 8);
  const inp = p.alloc.alloc(32, 8);
  p.memory.write(out, new Uint8Array(16).fill(7));
  const id = p.driver.add([{ addr: out, len: 16 }, { addr: inp, len: 32, writable: true }], 41);
  // §2.8.1: available = AVAIL matches the driver wrap counter (1), USED the inverse.
  assert.equal(rawDesc(p, 0).flags, F_AVAIL | F_NEXT);
  assert.equal(rawDesc(p, 1).flags, F_AVAIL | F_WRITE);
  assert.equal(p.device.pending(), 1);
  const c = p.device.pop();
  assert.ok(c);
  assert.equal(c.head, id);
  assert.deepEqual(c.readable, [{ addr: out, len: 16 }]);
  assert.deepEqual(c.writable, [{ addr: inp, len: 32 }]);
  assert.deepEqual([...c.reader().readBytes(16)], new Array(16).fill(7));
  c.writer().write(new Uint8Array(20).fill(9));
  p.device.pushUsed(c.head, 20);
  const used = rawDesc(p, 0);
  assert.deepEqual(used, { len: 20, id, flags: F_AVAIL | F_USED | F_WRITE });
  assert.equal(p.device.needsNotification(), true);
  const u = p.driver.popUsed();
  assert.deepEqual(u, { head: id, len: 20, token: 41 });
  assert.equal(p.driver.numFree, 8);
  assert.equal(p.errors.length, 0);
  // Both sides moved two slots on: next avail and next used at 2, wrap counters still 1.
  assert.equal(p.device.vringBase, 0x8002_8002);
});

test('packed: wrap counters flip after the last slot, for many laps, with out-of-order completion', () => {
  const p = createPackedQueuePair({ size: 4 });
  const buf = p.alloc.alloc(64, 8);
  for (let round = 0; round < 10; round++) {
    const a = p.driver.add([{ addr: buf, len: 8, writable: true }], 2 * round);
    const b = p.driver.add([{ addr: buf, len: 8 }, { addr: buf + 8, len: 8, writable: true }], 2 * round + 1);
    const ca = p.device.pop();
    const cb = p.device.pop();
    assert.ok(ca && cb);
    assert.equal(ca.head, a);
    assert.equal(cb.head, b);
    // Completed in the opposite order: the first used descriptor names b and skips its 2 slots.
    p.device.pushUsed(cb.head, 8);
    p.device.pushUsed(ca.head, 4);
    assert.deepEqual(p.driver.popUsed(), { head: b, len: 8, token: 2 * round + 1 });
    assert.deepEqual(p.driver.popUsed(), { head: a, len: 4, token: 2 * round });
    assert.equal(p.driver.popUsed(), null);
  }
  assert.equal(p.errors.length, 0);
  // 30 slots = 7 laps of 4 and 2: wrap counter flipped 7 times (1 → 0), index 2.
  assert.equal(p.device.vringBase, 0x0002_0002);
});

test('packed: an indirect list is walked from its table; NEXT inside the table is ignored (§2.8.7 reserved)', () => {
  const p = createPackedQueuePair({ size: 4, indirect: true });
  const table = p.alloc.alloc(48, 16);
  const a = p.alloc.alloc(8, 8);
  const b = p.alloc.alloc(8, 8);
  const id = p.driver.add([{ addr: a, len: 8 }, { addr: b, len: 8, writable: true }], 1, { indirectTable: table });
  // Set NEXT on the table's first entry: reserved, ignored by the device.
  p.memory.writeU16(table + 14, F_NEXT);
  const c = p.device.pop();
  assert.ok(c);
  assert.equal(c.head, id);
  assert.deepEqual(c.readable, [{ addr: a, len: 8 }]);
  assert.deepEqual(c.writable, [{ addr: b, len: 8 }]);
  assert.equal(p.driver.numFree, 3);
});

test('packed: a vringBase restores both positions and wrap counters (vhost-user GET/SET_VRING_BASE)', () => {
  const p = createPackedQueuePair({ size: 8, base: 0x0006_0006 });
  const buf = p.alloc.alloc(8, 8);
  for (let i = 0; i < 3; i++) p.driver.add([{ addr: buf, len: 8, writable: true }], i);
  const popped = [p.device.pop(), p.device.pop(), p.device.pop()];
  for (const c of popped) p.device.pushUsed(c!.head, 1);
  // 6 + 3 = 9: index 1 on the next lap, wrap counter 0 → 1.
  assert.equal(p.device.vringBase, 0x8001_8001);
  const again = new PackedDeviceQueue({ size: 8, rings: resolvePackedRings(p.memory, 8, p.addrs), memory: p.memory, indirect: false, eventIdx: false, base: p.device.vringBase });
  assert.equal(again.vringBase, 0x8001_8001);
  p.driver.popUsed();
  p.driver.popUsed();
  p.driver.popUsed();
  const id = p.driver.add([{ addr: buf, len: 8, writable: true }], 9);
  assert.equal(again.pop()?.head, id);
});

test('packed event suppression: DISABLE silences, ENABLE notifies, DESC notifies exactly when the named slot is used', () => {
  const p = createPackedQueuePair({ size: 8, eventIdx: true });
  const buf = p.alloc.alloc(8, 8);
  const roundTrip = (): boolean => {
    p.driver.add([{ addr: buf, len: 8, writable: true }], 0);
    const c = p.device.pop()!;
    p.device.pushUsed(c.head, 1);
    const n = p.device.needsNotification();
    p.driver.popUsed();
    return n;
  };
  p.driver.setAutoUsedEvent(false);
  p.driver.suppressInterrupts(true);
  assert.equal(roundTrip(), false);
  // Event at slot 3, wrap 1: slots 1 and 2 are silent, slot 3 notifies.
  p.driver.setUsedEvent(3 | 0x8000);
  assert.equal(roundTrip(), false);
  assert.equal(roundTrip(), false);
  assert.equal(roundTrip(), true);
  // Same offset on the other lap (wrap 0) does not fire on this lap.
  p.driver.setUsedEvent(5);
  assert.equal(roundTrip(), false);
  assert.equal(roundTrip(), false);
  assert.equal(p.device.stats.notificationsSent, 1);
  assert.equal(p.device.stats.notificationsSuppressed, 5);
});

test('packed kick suppression: device DISABLE, ENABLE and DESC at the next avail slot', () => {
  const p = createPackedQueuePair({ size: 4, eventIdx: true });
  const buf = p.alloc.alloc(8, 8);
  p.device.disableNotifications();
  p.driver.add([{ addr: buf, len: 8 }], 0);
  assert.equal(p.driver.needsKick(), false);
  // enableNotifications re-checks and reports the pending list.
  assert.equal(p.device.enableNotifications(), true);
  p.device.pushUsed(p.device.pop()!.head, 0);
  p.driver.popUsed();
  assert.equal(p.device.enableNotifications(), false);
  p.driver.add([{ addr: buf, len: 8 }], 1);
  assert.equal(p.driver.needsKick(), true);
  assert.equal(p.driver.needsKick(), false, 'nothing new since the last decision');
});

test('packedNeedEvent: positions across the wrap', () => {
  // Size 4; new position (1, wrap 0) after 3 descriptors: (2,1), (3,1), (0,0) were written.
  assert.equal(packedNeedEvent(4, 2 | 0x8000, 1, false, 3), true);
  assert.equal(packedNeedEvent(4, 0, 1, false, 3), true);
  assert.equal(packedNeedEvent(4, 1, 1, false, 3), false);
  assert.equal(packedNeedEvent(4, 1 | 0x8000, 1, false, 3), false);
  assert.equal(packedNeedEvent(4, 9, 1, false, 3), false, 'an offset beyond the ring never fires');
});

/** Hostile rows: each builds a list with addRaw, expects it back with length 0 and an error code. */
const chainRows: Array<{ name: string; code: string; indirect?: boolean; build: (p: ReturnType<typeof createPackedQueuePair>) => number }> = [
  {
    name: 'INDIRECT without VIRTIO_F_INDIRECT_DESC',
    code: 'VIRTQ_INDIRECT_NOT_NEGOTIATED',
    build: (p) => p.driver.addRaw([{ addr: p.alloc.alloc(16, 16), len: 16, id: 0, flags: F_INDIRECT }], 0),
  },
  {
    name: 'INDIRECT in a list linked by NEXT',
    code: 'VIRTQ_INDIRECT_WITH_NEXT',
    indirect: true,
    build: (p) => p.driver.addRaw([{ addr: p.alloc.alloc(8, 8), len: 8, id: 0, flags: F_NEXT }, { addr: p.alloc.alloc(16, 16), len: 16, id: 0, flags: F_INDIRECT }], 0),
  },
  {
    name: 'nested INDIRECT inside an indirect table',
    code: 'VIRTQ_NESTED_INDIRECT',
    indirect: true,
    build: (p) => {
      const t = p.alloc.alloc(16, 16);
      p.memory.writeU32(t, t);
      p.memory.writeU32(t + 8, 16);
      p.memory.writeU16(t + 14, F_INDIRECT);
      return p.driver.addRaw([{ addr: t, len: 16, id: 0, flags: F_INDIRECT }], 0);
    },
  },
  {
    name: 'indirect table length not a multiple of 16',
    code: 'VIRTQ_INDIRECT_BAD_LENGTH',
    indirect: true,
    build: (p) => p.driver.addRaw([{ addr: p.alloc.alloc(32, 16), len: 24, id: 0, flags: F_INDIRECT }], 0),
  },
  {
    name: 'indirect table outside guest memory',
    code: 'VIRTQ_BUFFER_OUT_OF_RANGE',
    indirect: true,
    build: (p) => p.driver.addRaw([{ addr: 0xffff_fff0_0000, len: 32, id: 0, flags: F_INDIRECT }], 0),
  },
  {
    name: 'buffer beyond the end of guest memory',
    code: 'VIRTQ_BUFFER_OUT_OF_RANGE',
    build: (p) => p.driver.addRaw([{ addr: p.memory.totalSize - 4, len: 8, id: 0, flags: F_WRITE }], 0),
  },
  {
    name: 'readable after writable',
    code: 'VIRTQ_READABLE_AFTER_WRITABLE',
    build: (p) => p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: F_WRITE | F_NEXT }, { addr: 0x9000, len: 8, id: 0, flags: 0 }], 0),
  },
  {
    name: 'total length above 2^32 (4097 indirect entries of 1 MiB)',
    code: 'VIRTQ_CHAIN_TOO_LARGE',
    indirect: true,
    build: (p) => {
      const n = 4097;
      const t = p.alloc.alloc(16 * n, 16);
      for (let i = 0; i < n; i++) p.memory.writeU32(t + 16 * i + 8, 1 << 20);
      return p.driver.addRaw([{ addr: t, len: 16 * n, id: 0, flags: F_INDIRECT }], 0);
    },
  },
  {
    name: 'buffer id >= queue size',
    code: 'VIRTQ_ID_OUT_OF_RANGE',
    build: (p) => p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: 0 }], 0, { id: 200 }),
  },
];

for (const row of chainRows) {
  test(`packed hostile list, ${row.name}: returned with length 0 (${row.code}), the queue goes on`, () => {
    const p = createPackedQueuePair({ size: 8, indirect: row.indirect ?? false, memorySize: 2 << 20 });
    const id = row.build(p);
    const good = p.driver.add([{ addr: 0x9000, len: 8, writable: true }], 99);
    const c = p.device.pop();
    assert.ok(c, 'the valid list after the bad one is handed out');
    assert.equal(c.head, good);
    assert.equal(p.errors.length, 1);
    assert.equal(p.errors[0]?.error.code, row.code);
    assert.equal(p.errors[0]?.error.fatal, false);
    assert.equal(p.errors[0]?.head, id);
    assert.equal(p.device.stats.chainsRejected, 1);
    p.device.pushUsed(c.head, 8);
    // The bad list comes back first, with its own id and length 0; then the good one.
    assert.deepEqual(p.driver.popUsed(), { head: id, len: 0, token: 0 });
    assert.deepEqual(p.driver.popUsed(), { head: good, len: 8, token: 99 });
    assert.equal(p.device.broken, undefined);
  });
}

test('packed hostile list: an id still in flight is returned with length 0 and not tracked twice', () => {
  const p = createPackedQueuePair({ size: 8 });
  const id = p.driver.add([{ addr: 0x8000, len: 8, writable: true }], 1);
  const first = p.device.pop();
  assert.equal(first?.head, id);
  p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: F_WRITE }], 2, { id });
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_ID_IN_USE');
  // The duplicate's used descriptor came first (length 0); the original can still be returned.
  p.device.pushUsed(id, 8);
  assert.equal(p.errors.length, 1);
});

test('packed hostile ring: a list that never ends stops the queue (fatal, NEEDS_RESET)', () => {
  const p = createPackedQueuePair({ size: 4 });
  // Four descriptors, all with NEXT: no end within the ring.
  p.driver.addRaw(Array.from({ length: 4 }, () => ({ addr: 0x8000, len: 8, id: 0, flags: F_NEXT })), 0);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_PACKED_CHAIN_UNTERMINATED');
  assert.equal(p.errors[0]?.error.fatal, true);
  assert.ok(p.device.broken);
  assert.equal(p.device.pending(), 0);
  assert.equal(p.device.pop(), null, 'a broken queue stays stopped');
});

test('packed hostile ring: a list re-offering slots still in flight stops the queue', () => {
  const p = createPackedQueuePair({ size: 4 });
  for (let i = 0; i < 3; i++) p.driver.add([{ addr: 0x8000, len: 8 }], i);
  assert.ok(p.device.pop() && p.device.pop() && p.device.pop());
  // One slot is left; a two-descriptor list can only fit by overwriting slots in flight.
  p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: F_NEXT }], 9, { id: 3 });
  // Forge the wrapped slot 0 as available on the next lap with NEXT cleared.
  p.memory.writeU16(p.addrs.desc + 14, F_USED);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_PACKED_CHAIN_UNTERMINATED');
});

test('packed hostile ring: a torn list (later descriptor not available) stops the queue', () => {
  const p = createPackedQueuePair({ size: 8 });
  p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: F_NEXT | F_AVAIL }, { addr: 0x8000, len: 8, id: 0, flags: 0 }], 0, { rawFlags: true });
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_PACKED_PARTIAL_CHAIN');
  assert.ok(p.device.broken);
});

test('packed: a descriptor with both AVAIL and USED set (or neither) is not available', () => {
  const p = createPackedQueuePair({ size: 8 });
  p.driver.addRaw([{ addr: 0x8000, len: 8, id: 0, flags: F_AVAIL | F_USED }], 0, { rawFlags: true });
  assert.equal(p.device.pending(), 0);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors.length, 0);
});

test('packed device: pushUsed of an id not in flight is reported, not written', () => {
  const p = createPackedQueuePair({ size: 8 });
  p.device.pushUsed(5, 1);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_DEVICE_BAD_USED');
  assert.equal(rawDesc(p, 0).flags, 0);
});

test('packed driver: a used descriptor naming an id not in flight is VIRTQ_DRIVER_BAD_USED', () => {
  const p = createPackedQueuePair({ size: 8 });
  p.driver.add([{ addr: 0x8000, len: 8, writable: true }], 0);
  // A forged used descriptor at slot 0 with id 6.
  p.memory.writeU16(p.addrs.desc + 12, 6);
  p.memory.writeU16(p.addrs.desc + 14, F_AVAIL | F_USED);
  assert.throws(() => p.driver.popUsed(), (e: unknown) => e instanceof QueueError && e.code === 'VIRTQ_DRIVER_BAD_USED');
});

test('packed pushUsedBatch: the first list is published last, all lists arrive', () => {
  const p = createPackedQueuePair({ size: 8 });
  const ids = [0, 1, 2].map((i) => p.driver.add([{ addr: 0x8000 + 64 * i, len: 64, writable: true }], i));
  const chains = [p.device.pop()!, p.device.pop()!, p.device.pop()!];
  p.device.pushUsedBatch(chains.map((c, i) => ({ head: c.head, len: 10 + i })));
  assert.deepEqual([p.driver.popUsed(), p.driver.popUsed(), p.driver.popUsed()].map((u) => u?.head), ids);
});

test('packed: ring setup errors name the part', () => {
  const p = createPackedQueuePair({ size: 8 });
  assert.throws(() => resolvePackedRings(p.memory, 8, { desc: 8, avail: 0x1000, used: 0x1004 }), /packed descriptor ring at 0x8 is not 16-byte aligned/);
  assert.throws(() => resolvePackedRings(p.memory, 8, { desc: 0, avail: 0x1002, used: 0x1004 }), /driver event suppression area at 0x1002 is not 4-byte aligned/);
  assert.throws(() => resolvePackedRings(p.memory, 8, { desc: 0, avail: 0x1000, used: p.memory.totalSize }), /device event suppression area/);
  assert.throws(() => new PackedDeviceQueue({ size: 0, rings: resolvePackedRings(p.memory, 8, p.addrs), memory: p.memory, indirect: false, eventIdx: false }), /packed queue size 0/);
});
