// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures for virtqueues: a flat guest memory with one split or packed ring laid out in it, the
 * driver side and the device side wired to the same rings. Exported through `avp/testing`.
 */
import { FlatGuestMemory } from '../memory/guest-memory.js';
import { GuestAllocator } from '../memory/allocator.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import { DeviceQueue } from './split-device.js';
import type { QueueError } from './errors.js';
import { DriverQueue } from './split-driver.js';
import { type RingAddresses, resolvePackedRings, resolveRings } from './rings.js';
import { PackedDeviceQueue } from './packed-device.js';
import { PackedDriverQueue } from './packed-driver.js';
import { packedDescRingSize } from '../spec/packed-ring.js';

export interface QueuePairOptions {
  size?: number;
  memorySize?: number;
  eventIdx?: boolean;
  indirect?: boolean;
  /** Starting avail/used index, to exercise 16-bit wrap-around. */
  startIndex?: number;
}

export interface QueuePair {
  memory: FlatGuestMemory;
  alloc: GuestAllocator;
  addrs: RingAddresses;
  driver: DriverQueue<number>;
  device: DeviceQueue;
  /** Errors the device side reported, in order. */
  errors: Array<{ error: QueueError; head: number | undefined }>;
}

/** Lays out one split ring at the start of a flat memory; the rest is free for buffers. */
export function createQueuePair(opts: QueuePairOptions = {}): QueuePair {
  const size = opts.size ?? 16;
  const memory = new FlatGuestMemory(opts.memorySize ?? 1 << 20);
  const alloc = new GuestAllocator(0, memory.totalSize);
  const addrs = {
    desc: alloc.alloc(descTableSize(size), 16),
    avail: alloc.alloc(availRingSize(size), 2),
    used: alloc.alloc(usedRingSize(size), 4),
  };
  const start = opts.startIndex ?? 0;
  const driver = new DriverQueue<number>({ memory, size, addrs, eventIdx: opts.eventIdx ?? false, startIndex: start });
  const errors: QueuePair['errors'] = [];
  const device = new DeviceQueue({
    size,
    rings: resolveRings(memory, size, addrs),
    memory,
    indirect: opts.indirect ?? false,
    eventIdx: opts.eventIdx ?? false,
    nextAvail: start,
    onError: (error, head) => errors.push({ error, head }),
  });
  return { memory, alloc, addrs, driver, device, errors };
}

export interface PackedQueuePair {
  memory: FlatGuestMemory;
  alloc: GuestAllocator;
  addrs: RingAddresses;
  driver: PackedDriverQueue<number>;
  device: PackedDeviceQueue;
  errors: Array<{ error: QueueError; head: number | undefined }>;
}

/**
 * Lays out one packed ring (descriptor ring, driver area, device area) at the start of a flat
 * memory; `base` is the starting position in the vhost-user encoding (default a fresh ring).
 */
export function createPackedQueuePair(opts: QueuePairOptions & { base?: number } = {}): PackedQueuePair {
  const size = opts.size ?? 16;
  const memory = new FlatGuestMemory(opts.memorySize ?? 1 << 20);
  const alloc = new GuestAllocator(0, memory.totalSize);
  const addrs = { desc: alloc.alloc(packedDescRingSize(size), 16), avail: alloc.alloc(4, 4), used: alloc.alloc(4, 4) };
  const eventIdx = opts.eventIdx ?? false;
  const driver = new PackedDriverQueue<number>({ memory, size, addrs, eventIdx, ...(opts.base === undefined ? {} : { base: opts.base }) });
  const errors: PackedQueuePair['errors'] = [];
  const device = new PackedDeviceQueue({
    size,
    rings: resolvePackedRings(memory, size, addrs),
    memory,
    indirect: opts.indirect ?? false,
    eventIdx,
    base: driver.base,
    onError: (error, head) => errors.push({ error, head }),
  });
  return { memory, alloc, addrs, driver, device, errors };
}
