// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures for virtqueues: a flat guest memory with one split or packed ring laid out in it, the
 * driver side and the device side wired to the same rings. Exported through `avp/testing`.
 */
import { FlatGuestMemory, RegionGuestMemory } from '../memory/guest-memory.js';
import { GuestAllocator } from '../memory/allocator.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import { DeviceQueue } from './split-device.js';
import type { GuestBuffer } from './chain.js';
import type { QueueError } from './errors.js';
import type { Virtqueue } from './virtqueue.js';
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

/** Guest-physical base of `createGuardedGuest`'s memory. */
export const GUARDED_GUEST_BASE = 0x10000;
/** Where garbage-ring tests put indirect-table noise, as an offset into the guarded guest. */
export const GUARDED_NOISE_OFFSET = 0x2000;
const GUARD_BYTES = 4096;

/** 64 KiB of zeroed guest memory inside a larger buffer whose bytes either side are canaries. */
export interface GuardedGuest {
  readonly memory: RegionGuestMemory;
  /** The guest's bytes, at guest-physical GUARDED_GUEST_BASE. */
  readonly guest: Uint8Array;
  /** Offsets (relative to the guest's start; negative before it) of every canary byte written. */
  canariesWritten(): number[];
}

/** For garbage-ring property tests: nothing outside guest memory may ever be written. */
export function createGuardedGuest(): GuardedGuest {
  const size = 0x10000;
  const backing = new Uint8Array(GUARD_BYTES + size + GUARD_BYTES).fill(0xcc);
  const guest = backing.subarray(GUARD_BYTES, GUARD_BYTES + size);
  guest.fill(0);
  const memory = new RegionGuestMemory([{ guestBase: GUARDED_GUEST_BASE, bytes: guest }]);
  const canariesWritten = (): number[] => {
    const written: number[] = [];
    for (let i = 0; i < GUARD_BYTES; i++) {
      if (backing[i] !== 0xcc) written.push(i - GUARD_BYTES);
      if (backing[GUARD_BYTES + size + i] !== 0xcc) written.push(size + i);
    }
    return written;
  };
  return { memory, guest, canariesWritten };
}

/**
 * Points some of the first `size` descriptors (16 bytes each, at the guest's start) at the noise
 * at GUARDED_NOISE_OFFSET, as `ringBytes` decides, so garbage lists sometimes go deep before failing.
 */
export function seedGarbageDescriptors(g: GuardedGuest, ringBytes: Uint8Array, size: number): void {
  const view = new DataView(g.guest.buffer, g.guest.byteOffset);
  for (let i = 0; i < size; i++) {
    const b = ringBytes[i] ?? 0;
    if (b & 1) view.setUint32(i * 16, GUARDED_GUEST_BASE + GUARDED_NOISE_OFFSET + (b & 0xf0), true);
    if (b & 2) view.setUint32(i * 16 + 4, 0, true);
  }
}

/**
 * Serves a queue over garbage rings like a busy device (up to 3·size + 3 rounds: disable
 * notifications, pop, read and write up to 64 bytes, push used, decide and re-enable
 * notifications). Returns every buffer a popped chain handed out, for the caller to check.
 */
export function serveGarbageQueue(q: Virtqueue): GuestBuffer[] {
  const handedOut: GuestBuffer[] = [];
  for (let i = 0; i < 3 * q.size + 3; i++) {
    q.disableNotifications();
    const chain = q.pop();
    if (chain !== null) {
      handedOut.push(...chain.readable, ...chain.writable);
      const w = chain.writer();
      w.write(new Uint8Array(Math.min(w.remaining, 64)).fill(0xee));
      chain.reader().readBytes(Math.min(chain.readableLength, 64));
      q.pushUsed(chain.head, Math.min(chain.writableLength, 64));
    }
    q.needsNotification();
    if (!q.enableNotifications() && chain === null) break;
  }
  return handedOut;
}
