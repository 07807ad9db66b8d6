// SPDX-License-Identifier: Apache-2.0
/**
 * Split virtqueue, driver side (VIRTIO 1.3 §2.7.13 "Supplying Buffers to The Device",
 * §2.7.14 "Receiving Used Buffers From The Device").
 *
 * Owns: the guest-driver half of a ring: initialising the rings, a descriptor free list, adding
 * chains of readable then writable buffers (direct or through an indirect table), the kick
 * decision (EVENT_IDX `avail_event`, otherwise VIRTQ_USED_F_NO_NOTIFY), collecting used buffers
 * and checking them, and `used_event` / VIRTQ_AVAIL_F_NO_INTERRUPT. Unit tests, the in-process
 * harness, benchmarks and the conformance front-end drive devices with it.
 * Does not own: buffer allocation in guest memory (callers pass addresses), or transports.
 *
 * The device is not trusted either: a used element naming a descriptor that is not the head of an
 * outstanding chain is reported as VIRTQ_DRIVER_BAD_USED instead of corrupting the free list
 * (the conformance suite turns that into a FAIL verdict).
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  type VirtqDesc,
  availRingSize,
  isValidQueueSize,
  usedRingSize,
  virtqDesc,
  vringNeedEvent,
} from '../spec/split-ring.js';
import { QueueError } from './errors.js';
import { type RingAddresses, resolveRings } from './rings.js';
import type { DriverVirtqueue } from './virtqueue.js';

/** A buffer the driver offers: device-readable unless `writable`. */
export interface DriverBuffer {
  addr: number;
  len: number;
  writable?: boolean;
}

export interface DriverQueueOptions {
  memory: GuestMemory;
  size: number;
  /** Guest addresses of the rings (the driver and the in-process device share one address space). */
  addrs: RingAddresses;
  eventIdx: boolean;
  /**
   * Initial avail and used index (default 0). Tests start near 0xffff to cover 16-bit wrap-around;
   * both ring indexes are written, as for a ring restored at that position.
   */
  startIndex?: number;
}

/** A used element as the driver receives it. */
export interface UsedBuffer<T> {
  head: number;
  len: number;
  token: T;
}

interface Outstanding<T> {
  descs: number[];
  token: T;
}

export class DriverQueue<T = undefined> implements DriverVirtqueue<T> {
  readonly layout = 'split';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly addrs: RingAddresses;
  readonly eventIdx: boolean;
  readonly #mask: number;
  readonly #avail: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #free: number[] = [];
  readonly #outstanding = new Map<number, Outstanding<T>>();
  #availIdx = 0;
  #kickedAt = 0;
  #lastUsed = 0;
  #interrupts = true;
  #autoUsedEvent = true;

  /** Zeroes the rings and takes every descriptor as free. @throws QueueError on bad size or rings. */
  constructor(opts: DriverQueueOptions) {
    if (!isValidQueueSize(opts.size)) throw new QueueError('VIRTQ_BAD_SIZE', `queue size ${opts.size} is not a power of 2 in 1..32768`);
    const rings = resolveRings(opts.memory, opts.size, opts.addrs);
    rings.desc.fill(0);
    rings.avail.fill(0);
    rings.used.fill(0);
    this.size = opts.size;
    this.memory = opts.memory;
    this.addrs = opts.addrs;
    this.eventIdx = opts.eventIdx;
    this.#mask = opts.size - 1;
    this.#avail = new Uint16Array(rings.avail.buffer, rings.avail.byteOffset, availRingSize(opts.size) / 2);
    this.#used16 = new Uint16Array(rings.used.buffer, rings.used.byteOffset, usedRingSize(opts.size) / 2);
    this.#used32 = new Uint32Array(rings.used.buffer, rings.used.byteOffset, (usedRingSize(opts.size) - 2) / 4);
    for (let i = opts.size - 1; i >= 0; i--) this.#free.push(i);
    const start = (opts.startIndex ?? 0) & 0xffff;
    this.#availIdx = this.#kickedAt = this.#lastUsed = start;
    Atomics.store(this.#avail, 1, start);
    Atomics.store(this.#used16, 1, start);
  }

  /** Free descriptors in the table. */
  get numFree(): number {
    return this.#free.length;
  }

  /** Chains made available and not yet used. */
  get inFlight(): number {
    return this.#outstanding.size;
  }

  /** The driver's avail.idx (free-running, 16 bits). */
  get availIdx(): number {
    return this.#availIdx;
  }

  /**
   * Adds a chain: `buffers` must list readable buffers before writable ones (§2.7.4.2).
   * With `indirectTable`, writes the chain into an indirect table at that guest address and uses a
   * single ring descriptor (the caller negotiated VIRTIO_F_INDIRECT_DESC and reserved
   * 16·buffers.length bytes there). Returns the head descriptor index.
   * @throws QueueError VIRTQ_DRIVER_FULL when the table has too few free descriptors.
   */
  add(buffers: readonly DriverBuffer[], token: T, opts: { indirectTable?: number } = {}): number {
    if (buffers.length === 0) throw new RangeError('a chain needs at least one buffer');
    const descs = opts.indirectTable === undefined ? this.#addDirect(buffers) : this.#addIndirect(buffers, opts.indirectTable);
    // Safe: both paths return at least one descriptor.
    const head = descs[0]!;
    this.#outstanding.set(head, { descs, token });
    this.publish(head);
    return head;
  }

  #take(n: number): number[] {
    if (n > this.#free.length) throw new QueueError('VIRTQ_DRIVER_FULL', `chain of ${n} descriptors does not fit: ${this.#free.length} free`);
    // Safe: length checked above.
    return Array.from({ length: n }, () => this.#free.pop()!);
  }

  #addDirect(buffers: readonly DriverBuffer[]): number[] {
    const descs = this.#take(buffers.length);
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDesc(descs[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : descs[i + 1]!,
      });
    });
    return descs;
  }

  #addIndirect(buffers: readonly DriverBuffer[], table: number): number[] {
    const descs = this.#take(1);
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.memory.writeObj(virtqDesc, table + i * VIRTQ_DESC_SIZE, {
        addr: b.addr,
        len: b.len,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : i + 1,
      });
    });
    this.writeDesc(descs[0]!, { addr: table, len: buffers.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    return descs;
  }

  /**
   * Writes hand-built descriptors (any flags, lengths or links, valid or not) at the given table
   * indexes, takes those indexes off the free list, tracks the first one as an outstanding head and
   * publishes it. The conformance suite and hostile tests build malformed chains with it and then
   * expect them back through `popUsed`. With `written`, the descriptors are already in the table
   * (written byte by byte, e.g. with 64-bit addresses the codec cannot express): only their
   * indexes are taken, tracked and published (`desc` is then ignored).
   */
  addRaw(descs: ReadonlyArray<{ index: number; desc: VirtqDesc }>, token: T, opts: { written?: boolean } = {}): number {
    const first = descs[0];
    if (first === undefined) throw new RangeError('addRaw needs at least one descriptor');
    const indexes = descs.map((d) => d.index);
    if (opts.written !== true) for (const d of descs) this.writeDesc(d.index, d.desc);
    const taken = new Set(indexes);
    const kept = this.#free.filter((i) => !taken.has(i));
    this.#free.length = 0;
    this.#free.push(...kept);
    this.#outstanding.set(first.index, { descs: indexes.filter((i) => i < this.size), token });
    this.publish(first.index);
    return first.index;
  }

  /**
   * The descriptor indexes the next `add` of `n` descriptors would take, in order, without taking
   * them. Hostile tests build chains at exactly these indexes with `addRaw`.
   * @throws QueueError VIRTQ_DRIVER_FULL when fewer than `n` are free.
   */
  peekFree(n: number): number[] {
    if (n > this.#free.length) throw new QueueError('VIRTQ_DRIVER_FULL', `${n} descriptors asked for, ${this.#free.length} free`);
    return this.#free.slice(this.#free.length - n).reverse();
  }

  /** Writes descriptor `index` of the ring's table. Low-level: hostile tests craft chains with it. */
  writeDesc(index: number, desc: VirtqDesc): void {
    this.memory.writeObj(virtqDesc, this.addrs.desc + index * VIRTQ_DESC_SIZE, desc);
  }

  /**
   * Puts `head` in the next avail slot and publishes it by bumping avail.idx (§2.7.13.2: the ring
   * entry is written before the index). Low-level: `add` calls it; hostile tests call it with any
   * value.
   */
  publish(head: number): void {
    Atomics.store(this.#avail, 2 + (this.#availIdx & this.#mask), head);
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    Atomics.store(this.#avail, 1, this.#availIdx);
  }

  /** Sets avail.idx directly (hostile tests: jumps ahead of the ring). */
  setAvailIdx(idx: number): void {
    this.#availIdx = idx & 0xffff;
    Atomics.store(this.#avail, 1, this.#availIdx);
  }

  /**
   * Whether the device wants a notification for the chains published since the last call
   * (§2.7.13.4). With EVENT_IDX: when `avail_event` lies in [old, new); otherwise unless the device
   * set VIRTQ_USED_F_NO_NOTIFY.
   */
  needsKick(): boolean {
    const old = this.#kickedAt;
    const now = this.#availIdx;
    this.#kickedAt = now;
    if (old === now) return false;
    if (this.eventIdx) return vringNeedEvent(Atomics.load(this.#used16, 2 + 4 * this.size), now, old);
    return (Atomics.load(this.#used16, 0) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Number of used elements the device has published and the driver has not collected. */
  usedPending(): number {
    return (Atomics.load(this.#used16, 1) - this.#lastUsed) & 0xffff;
  }

  /**
   * Collects the next used element, freeing its descriptors; null when none is pending.
   * @throws QueueError VIRTQ_DRIVER_BAD_USED when the device returns something that is not an
   * outstanding head, or more elements than were made available.
   */
  popUsed(): UsedBuffer<T> | null {
    const pending = this.usedPending();
    if (pending === 0) return null;
    if (pending > this.size) throw new QueueError('VIRTQ_DRIVER_BAD_USED', `device moved used.idx ${pending} entries ahead, more than the queue size`);
    const slot = this.#lastUsed & this.#mask;
    // Safe: slot < size and the u32 view spans every element.
    const head = this.#used32[1 + 2 * slot]!;
    const len = this.#used32[2 + 2 * slot]!;
    const entry = this.#outstanding.get(head);
    if (entry === undefined) throw new QueueError('VIRTQ_DRIVER_BAD_USED', `device returned id ${head}, which is not an outstanding chain head`);
    this.#lastUsed = (this.#lastUsed + 1) & 0xffff;
    this.#outstanding.delete(head);
    for (const d of entry.descs) this.#free.push(d);
    // As Linux's virtqueue_get_buf does: with EVENT_IDX and interrupts wanted, ask to be
    // interrupted for the next used entry (§2.7.10), else the device stays silent after the first.
    if (this.eventIdx && this.#interrupts && this.#autoUsedEvent) this.setUsedEvent(this.#lastUsed);
    return { head, len, token: entry.token };
  }

  /**
   * Whether `popUsed` moves `used_event` to the next entry (default true, as real drivers do).
   * Tests that pin `used_event` to a chosen value turn it off.
   */
  setAutoUsedEvent(on: boolean): void {
    this.#autoUsedEvent = on;
  }

  /** EVENT_IDX: ask for an interrupt once the used index passes `idx` (§2.7.10). */
  setUsedEvent(idx: number): void {
    Atomics.store(this.#avail, 2 + this.size, idx & 0xffff);
  }

  /** Without EVENT_IDX: set or clear VIRTQ_AVAIL_F_NO_INTERRUPT. */
  suppressInterrupts(on: boolean): void {
    this.#interrupts = !on;
    Atomics.store(this.#avail, 0, on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }

  /** Index of the next used element the driver will collect. */
  get lastUsed(): number {
    return this.#lastUsed;
  }
}
