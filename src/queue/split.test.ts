// SPDX-License-Identifier: Apache-2.0
/**
 * Split virtqueue tests: driver → device → driver round trips, notification suppression, 16-bit
 * wrap-around, indirect tables, and one named test per hostile-chain case of the foundation issue.
 * Expected ring bytes are read back with raw DataView offsets from the spec, independently of the
 * codecs under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createQueuePair, type QueuePair } from './testing.js';
import { DeviceQueue } from './split-device.js';
import { resolveRings } from './rings.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../spec/split-ring.js';
import type { DescriptorChain } from './chain.js';

/** Pops one chain and returns it used with `len`, asserting one was there. */
function serveOne(p: QueuePair, len: (c: DescriptorChain) => number = () => 0): DescriptorChain {
  const chain = p.device.pop();
  assert.ok(chain, 'expected a chain');
  p.device.pushUsed(chain.head, len(chain));
  return chain;
}

/**
 * Asserts the queue still serves a valid request after hostile ones: the hostile chains come back
 * first, each with used length 0, then the valid one with its length.
 */
function assertStillServes(p: QueuePair, rejected = p.errors.length): void {
  const buf = p.alloc.alloc(8);
  const head = p.driver.add([{ addr: buf, len: 8, writable: true }], 99);
  const chain = serveOne(p, (c) => c.writableLength);
  assert.equal(chain.head, head);
  for (let i = 0; i < rejected; i++) assert.equal(p.driver.popUsed()?.len, 0, 'a rejected chain comes back with length 0');
  assert.deepEqual(p.driver.popUsed(), { head, len: 8, token: 99 });
  assert.equal(p.driver.popUsed(), null);
}

/** Publishes a hand-built chain given as [index, addr, len, flags, next] rows. */
function hostile(p: QueuePair, rows: Array<[number, number, number, number, number]>): number {
  return p.driver.addRaw(rows.map(([index, addr, len, flags, next]) => ({ index, desc: { addr, len, flags, next } })), -1);
}

/** Reads used ring element `i` straight from memory (layout of VIRTIO 1.3 §2.7.8). */
function rawUsed(p: QueuePair, i: number): { id: number; len: number } {
  const view = new DataView(p.memory.buffer);
  const off = p.addrs.used + 4 + 8 * i;
  return { id: view.getUint32(off, true), len: view.getUint32(off + 4, true) };
}

test('round trip: readable and writable buffers reach the device in order and come back', () => {
  const p = createQueuePair();
  const out = p.alloc.alloc(16);
  const in1 = p.alloc.alloc(32);
  const in2 = p.alloc.alloc(8);
  p.memory.write(out, new TextEncoder().encode('hello, device!!!'));
  const head = p.driver.add([{ addr: out, len: 16 }, { addr: in1, len: 32, writable: true }, { addr: in2, len: 8, writable: true }], 7);
  const chain = p.device.pop();
  assert.ok(chain);
  assert.equal(chain.head, head);
  assert.deepEqual(chain.readable, [{ addr: out, len: 16 }]);
  assert.deepEqual(chain.writable, [{ addr: in1, len: 32 }, { addr: in2, len: 8 }]);
  assert.equal(new TextDecoder().decode(chain.reader().readBytes(16)), 'hello, device!!!');
  const w = chain.writer();
  w.write(new Uint8Array(36).fill(0xab));
  assert.equal(w.remaining, 4);
  p.device.pushUsed(chain.head, 36);
  assert.equal(p.device.pop(), null);
  assert.deepEqual(rawUsed(p, 0), { id: head, len: 36 });
  assert.equal(new DataView(p.memory.buffer).getUint16(p.addrs.used + 2, true), 1, 'used.idx');
  assert.deepEqual(p.driver.popUsed(), { head, len: 36, token: 7 });
  assert.equal(p.memory.readU8(in2 + 3), 0xab);
  assert.equal(p.memory.readU8(in2 + 4), 0);
  assert.equal(p.driver.numFree, 16);
});

test('round trip: 16-bit indexes wrap around', () => {
  const p = createQueuePair({ size: 4, startIndex: 0xfffe });
  for (let i = 0; i < 6; i++) {
    const buf = p.alloc.alloc(4);
    const head = p.driver.add([{ addr: buf, len: 4, writable: true }], i);
    serveOne(p, () => 4);
    assert.deepEqual(p.driver.popUsed(), { head, len: 4, token: i });
  }
  assert.equal(p.device.nextAvail, 4);
  assert.equal(p.device.nextUsed, 4);
});

test('indirect: a chain in an indirect table is walked like a direct one', () => {
  const p = createQueuePair({ indirect: true });
  const table = p.alloc.alloc(3 * 16);
  const a = p.alloc.alloc(8);
  const b = p.alloc.alloc(8);
  const c = p.alloc.alloc(8);
  const head = p.driver.add([{ addr: a, len: 8 }, { addr: b, len: 8 }, { addr: c, len: 8, writable: true }], 1, { indirectTable: table });
  assert.equal(p.driver.numFree, 15, 'one ring descriptor for the whole chain');
  const chain = serveOne(p, () => 8);
  assert.equal(chain.head, head);
  assert.deepEqual(chain.readable, [{ addr: a, len: 8 }, { addr: b, len: 8 }]);
  assert.deepEqual(chain.writable, [{ addr: c, len: 8 }]);
  assert.deepEqual(p.driver.popUsed(), { head, len: 8, token: 1 });
});

test('notifications without EVENT_IDX: NO_INTERRUPT and NO_NOTIFY flags', () => {
  const p = createQueuePair();
  const buf = p.alloc.alloc(8);
  p.driver.add([{ addr: buf, len: 8, writable: true }], 0);
  assert.equal(p.driver.needsKick(), true, 'device did not ask for silence');
  p.device.disableNotifications();
  p.driver.add([{ addr: buf, len: 8, writable: true }], 1);
  assert.equal(p.driver.needsKick(), false, 'VIRTQ_USED_F_NO_NOTIFY suppresses the kick');
  assert.equal(p.device.enableNotifications(), true, 'buffers are pending after re-enabling');
  serveOne(p);
  assert.equal(p.device.needsNotification(), true);
  p.driver.suppressInterrupts(true);
  serveOne(p);
  assert.equal(p.device.needsNotification(), false, 'VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the interrupt');
  assert.equal(p.device.needsNotification(), false, 'nothing new was used');
  assert.equal(p.device.enableNotifications(), false);
  assert.deepEqual({ sent: p.device.stats.notificationsSent, suppressed: p.device.stats.notificationsSuppressed }, { sent: 1, suppressed: 1 });
});

test('notifications with EVENT_IDX: used_event and avail_event decide', () => {
  const p = createQueuePair({ eventIdx: true });
  const buf = p.alloc.alloc(8);
  // Device publishes avail_event = 0: the driver's first chain (index 0) needs a kick.
  assert.equal(p.device.enableNotifications(), false);
  p.driver.add([{ addr: buf, len: 8, writable: true }], 0);
  assert.equal(p.driver.needsKick(), true);
  // avail_event still 0: chains 1 and 2 do not cross it, no kick.
  p.driver.add([{ addr: buf, len: 8, writable: true }], 1);
  p.driver.add([{ addr: buf, len: 8, writable: true }], 2);
  assert.equal(p.driver.needsKick(), false);
  // Driver asks for an interrupt only after the third used buffer (used_event = 2).
  p.driver.setUsedEvent(2);
  serveOne(p);
  assert.equal(p.device.needsNotification(), false, 'used idx 1 has not passed used_event 2');
  serveOne(p);
  serveOne(p);
  assert.equal(p.device.needsNotification(), true, 'used idx went 1 → 3, crossing used_event 2');
  // avail_event written at 2 + 4·size u16s into the used ring (§2.7.8).
  assert.equal(p.device.enableNotifications(), false);
  assert.equal(new DataView(p.memory.buffer).getUint16(p.addrs.used + 4 + 8 * 16, true), 3);
});

test('EVENT_IDX, a ring taken over after a crash: used entries published past used_event without a notification make the next decision notify', () => {
  // The first device (a back-end about to be killed) serves three chains but never notifies;
  // the driver had asked for an interrupt after the first (used_event = 0).
  const p = createQueuePair({ eventIdx: true });
  const buf = p.alloc.alloc(8);
  for (let i = 0; i < 5; i++) p.driver.add([{ addr: buf, len: 8, writable: true }], i);
  p.driver.setUsedEvent(0);
  serveOne(p);
  serveOne(p);
  serveOne(p);
  // A new device on the same rings, resuming at used.idx (what QEMU sends after a crash).
  const next = new DeviceQueue({ size: 16, rings: resolveRings(p.memory, 16, p.addrs), memory: p.memory, indirect: false, eventIdx: true, nextAvail: 3, onError: () => {} });
  const chain = next.pop();
  assert.ok(chain !== null);
  next.pushUsed(chain.head, 0);
  assert.equal(next.needsNotification(), true, 'the driver still waits for the interrupt for used_event 0: sent now');
  // From then on, used_event decides as usual.
  p.driver.setUsedEvent(10);
  const c2 = next.pop();
  assert.ok(c2 !== null);
  next.pushUsed(c2.head, 0);
  assert.equal(next.needsNotification(), false, 'used idx 5 has not passed used_event 10');
});

test('chain reader and writer: cursors span buffers and stop at the end', () => {
  const p = createQueuePair();
  const r1 = p.alloc.alloc(3);
  const r2 = p.alloc.alloc(5);
  p.memory.write(r1, Uint8Array.of(1, 2, 3));
  p.memory.write(r2, Uint8Array.of(4, 5, 6, 7, 8));
  p.driver.add([{ addr: r1, len: 3 }, { addr: r2, len: 5 }], 0);
  const chain = serveOne(p);
  const rd = chain.reader();
  assert.deepEqual([...rd.readBytes(4)], [1, 2, 3, 4]);
  assert.equal(rd.remaining, 4);
  assert.deepEqual(rd.segments(4).map((s) => [...s]), [[5, 6, 7, 8]]);
  assert.throws(() => rd.readBytes(1), RangeError);
});

/* ---- Hostile chains: one named test per case of the foundation issue. ---- */

test('hostile: head descriptor index >= queue size → queue stops, device needs reset', () => {
  const p = createQueuePair({ size: 8 });
  p.driver.publish(8);
  assert.equal(p.device.pop(), null);
  assert.equal(p.device.broken?.code, 'VIRTQ_HEAD_OUT_OF_RANGE');
  assert.equal(p.errors[0]?.error.fatal, true);
  assert.equal(p.device.pending(), 0, 'a broken queue offers nothing');
});

test('hostile: next descriptor index >= queue size → chain used with length 0', () => {
  const p = createQueuePair({ size: 8 });
  const buf = p.alloc.alloc(8);
  hostile(p, [[0, buf, 8, VIRTQ_DESC_F_NEXT, 8]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_NEXT_OUT_OF_RANGE');
  assert.deepEqual(rawUsed(p, 0), { id: 0, len: 0 });
  assert.equal(p.device.stats.chainsRejected, 1);
  assertStillServes(p);
});

test('hostile: loop (chain longer than the queue size) → chain used with length 0', () => {
  const p = createQueuePair({ size: 4 });
  const buf = p.alloc.alloc(8);
  hostile(p, [[0, buf, 8, VIRTQ_DESC_F_NEXT, 1], [1, buf, 8, VIRTQ_DESC_F_NEXT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_CHAIN_LOOP');
  assert.deepEqual(rawUsed(p, 0), { id: 0, len: 0 });
  // A self-loop inside an indirect table is caught the same way.
  const q = createQueuePair({ size: 4, indirect: true });
  const table = q.alloc.alloc(32);
  q.memory.writeU32(table + 8, 8);
  q.memory.writeU16(table + 12, VIRTQ_DESC_F_NEXT);
  q.memory.writeU16(table + 14, 0);
  hostile(q, [[2, table, 32, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(q.device.pop(), null);
  assert.equal(q.errors[0]?.error.code, 'VIRTQ_CHAIN_LOOP');
  assertStillServes(q);
});

test('hostile: nested indirect → chain used with length 0', () => {
  const p = createQueuePair({ indirect: true });
  const inner = p.alloc.alloc(16);
  const outer = p.alloc.alloc(16);
  p.memory.writeU32(outer + 8, 16);
  p.memory.writeU16(outer + 12, VIRTQ_DESC_F_INDIRECT);
  p.memory.writeU32(outer, inner);
  hostile(p, [[3, outer, 16, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_NESTED_INDIRECT');
  assert.deepEqual(rawUsed(p, 0), { id: 3, len: 0 });
  assertStillServes(p);
});

test('hostile: indirect table length zero → chain used with length 0', () => {
  const p = createQueuePair({ indirect: true });
  hostile(p, [[0, p.alloc.alloc(16), 0, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_INDIRECT_BAD_LENGTH');
  assertStillServes(p);
});

test('hostile: indirect table length not a multiple of 16 → chain used with length 0', () => {
  const p = createQueuePair({ indirect: true });
  hostile(p, [[0, p.alloc.alloc(32), 24, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_INDIRECT_BAD_LENGTH');
  assertStillServes(p);
});

test('hostile: INDIRECT flag when INDIRECT_DESC was not negotiated → chain used with length 0', () => {
  const p = createQueuePair({ indirect: false });
  const table = p.alloc.alloc(16);
  p.memory.writeU32(table, p.alloc.alloc(8));
  p.memory.writeU32(table + 8, 8);
  hostile(p, [[0, table, 16, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_INDIRECT_NOT_NEGOTIATED');
  assertStillServes(p);
});

test('hostile: INDIRECT together with NEXT → chain used with length 0', () => {
  const p = createQueuePair({ indirect: true });
  hostile(p, [[0, p.alloc.alloc(16), 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_INDIRECT_WITH_NEXT');
  assertStillServes(p);
});

test('hostile: a readable descriptor after a writable one → chain used with length 0', () => {
  const p = createQueuePair();
  const buf = p.alloc.alloc(16);
  hostile(p, [[0, buf, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1], [1, buf + 8, 8, 0, 0]]);
  assert.equal(p.device.pop(), null);
  assert.equal(p.errors[0]?.error.code, 'VIRTQ_READABLE_AFTER_WRITABLE');
  assertStillServes(p);
});

test('hostile: total length above 2^32 → chain used with length 0', () => {
  // Buffers must lie in guest memory, so reach 2^32 with an indirect table of 4097 descriptors that
  // each cover the whole 1 MiB memory: 4097 MiB > 2^32 bytes, though every buffer is valid alone.
  const q = createQueuePair({ size: 8, memorySize: 1 << 20, indirect: true });
  const entries = 4097;
  const table = q.alloc.alloc(entries * 16);
  for (let i = 0; i < entries; i++) {
    q.memory.writeU32(table + i * 16, 0);
    q.memory.writeU32(table + i * 16 + 8, 1 << 20);
    q.memory.writeU16(table + i * 16 + 12, i < entries - 1 ? VIRTQ_DESC_F_NEXT : 0);
    q.memory.writeU16(table + i * 16 + 14, i + 1);
  }
  hostile(q, [[0, table, entries * 16, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(q.device.pop(), null);
  assert.equal(q.errors[0]?.error.code, 'VIRTQ_CHAIN_TOO_LARGE');
  assert.deepEqual(q.errors[0]?.head, 0);
  assertStillServes(q);
});

test('hostile: addresses outside guest memory → chain used with length 0, nothing touched', () => {
  const p = createQueuePair({ indirect: true, memorySize: 1 << 16 });
  const cases = [
    { addr: (1 << 16) - 4, len: 8 }, // straddles the end
    { addr: 1 << 16, len: 1 }, // just past the end
    { addr: 2 ** 32, len: 16 }, // high word set
    { addr: 0xffff_ffff * 2 ** 32 + 0xffff_f000, len: 0x2000 }, // would wrap in u64 arithmetic
  ];
  for (const [i, c] of cases.entries()) hostile(p, [[i, c.addr, c.len, VIRTQ_DESC_F_WRITE, 0]]);
  // An indirect table outside memory is refused the same way.
  hostile(p, [[5, 1 << 20, 32, VIRTQ_DESC_F_INDIRECT, 0]]);
  assert.equal(p.device.pop(), null);
  assert.deepEqual(p.errors.map((e) => e.error.code), Array(5).fill('VIRTQ_BUFFER_OUT_OF_RANGE'));
  assert.deepEqual(p.errors.map((e) => e.head), [0, 1, 2, 3, 5]);
  assertStillServes(p);
});

test('hostile: avail.idx more than queue size ahead → queue stops, device needs reset', () => {
  const p = createQueuePair({ size: 8 });
  p.driver.setAvailIdx(9);
  assert.equal(p.device.pop(), null);
  assert.equal(p.device.broken?.code, 'VIRTQ_AVAIL_IDX_JUMP');
  assert.equal(p.errors[0]?.error.fatal, true);
  assert.equal(p.device.enableNotifications(), false);
  // Exactly queue size ahead is legal: a full ring.
  const q = createQueuePair({ size: 8 });
  for (let i = 0; i < 8; i++) q.driver.add([{ addr: q.alloc.alloc(4), len: 4, writable: true }], i);
  for (let i = 0; i < 8; i++) serveOne(q);
  assert.equal(q.device.broken, undefined);
});

test('setup: misaligned rings and bad sizes are refused with a code', async () => {
  const { DeviceQueue, resolveRings } = await import('./index.js');
  const p = createQueuePair();
  assert.throws(() => resolveRings(p.memory, 16, { desc: 8, avail: 0x200, used: 0x400 }), { code: 'VIRTQ_RING_MISALIGNED' });
  assert.throws(() => resolveRings(p.memory, 16, { desc: 0, avail: 0x200, used: (1 << 20) - 8 }), { code: 'VIRTQ_RING_OUT_OF_RANGE' });
  const rings = resolveRings(p.memory, 16, p.addrs);
  assert.throws(() => new DeviceQueue({ size: 12, rings, memory: p.memory, indirect: false, eventIdx: false }), { code: 'VIRTQ_BAD_SIZE' });
});

test('driver side: a device returning an id that is not outstanding is reported', () => {
  const p = createQueuePair();
  p.driver.add([{ addr: p.alloc.alloc(4), len: 4, writable: true }], 0);
  p.device.pop();
  p.device.pushUsed(5, 0);
  assert.throws(() => p.driver.popUsed(), { code: 'VIRTQ_DRIVER_BAD_USED' });
});

test('pushUsedBatch: several elements become visible with one used.idx store, across the 16-bit wrap', () => {
  const p = createQueuePair({ size: 4, startIndex: 0xfffe });
  const heads = [0, 1, 2].map((i) => p.driver.add([{ addr: p.alloc.alloc(8), len: 8, writable: true }], i));
  const chains = [p.device.pop(), p.device.pop(), p.device.pop()];
  const idxBefore = new DataView(p.memory.buffer).getUint16(p.addrs.used + 2, true);
  p.device.pushUsedBatch(chains.map((c, i) => ({ head: c?.head ?? -1, len: 3 + i })));
  const view = new DataView(p.memory.buffer);
  assert.equal(idxBefore, 0xfffe);
  assert.equal(view.getUint16(p.addrs.used + 2, true), 1, 'used.idx moved by 3 and wrapped');
  // Slots 2, 3, 0 (0xfffe & 3 = 2).
  assert.deepEqual([2, 3, 0].map((s) => rawUsed(p, s)), heads.map((id, i) => ({ id, len: 3 + i })));
  for (let i = 0; i < 3; i++) assert.deepEqual(p.driver.popUsed(), { head: heads[i], len: 3 + i, token: i });
  assert.equal(p.device.needsNotification(), true);
  p.device.pushUsedBatch([]);
  assert.equal(p.device.nextUsed, 1);
});
