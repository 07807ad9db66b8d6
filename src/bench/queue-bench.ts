// SPDX-License-Identifier: Apache-2.0
/**
 * Split-queue round-trip benchmark: driver → device → driver in one thread over flat memory.
 * Prints round trips per second for 1- and 4-descriptor chains, one at a time (latency-bound) and
 * in batches of 32 (the way a busy guest fills a ring), plus virtio-rng requests per second through
 * the harness. `npm run bench`; AVP_BENCH_SECONDS sets the time per case (default 2).
 *
 * There is no peer to compare with in-process; the figures track our own regressions, and the
 * vhost-user benchmarks compare against QEMU's devices.
 */
import { createQueuePair } from '../queue/testing.js';
import { DeviceHarness } from '../device/harness.js';
import { RngDevice } from '../devices/rng/model.js';

const seconds = Number(process.env['AVP_BENCH_SECONDS'] ?? 2);

function measure(name: string, step: () => number): void {
  // Warm up the JIT before timing.
  const warmEnd = performance.now() + 200;
  while (performance.now() < warmEnd) step();
  let ops = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) ops += step();
  const elapsed = (performance.now() - start) / 1000;
  const rate = ops / elapsed;
  console.log(`${name.padEnd(44)} ${(rate / 1e6).toFixed(3).padStart(8)} M round trips/s   ${(1e9 / rate).toFixed(0).padStart(6)} ns each`);
}

function queueCase(descs: number, batch: number): void {
  const p = createQueuePair({ size: 256, memorySize: 1 << 22 });
  const bufs = Array.from({ length: descs }, (_, i) => ({ addr: p.alloc.alloc(512, 64), len: 512, writable: i === descs - 1 }));
  measure(`split queue, ${descs}-descriptor chain, batch ${batch}`, () => {
    for (let i = 0; i < batch; i++) p.driver.add(bufs, i);
    p.driver.needsKick();
    for (let c = p.device.pop(); c !== null; c = p.device.pop()) p.device.pushUsed(c.head, c.writableLength);
    p.device.needsNotification();
    while (p.driver.popUsed() !== null);
    return batch;
  });
}

console.log(`AVP split-queue benchmark (${seconds} s per case, node ${process.version})`);
for (const descs of [1, 4]) for (const batch of [1, 32]) queueCase(descs, batch);

const h = new DeviceHarness(new RngDevice());
const buf = h.alloc.alloc(64);
measure('virtio-rng via harness, 64-byte requests', () => {
  h.request(0, [{ addr: buf, len: 64, writable: true }]);
  return 1;
});
