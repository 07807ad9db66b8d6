// SPDX-License-Identifier: Apache-2.0
/**
 * Inflight I/O tracking (inflight.ts): the record's layout, the three algorithms of the vhost-user
 * document driven through a real split ring (a back-end "killed" between two steps and a new queue
 * built on the same record and rings), resubmission in counter order, the used_idx repair, and a
 * hostile front-end: bad descriptions and files refused before mapping, and any record contents
 * (fast-check) resumed without a throw and within the queue's bounds.
 * Expected offsets are the document's struct layout, written here as numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InflightRegion, SplitInflightQueue, inflightQueueStride, inflightRegionSize } from './inflight.js';
import { VhostUserBackendError } from './backend-errors.js';
import { createQueuePair } from '../queue/testing.js';
import { DeviceQueue } from '../queue/split-device.js';
import { resolveRings } from '../queue/rings.js';
import type { InflightTracker } from '../queue/inflight.js';
import { closeQuiet, eventfdCreate, memfdCreate, mmapShared, munmap, ftruncate, getSeals, F_SEAL_SHRINK } from '../sys/index.js';

const SIZE = 16;

function record(size = SIZE): { buf: ArrayBuffer; view: DataView; q: SplitInflightQueue } {
  const buf = new ArrayBuffer(inflightQueueStride(size));
  const view = new DataView(buf);
  return { buf, view, q: new SplitInflightQueue(view, size) };
}

/** DescStateSplit i: inflight u8 at 16+16i, next u16 at +6, counter u64 at +8. */
const inflightAt = (v: DataView, i: number): number => v.getUint8(16 + 16 * i);
const setDesc = (v: DataView, i: number, inflight: number, counter: bigint, next = 0): void => {
  v.setUint8(16 + 16 * i, inflight);
  v.setUint16(16 + 16 * i + 6, next, true);
  v.setBigUint64(16 + 16 * i + 8, counter, true);
};
/** Header: version u16 at 8, desc_num at 10, last_batch_head at 12, used_idx at 14. */
const setHeader = (v: DataView, version: number, lastBatchHead: number, usedIdx: number): void => {
  v.setUint16(8, version, true);
  v.setUint16(12, lastBatchHead, true);
  v.setUint16(14, usedIdx, true);
};

test('inflight: per-queue size is 16 + 16 per descriptor rounded up to 64 bytes (the libvhost-user layout)', () => {
  for (const qs of [1, 2, 4, 8, 128, 256, 1024, 32768]) {
    // libvhost-user: ALIGN_UP(sizeof(VuDescStateSplit) * queue_size + sizeof(uint16_t), 64).
    const lib = Math.ceil((16 * qs + 2) / 64) * 64;
    assert.equal(inflightQueueStride(qs), lib, `queue size ${qs}`);
    assert.ok(inflightQueueStride(qs) >= 16 + 16 * qs);
  }
  assert.equal(inflightRegionSize(2, 128), 2 * 2112);
});

test('inflight: a fresh record is initialised (version 1, used_idx from the ring) and nothing is resubmitted', () => {
  const { view, q } = record();
  view.setUint8(16 + 16 * 3, 1); // stale garbage in a fresh record is cleared
  assert.equal(q.resume(SIZE, 7), undefined);
  assert.equal(q.version, 1);
  assert.equal(view.getUint16(10, true), SIZE);
  assert.equal(q.usedIdx, 7);
  assert.equal(inflightAt(view, 3), 0);
  assert.deepEqual(q.lastResume, { fresh: true, repaired: 0, resubmit: [] });
});

test('inflight: chains in flight are resubmitted in the order of their counters, not of their heads', () => {
  const { view, q } = record();
  setHeader(view, 1, 0, 40);
  setDesc(view, 7, 1, 5n);
  setDesc(view, 9, 1, 2n);
  setDesc(view, 1, 1, 9n);
  setDesc(view, 4, 0, 1n); // done: not resubmitted
  const r = q.resume(SIZE, 40);
  assert.deepEqual(r, { nextAvail: 43, resubmit: [9, 7, 1] });
  // Counters renumbered in that order; the next chain taken gets the next number.
  q.popped(12);
  assert.equal(view.getBigUint64(16 + 16 * 12 + 8, true), 3n);
  assert.equal(inflightAt(view, 12), 1);
});

test('inflight: used_idx repair clears the last batch when the back-end died after used.idx was stored', () => {
  const { view, q } = record();
  q.resume(SIZE, 100);
  q.popped(3);
  q.popped(5);
  q.popped(6);
  // A batch of two is returned: elements written, used.idx stored (102) ... and the process dies
  // before `published` cleared them.
  q.publishing(5);
  q.publishing(3);
  assert.equal(q.lastBatchHead, 3);
  const restarted = new SplitInflightQueue(view, SIZE);
  const r = restarted.resume(SIZE, 102);
  assert.deepEqual(r, { nextAvail: 103, resubmit: [6] });
  assert.equal(restarted.lastResume?.repaired, 2);
  assert.equal(restarted.usedIdx, 102);
  assert.equal(inflightAt(view, 3) + inflightAt(view, 5), 0);
});

test('inflight: no repair when the back-end died before used.idx was stored: the batch is resubmitted', () => {
  const { view, q } = record();
  q.resume(SIZE, 0xfffe);
  q.popped(2);
  q.popped(4);
  q.publishing(2);
  const r = new SplitInflightQueue(view, SIZE).resume(SIZE, 0xfffe);
  // 16-bit wrap: 0xfffe + 2.
  assert.deepEqual(r, { nextAvail: 0, resubmit: [2, 4] });
});

/** Forwards to `inner` and "kills the process" (throws) at the `n`th call of `step`. */
function dyingTracker(inner: InflightTracker, step: keyof InflightTracker, n: number): InflightTracker {
  let calls = 0;
  const die = (s: keyof InflightTracker) => {
    if (s === step && ++calls === n) throw new Error('SIGKILL');
  };
  return {
    resume: (a, b) => inner.resume(a, b),
    popped: (h) => (inner.popped(h), die('popped')),
    publishing: (h) => (inner.publishing(h), die('publishing')),
    published: (i) => (die('published'), inner.published(i)),
  };
}

for (const [step, n, label] of [
  ['popped', 3, 'after the third chain was taken'],
  ['publishing', 1, 'after a used element was written, before used.idx'],
  ['published', 1, 'after used.idx was stored, before the record was cleared'],
] as const) {
  test(`inflight: a real split ring, back-end killed ${label}: the new queue serves every chain exactly once`, () => {
    const p = createQueuePair({ size: SIZE });
    const { view } = record();
    const fresh = new SplitInflightQueue(view, SIZE);
    const mk = (tracker: InflightTracker, nextAvail: number) =>
      new DeviceQueue({ size: SIZE, rings: resolveRings(p.memory, SIZE, p.addrs), memory: p.memory, indirect: false, eventIdx: false, nextAvail, inflight: tracker });
    const first = mk(dyingTracker(fresh, step, n), 0);
    const heads = [0, 1, 2, 3].map((i) => p.driver.add([{ addr: 0x8000 + i * 64, len: 8, writable: true }], i));
    let served = 0;
    assert.throws(() => {
      for (let c = first.pop(); c !== null; c = first.pop()) {
        first.pushUsed(c.head, 8);
        served++;
      }
    }, /SIGKILL/);
    // What QEMU sends after a back-end died: SET_VRING_BASE = the used index it knows.
    const usedNow = new DataView(p.memory.read(p.addrs.used + 2, 2).buffer).getUint16(0, true);
    const second = mk(new SplitInflightQueue(view, SIZE), usedNow);
    for (let c = second.pop(); c !== null; c = second.pop()) second.pushUsed(c.head, 8);
    const got: number[] = [];
    for (let u = p.driver.popUsed(); u !== null; u = p.driver.popUsed()) got.push(u.token);
    assert.deepEqual([...got].sort(), [0, 1, 2, 3], `each of ${heads.length} chains returned exactly once (served ${served} before the kill)`);
    for (let i = 0; i < SIZE; i++) assert.equal(inflightAt(view, i), 0, `descriptor ${i} no longer in flight`);
  });
}

test('inflight: hostile record contents never throw, and resubmission stays within the queue', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: inflightQueueStride(32), maxLength: inflightQueueStride(32) }), fc.constantFrom(1, 2, 8, 16, 32), fc.integer({ min: 0, max: 0xffff }), (bytes, size, usedIdx) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      view.setUint16(8, 1, true); // a record "in use", contents otherwise random
      const q = new SplitInflightQueue(view, 32);
      const r = q.resume(size, usedIdx);
      assert.ok(r !== undefined);
      assert.ok(r.resubmit.length <= size);
      assert.equal(new Set(r.resubmit).size, r.resubmit.length, 'no head twice');
      assert.ok(r.resubmit.every((h) => h >= 0 && h < size));
      assert.equal(r.nextAvail, (usedIdx + r.resubmit.length) & 0xffff);
      for (let i = size; i < 32; i++) assert.equal(inflightAt(view, i), 0, 'slots past the queue size are cleared');
    }),
    { numRuns: Number(process.env['AVP_PROPERTY_RUNS'] ?? 100) },
  );
});

test('inflight: a last_batch_head and next chain pointing outside the queue (or looping) end the repair', () => {
  const { view, q } = record();
  setHeader(view, 1, 0xffff, 10);
  assert.deepEqual(q.resume(SIZE, 20), { nextAvail: 20, resubmit: [] });
  setHeader(view, 1, 2, 10);
  setDesc(view, 2, 1, 0n, 2); // loops onto itself
  setDesc(view, 5, 1, 1n);
  assert.deepEqual(new SplitInflightQueue(view, SIZE).resume(SIZE, 0x200), { nextAvail: 0x201, resubmit: [5] });
});

function assertBadInflight(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof VhostUserBackendError && e.code === 'VHOST_USER_BAD_INFLIGHT' && re.test(e.message));
}

test('inflight: SET_INFLIGHT_FD descriptions and files that cannot be used are refused before mapping', (t) => {
  const need = inflightRegionSize(1, 128);
  const good = memfdCreate('inflight-good', need, { allowSealing: true });
  const small = memfdCreate('inflight-small', need - 64, { allowSealing: true });
  const unsealable = memfdCreate('inflight-unsealable', need);
  const efd = eventfdCreate();
  t.after(() => [good, small, unsealable, efd].forEach((fd) => closeQuiet(fd)));
  const body = { mmapSize: need, mmapOffset: 0, numQueues: 1, queueSize: 128 };
  assertBadInflight(() => InflightRegion.adopt({ ...body, numQueues: 0 }, good, 1), /num_queues is 0/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, queueSize: 100 }, good, 1), /queue_size 100/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, queueSize: 0 }, good, 1), /queue_size 0/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, mmapSize: need - 1 }, good, 1), /mmap_size .* smaller/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, mmapOffset: 100 }, good, 1), /not a multiple of the page size/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, mmapOffset: 4096 }, good, 1), /fewer than mmap_offset/);
  assertBadInflight(() => InflightRegion.adopt({ ...body, mmapOffset: 2 ** 53 }, good, 1), /out of range|page size/);
  assertBadInflight(() => InflightRegion.adopt(body, small, 1), /the file has \d+ bytes/);
  assertBadInflight(() => InflightRegion.adopt(body, unsealable, 1), /cannot be sealed/);
  assertBadInflight(() => InflightRegion.adopt(body, efd, 1), /not a regular file/);
  // The good one maps, and is sealed against shrinking from now on.
  // num_queues above the device's ring count: only the rings the device has are mapped.
  const region = InflightRegion.adopt({ ...body, numQueues: 4 }, good, 1);
  assert.ok(region.queue(0) !== undefined);
  assert.equal(region.queue(1), undefined);
  assert.ok(((getSeals(good) ?? 0) & F_SEAL_SHRINK) !== 0);
  assert.throws(() => ftruncate(good, 64), /EPERM/);
  region.release();
  region.release();
});

test('inflight: GET_INFLIGHT_FD allocates a zeroed, shrink-sealed memfd that SET_INFLIGHT_FD adopts with its contents', (t) => {
  const { region, reply, fd } = InflightRegion.allocate({ mmapSize: 0, mmapOffset: 0, numQueues: 1, queueSize: 64 }, 1);
  t.after(() => closeQuiet(fd));
  assert.deepEqual(reply, { mmapSize: inflightRegionSize(1, 64), mmapOffset: 0, numQueues: 1, queueSize: 64 });
  assert.ok(((getSeals(fd) ?? 0) & F_SEAL_SHRINK) !== 0);
  const q = region.queue(0);
  assert.ok(q);
  q.resume(64, 0);
  q.popped(33);
  region.release();
  // A restarted back-end gets the same file back.
  const again = InflightRegion.adopt(reply, fd, 1);
  assert.deepEqual(again.queue(0)?.resume(64, 0), { nextAvail: 1, resubmit: [33] });
  again.release();
  // The front-end's view of the file agrees (it is the same memory).
  const m = mmapShared(fd, reply.mmapSize, 0);
  assert.equal(new DataView(m.buffer).getUint8(16 + 16 * 33), 1);
  munmap(m);
});
