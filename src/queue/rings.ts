// SPDX-License-Identifier: Apache-2.0
/**
 * Locating the three parts of a split ring (VIRTIO 1.3 §2.7, "Virtqueue Part / Alignment /
 * Size") or of a packed ring (§2.8.10.1) in memory.
 *
 * Owns: turning ring addresses into views, with the spec's alignment and the contiguity the
 * device side needs for atomic index access.
 * Does not own: which address space the addresses are in (guest-physical for the in-process
 * harness; front-end virtual for vhost-user SET_VRING_ADDR); the caller passes the right memory.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import { GuestMemoryError } from '../memory/errors.js';
import { VIRTQ_AVAIL_ALIGN, VIRTQ_DESC_ALIGN, VIRTQ_USED_ALIGN, availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import { PVIRTQ_DESC_ALIGN, PVIRTQ_EVENT_ALIGN, PVIRTQ_EVENT_SIZE, packedDescRingSize } from '../spec/packed-ring.js';
import { QueueError } from './errors.js';

/** Addresses of the three ring parts. */
export interface RingAddresses {
  desc: number;
  avail: number;
  used: number;
}

/** Zero-copy views of the three ring parts. */
export interface RingViews {
  desc: Uint8Array;
  avail: Uint8Array;
  used: Uint8Array;
}

/**
 * Resolves ring addresses to views. Each part must lie in one region: the device reads indexes
 * with `Atomics`, which needs a typed array over contiguous memory.
 * @throws QueueError VIRTQ_RING_MISALIGNED or VIRTQ_RING_OUT_OF_RANGE
 */
export function resolveRings(memory: GuestMemory, size: number, addrs: RingAddresses): RingViews {
  return {
    desc: ringPart(memory, 'descriptor table', addrs.desc, descTableSize(size), VIRTQ_DESC_ALIGN, '§2.7'),
    avail: ringPart(memory, 'avail ring', addrs.avail, availRingSize(size), VIRTQ_AVAIL_ALIGN, '§2.7'),
    used: ringPart(memory, 'used ring', addrs.used, usedRingSize(size), VIRTQ_USED_ALIGN, '§2.7'),
  };
}

/** One ring part as a view: `addr` aligned to `align` (per spec section `ref`) and inside one region. */
function ringPart(memory: GuestMemory, name: string, addr: number, len: number, align: number, ref: string): Uint8Array {
  if (!Number.isSafeInteger(addr) || addr % align !== 0) {
    throw new QueueError('VIRTQ_RING_MISALIGNED', `${name} at 0x${addr.toString(16)} is not ${align}-byte aligned (VIRTIO 1.3 ${ref})`);
  }
  try {
    return memory.view(addr, len);
  } catch (e: unknown) {
    if (!(e instanceof GuestMemoryError)) throw e;
    throw new QueueError('VIRTQ_RING_OUT_OF_RANGE', `${name} [0x${addr.toString(16)}, +${len}) is not inside one memory region: ${e.message}`, { cause: e });
  }
}

/**
 * Typed arrays need their byte offset aligned to the element size inside the backing buffer.
 * Guest alignment (checked in resolveRings) implies this when regions start page-aligned in their
 * buffers, which both the flat memory and mmap-ed regions do; this guards the remaining case.
 * @throws QueueError VIRTQ_RING_MISALIGNED
 */
export function checkRingAlignment(rings: RingViews): void {
  if (rings.avail.byteOffset % 2 !== 0 || rings.used.byteOffset % 4 !== 0) {
    throw new QueueError('VIRTQ_RING_MISALIGNED', 'avail or used ring is not aligned inside its backing buffer');
  }
}

/**
 * Resolves the three parts of a packed ring (VIRTIO 1.3 §2.8.10.1: descriptor ring 16-aligned,
 * 16·size bytes; driver and device event suppression structures 4-aligned, 4 bytes). The views
 * come back in `RingViews` order as vhost-user SET_VRING_ADDR carries them: `desc` = Descriptor
 * Area, `avail` = Driver Area (driver event suppression), `used` = Device Area (device event
 * suppression).
 * @throws QueueError VIRTQ_RING_MISALIGNED or VIRTQ_RING_OUT_OF_RANGE
 */
export function resolvePackedRings(memory: GuestMemory, size: number, addrs: RingAddresses): RingViews {
  return {
    desc: ringPart(memory, 'packed descriptor ring', addrs.desc, packedDescRingSize(size), PVIRTQ_DESC_ALIGN, '§2.8.10.1'),
    avail: ringPart(memory, 'driver event suppression area', addrs.avail, PVIRTQ_EVENT_SIZE, PVIRTQ_EVENT_ALIGN, '§2.8.10.1'),
    used: ringPart(memory, 'device event suppression area', addrs.used, PVIRTQ_EVENT_SIZE, PVIRTQ_EVENT_ALIGN, '§2.8.10.1'),
  };
}

/**
 * A DataView over an indirect descriptor table (split §2.7.5.3, packed §2.8.7): zero-copy when it
 * lies in one region, else a copy, which the callers bound by their entry cap (1 MiB at most).
 * `head` names the chain in the error, when the layout has one.
 * @throws QueueError VIRTQ_BUFFER_OUT_OF_RANGE
 */
export function indirectTableView(memory: GuestMemory, addr: number, len: number, head?: number): DataView {
  try {
    const segs = memory.segments(addr, len);
    const only = segs.length === 1 ? segs[0] : undefined;
    if (only !== undefined) return new DataView(only.buffer, only.byteOffset, only.byteLength);
    return new DataView(memory.read(addr, len).buffer);
  } catch (e: unknown) {
    if (!(e instanceof GuestMemoryError)) throw e;
    const what = head === undefined ? 'indirect table' : `indirect table of chain ${head}`;
    throw new QueueError('VIRTQ_BUFFER_OUT_OF_RANGE', `${what} at 0x${addr.toString(16)}+${len} is outside guest memory`, { cause: e });
  }
}
