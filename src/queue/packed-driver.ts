// SPDX-License-Identifier: Apache-2.0
/**
 * Packed virtqueue, driver side (VIRTIO 1.3 §2.8.21 "Supplying Buffers to The Device", §2.8.22
 * "Receiving Used Buffers From The Device").
 *
 * Owns: the guest-driver half of a packed ring: zeroing the ring, the driver ring wrap counter,
 * buffer ids, writing lists (direct, or one descriptor pointing at an indirect table) with the
 * first descriptor's flags written last (§2.8.17), the kick decision from the device event
 * suppression structure, collecting used descriptors (skipping each list's length, §2.8.6) and
 * checking them, and the driver event suppression structure. Unit tests, the conformance
 * front-end and benchmarks drive devices with it, as with `split-driver.ts`.
 * Does not own: buffer allocation in guest memory (callers pass addresses), or transports.
 *
 * The device is not trusted: a used descriptor whose id is not a list in flight is reported as
 * VIRTQ_DRIVER_BAD_USED instead of corrupting the driver's state.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  PVIRTQ_DESC_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  type PvirtqDesc,
  isValidPackedQueueSize,
  packOffWrap,
  packedDescRingSize,
  packedNeedEvent,
  pvirtqDesc,
} from '../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../spec/split-ring.js';
import { QueueError } from './errors.js';
import { PACKED_FRESH_BASE } from './packed-device.js';
import { type RingAddresses, resolvePackedRings } from './rings.js';
import type { DriverBuffer, UsedBuffer } from './split-driver.js';
import type { DriverVirtqueue } from './virtqueue.js';

export interface PackedDriverQueueOptions {
  memory: GuestMemory;
  size: number;
  /** `desc` = descriptor ring, `avail` = Driver Area, `used` = Device Area (guest addresses). */
  addrs: RingAddresses;
  eventIdx: boolean;
  /**
   * Starting ring position in the vhost-user encoding (default a fresh ring: index 0, wrap 1).
   * Tests start near the end of the ring or with wrap 0 to cover wrap-around.
   */
  base?: number;
}

interface Outstanding<T> {
  count: number;
  token: T;
}

export class PackedDriverQueue<T = undefined> implements DriverVirtqueue<T> {
  readonly layout = 'packed';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly addrs: RingAddresses;
  readonly eventIdx: boolean;
  readonly #desc16: Uint16Array;
  readonly #driverEvent: Uint16Array;
  readonly #deviceEvent: Uint16Array;
  readonly #freeIds: number[] = [];
  readonly #outstanding = new Map<number, Outstanding<T>>();
  #freeDescs: number;
  #availIdx: number;
  #availWrap: boolean;
  #usedIdx: number;
  #usedWrap: boolean;
  /** Descriptors made available since the last kick decision. */
  #sinceKick = 0;
  #interrupts = true;
  #autoUsedEvent = true;

  /** Zeroes the ring parts and takes every id and descriptor as free. @throws QueueError on bad size or rings. */
  constructor(opts: PackedDriverQueueOptions) {
    if (!isValidPackedQueueSize(opts.size)) throw new QueueError('VIRTQ_BAD_SIZE', `packed queue size ${opts.size} is not in 1..32768`);
    const rings = resolvePackedRings(opts.memory, opts.size, opts.addrs);
    rings.desc.fill(0);
    rings.avail.fill(0);
    rings.used.fill(0);
    this.size = opts.size;
    this.memory = opts.memory;
    this.addrs = opts.addrs;
    this.eventIdx = opts.eventIdx;
    this.#desc16 = new Uint16Array(rings.desc.buffer, rings.desc.byteOffset, packedDescRingSize(opts.size) / 2);
    this.#driverEvent = new Uint16Array(rings.avail.buffer, rings.avail.byteOffset, 2);
    this.#deviceEvent = new Uint16Array(rings.used.buffer, rings.used.byteOffset, 2);
    for (let i = opts.size - 1; i >= 0; i--) this.#freeIds.push(i);
    this.#freeDescs = opts.size;
    const base = (opts.base ?? PACKED_FRESH_BASE) >>> 0;
    this.#availIdx = (base & 0x7fff) % opts.size;
    this.#availWrap = (base & 0x8000) !== 0;
    // A restored ring with nothing in flight: the device's used position equals the avail one.
    this.#usedIdx = this.#availIdx;
    this.#usedWrap = this.#availWrap;
    // A restored ring starting on a wrap-0 lap: mark every slot used by the previous (wrap 1)
    // lap, as it would be, so that no zeroed slot reads as used (AVAIL = USED = 0) on this lap.
    if (!this.#availWrap) for (let i = 0; i < opts.size; i++) this.#desc16[8 * i + 7] = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;
  }

  /** Free descriptors in the ring. */
  get numFree(): number {
    return this.#freeDescs;
  }

  /** Lists made available and not yet used. */
  get inFlight(): number {
    return this.#outstanding.size;
  }

  /** The driver's next avail position in the vhost-user base encoding (index | wrap << 15, used part equal). */
  get base(): number {
    return packOffWrap(this.#availIdx, this.#availWrap) * 0x10001;
  }

  /**
   * Adds a list: readable buffers before writable ones (§2.8.17). With `indirectTable`, writes
   * the list into an indirect table at that guest address and uses one ring descriptor. Returns
   * the buffer id.
   * @throws QueueError VIRTQ_DRIVER_FULL when the ring has too few free descriptors.
   */
  add(buffers: readonly DriverBuffer[], token: T, opts: { indirectTable?: number } = {}): number {
    if (buffers.length === 0) throw new RangeError('a list needs at least one buffer');
    if (opts.indirectTable === undefined) {
      return this.addRaw(
        buffers.map((b, i) => ({ addr: b.addr, len: b.len, id: 0, flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (i < buffers.length - 1 ? VIRTQ_DESC_F_NEXT : 0) })),
        token,
      );
    }
    const table = opts.indirectTable;
    buffers.forEach((b, i) => {
      this.memory.writeObj(pvirtqDesc, table + i * PVIRTQ_DESC_SIZE, { addr: b.addr, len: b.len, id: 0, flags: b.writable ? VIRTQ_DESC_F_WRITE : 0 });
    });
    return this.addRaw([{ addr: table, len: buffers.length * PVIRTQ_DESC_SIZE, id: 0, flags: VIRTQ_DESC_F_INDIRECT }], token);
  }

  /**
   * Writes hand-built descriptors (any NEXT/WRITE/INDIRECT flags, lengths and ids, valid or not)
   * at the next avail positions, the first one's flags last, and tracks the list by the id of its
   * last descriptor (a fresh id unless `id` is given; `id` also lets hostile tests name any id).
   * AVAIL/USED bits are set from the wrap counter unless `rawFlags` (then `flags` is written as
   * given, e.g. a descriptor that is not available). Returns the id.
   * @throws QueueError VIRTQ_DRIVER_FULL when the ring or the id space is exhausted.
   */
  addRaw(descs: readonly PvirtqDesc[], token: T, opts: { id?: number; rawFlags?: boolean } = {}): number {
    if (descs.length === 0) throw new RangeError('addRaw needs at least one descriptor');
    if (descs.length > this.#freeDescs) throw new QueueError('VIRTQ_DRIVER_FULL', `list of ${descs.length} descriptors does not fit: ${this.#freeDescs} free`);
    let id = opts.id;
    if (id === undefined) {
      const fresh = this.#freeIds.pop();
      if (fresh === undefined) throw new QueueError('VIRTQ_DRIVER_FULL', 'no free buffer id');
      id = fresh;
    } else {
      const at = this.#freeIds.indexOf(id);
      if (at >= 0) this.#freeIds.splice(at, 1);
    }
    const first = this.#availIdx;
    let firstFlags = 0;
    descs.forEach((d, i) => {
      const flags = opts.rawFlags === true ? d.flags : this.#availFlags(d.flags);
      // §2.8.6: "Buffer ID is included in the last descriptor in the list"; Linux writes it in
      // every descriptor, so do we (the device must read it from the last one).
      this.memory.writeObj(pvirtqDesc, this.addrs.desc + this.#availIdx * PVIRTQ_DESC_SIZE, { addr: d.addr, len: d.len, id, flags: 0 });
      if (i === 0) firstFlags = flags;
      else Atomics.store(this.#desc16, 8 * this.#availIdx + 7, flags);
      this.#advance();
    });
    // §2.8.17 "MUST NOT make the first descriptor in the list available before all subsequent".
    Atomics.store(this.#desc16, 8 * first + 7, firstFlags);
    this.#outstanding.set(id, { count: descs.length, token });
    this.#freeDescs -= descs.length;
    this.#sinceKick += descs.length;
    return id;
  }

  /** NEXT/WRITE/INDIRECT from `flags` plus AVAIL = wrap counter, USED = its inverse (§2.8.1). */
  #availFlags(flags: number): number {
    const f = flags & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
    return this.#availWrap ? f | VIRTQ_DESC_F_AVAIL : f | VIRTQ_DESC_F_USED;
  }

  #advance(): void {
    if (++this.#availIdx === this.size) {
      this.#availIdx = 0;
      this.#availWrap = !this.#availWrap;
    }
  }

  /**
   * Whether the device wants a notification for the descriptors made available since the last
   * call (§2.8.10, §2.8.21.3): DISABLE never; DESC (with EVENT_IDX) when the named position was
   * among them; otherwise always.
   */
  needsKick(): boolean {
    const count = this.#sinceKick;
    this.#sinceKick = 0;
    if (count === 0) return false;
    const flags = Atomics.load(this.#deviceEvent, 1) & 0x3;
    if (flags === RING_EVENT_FLAGS_DISABLE) return false;
    if (flags === RING_EVENT_FLAGS_DESC && this.eventIdx) return packedNeedEvent(this.size, Atomics.load(this.#deviceEvent, 0), this.#availIdx, this.#availWrap, count);
    return true;
  }

  /** 1 when the descriptor at the next used position is used, else 0. */
  usedPending(): number {
    // Nothing in flight: the slot at the used position was never made available on this lap.
    if (this.#outstanding.size === 0) return 0;
    const f = Atomics.load(this.#desc16, 8 * this.#usedIdx + 7);
    const used = (f & VIRTQ_DESC_F_USED) !== 0;
    return used === this.#usedWrap && (f & VIRTQ_DESC_F_AVAIL) !== 0 === this.#usedWrap ? 1 : 0;
  }

  /**
   * Collects the next used list, freeing its id and descriptors; null when none is pending.
   * @throws QueueError VIRTQ_DRIVER_BAD_USED when the id is not a list in flight.
   */
  popUsed(): UsedBuffer<T> | null {
    if (this.usedPending() === 0) return null;
    const off = this.addrs.desc + this.#usedIdx * PVIRTQ_DESC_SIZE;
    const id = this.memory.readU16(off + 12);
    const len = this.memory.readU32(off + 8);
    const entry = this.#outstanding.get(id);
    if (entry === undefined) throw new QueueError('VIRTQ_DRIVER_BAD_USED', `device returned buffer id ${id}, which is not a list in flight`);
    this.#outstanding.delete(id);
    this.#freeIds.push(id);
    this.#freeDescs += entry.count;
    this.#usedIdx += entry.count;
    while (this.#usedIdx >= this.size) {
      this.#usedIdx -= this.size;
      this.#usedWrap = !this.#usedWrap;
    }
    if (this.eventIdx && this.#interrupts && this.#autoUsedEvent) this.setUsedEvent(packOffWrap(this.#usedIdx, this.#usedWrap));
    return { head: id, len, token: entry.token };
  }

  /** Whether `popUsed` moves the used event to the next position (default true, as Linux does). */
  setAutoUsedEvent(on: boolean): void {
    this.#autoUsedEvent = on;
  }

  /** EVENT_IDX: ask for a notification when the device marks `offWrap` (index | wrap << 15) used. */
  setUsedEvent(offWrap: number): void {
    Atomics.store(this.#driverEvent, 0, offWrap & 0xffff);
    Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_DESC);
  }

  /** Sets or clears used-buffer notification suppression (DISABLE, or ENABLE / DESC at the next used position). */
  suppressInterrupts(on: boolean): void {
    this.#interrupts = !on;
    if (on) Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_DISABLE);
    else if (this.eventIdx) this.setUsedEvent(packOffWrap(this.#usedIdx, this.#usedWrap));
    else Atomics.store(this.#driverEvent, 1, RING_EVENT_FLAGS_ENABLE);
  }

  /** Raw flags of descriptor `index` (tests). */
  flagsAt(index: number): number {
    return Atomics.load(this.#desc16, 8 * index + 7);
  }

  /** The next avail position (index, wrap counter). */
  get availPosition(): { idx: number; wrap: boolean } {
    return { idx: this.#availIdx, wrap: this.#availWrap };
  }
}
