// SPDX-License-Identifier: Apache-2.0
/** virtio-rng through the in-process harness (VIRTIO 1.3 §5.4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../spec/split-ring.js';
import { RngDevice } from './index.js';
import { FakeEntropySource } from './testing.js';

/** The first `n` bytes the fake source produces: 1, 2, 3, ... */
function fakeBytes(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => ((from - 1 + i) % 255) + 1);
}

test('rng: fills the writable buffer and reports used length = bytes written', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }));
  const buf = h.alloc.alloc(64);
  const used = h.request(0, [{ addr: buf, len: 64, writable: true }]);
  assert.equal(used.len, 64);
  assert.deepEqual([...h.memory.read(buf, 64)], fakeBytes(64));
  assert.equal(h.notifications[0], 1);
  assert.deepEqual(h.device.metrics(), {
    device: 'rng', requests: 1, bytes: 64, emptyRequests: 0, cappedRequests: 0, rejectedChains: 0, notifications: 1, suppressedNotifications: 0,
  });
});

test('rng: the real source returns bytes that are not all zero', () => {
  const h = new DeviceHarness(new RngDevice());
  const buf = h.alloc.alloc(4096);
  assert.equal(h.request(0, [{ addr: buf, len: 4096, writable: true }]).len, 4096);
  const bytes = h.memory.read(buf, 4096);
  assert.ok(new Set(bytes).size > 200, 'random bytes take many values');
});

test('rng: device-readable buffers are ignored: not written, not counted', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }));
  const ro = h.alloc.alloc(16);
  h.memory.write(ro, new Uint8Array(16).fill(0x77));
  const wr = h.alloc.alloc(8);
  const used = h.request(0, [{ addr: ro, len: 16 }, { addr: wr, len: 8, writable: true }]);
  assert.equal(used.len, 8);
  assert.deepEqual([...h.memory.read(ro, 16)], Array(16).fill(0x77));
  assert.deepEqual([...h.memory.read(wr, 8)], fakeBytes(8));
});

test('rng: a chain of several writable buffers (and an indirect one) is filled in order', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }));
  const a = h.alloc.alloc(3);
  const b = h.alloc.alloc(5);
  assert.equal(h.request(0, [{ addr: a, len: 3, writable: true }, { addr: b, len: 5, writable: true }]).len, 8);
  assert.deepEqual([...h.memory.read(a, 3), ...h.memory.read(b, 5)], fakeBytes(8));
  const table = h.alloc.alloc(32);
  const c = h.alloc.alloc(4);
  const d = h.alloc.alloc(4);
  assert.equal(h.request(0, [{ addr: c, len: 4, writable: true }, { addr: d, len: 4, writable: true }], { indirectTable: table }).len, 8);
  assert.deepEqual([...h.memory.read(c, 4), ...h.memory.read(d, 4)], fakeBytes(8, 9));
});

test('rng: bytes per request are capped; the rest of the buffer is untouched', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource(), maxBytesPerRequest: 100 }));
  const buf = h.alloc.alloc(300);
  assert.equal(h.request(0, [{ addr: buf, len: 300, writable: true }]).len, 100);
  assert.deepEqual([...h.memory.read(buf + 100, 200)], Array(200).fill(0));
  assert.equal((h.device.metrics() as { cappedRequests: number }).cappedRequests, 1);
});

test('rng: a chain with no writable byte completes with length 0', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }));
  const ro = h.alloc.alloc(8);
  assert.equal(h.request(0, [{ addr: ro, len: 8 }]).len, 0);
  assert.equal((h.device.metrics() as { emptyRequests: number }).emptyRequests, 1);
});

test('rng: a hostile chain is returned with length 0 and the next request is served', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }));
  const q = h.queue(0);
  q.addRaw([{ index: 0, desc: { addr: h.memory.totalSize - 4, len: 64, flags: VIRTQ_DESC_F_WRITE, next: 0 } }], -1);
  q.addRaw([
    { index: 1, desc: { addr: 0x1000, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 2 } },
    { index: 2, desc: { addr: 0x1000, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 } },
  ], -2);
  h.runner.kick(0);
  assert.deepEqual([q.popUsed(), q.popUsed()], [{ head: 0, len: 0, token: -1 }, { head: 1, len: 0, token: -2 }]);
  const buf = h.alloc.alloc(16);
  assert.equal(h.request(0, [{ addr: buf, len: 16, writable: true }]).len, 16);
  const m = h.device.metrics() as { rejectedChains: number; requests: number };
  assert.deepEqual([m.rejectedChains, m.requests], [2, 1]);
  assert.equal(h.logs.filter((l) => l.startsWith('warn: rng: queue 0')).length, 2, 'one log line per rejected chain');
});

test('rng: with EVENT_IDX the driver is interrupted only when used_event is crossed', () => {
  const h = new DeviceHarness(new RngDevice({ source: new FakeEntropySource() }), {
    features: featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC),
  });
  const q = h.queue(0);
  q.setAutoUsedEvent(false);
  q.setUsedEvent(2);
  for (let i = 0; i < 4; i++) h.request(0, [{ addr: h.alloc.alloc(8), len: 8, writable: true }]);
  assert.equal(h.notifications[0], 1, 'only the request that moved used.idx past 2 interrupted');
});

test('rng: offers VERSION_1, INDIRECT_DESC and EVENT_IDX and nothing device-specific', () => {
  assert.equal(new RngDevice().offeredFeatures, featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX));
  assert.throws(() => new RngDevice({ maxBytesPerRequest: 0 }), { code: 'RNG_BAD_OPTION' });
});
