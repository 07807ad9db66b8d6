// SPDX-License-Identifier: Apache-2.0
/**
 * Packed virtqueue, device side (VIRTIO 1.3 §2.8).
 *
 * Owns: finding available descriptors by their AVAIL/USED flags and the device's copy of the
 * driver ring wrap counter, walking and validating lists (direct and indirect), writing used
 * descriptors (one per list, skipping the list's length, §2.8.6), event suppression in both
 * directions (§2.8.10: ENABLE / DISABLE / DESC, DESC only with VIRTIO_F_EVENT_IDX), and the ring
 * position a transport saves and restores (vhost-user GET/SET_VRING_BASE, `vringBase`).
 * Does not own: what a chain means (devices), how a notification is delivered (transports).
 * In-order use (VIRTIO_F_IN_ORDER) is not offered: every list gets its own used descriptor.
 *
 * Every guest value is hostile. The decision table, the packed counterpart of split-device.ts:
 *
 * | driver fault | what the device side does | why |
 * |---|---|---|
 * | a list still has NEXT after every descriptor the driver may own (queue size minus in flight) | queue stops; device NEEDS_RESET | the end of the list, hence its id and where the next list starts, cannot be found (§2.8.17 "MUST NOT create a descriptor list longer than the Queue Size"; with the ring full this also catches a driver that re-offers slots the device has not used yet) |
 * | a descriptor after the first of a list is not available | queue stops; device NEEDS_RESET | §2.8.17 the first descriptor is made available after the rest; the list is torn, its end unknown |
 * | buffer id >= queue size | list used with length 0 | ids index the driver's per-buffer state (the §2.8.21 example asserts id < size) |
 * | buffer id of a list still in flight | list used with length 0, not tracked | two lists with one id cannot both be returned meaningfully |
 * | INDIRECT without VIRTIO_F_INDIRECT_DESC | list used with length 0 | §2.8.19 "MUST NOT set the DESC_F_INDIRECT flag unless ... negotiated" |
 * | INDIRECT in a list linked by NEXT | list used with length 0 | §2.8.19 "MUST NOT write direct descriptors with DESC_F_INDIRECT set in a scatter-gather list linked by VIRTQ_DESC_F_NEXT" |
 * | INDIRECT inside an indirect table | list used with length 0 | §2.8.19 "MUST NOT set any flags except DESC_F_WRITE within an indirect descriptor" |
 * | indirect table length 0, not a multiple of 16, or above 65536 entries | list used with length 0 | §2.8.7 the table holds whole descriptors; the cap bounds the walk |
 * | NEXT inside an indirect table | ignored | §2.8.7 "Others are reserved and are ignored by the device": the table is sequential |
 * | readable descriptor after a writable one | list used with length 0 | §2.8.17 writable elements come after readable ones |
 * | total length above 2^32 | list used with length 0 | as for split rings (§2.7.5.2) |
 * | buffer or indirect table outside guest memory | list used with length 0 | nothing outside the guest is touched |
 *
 * A list used with length 0 still consumes exactly its descriptors, so the driver can reclaim it.
 * Flags are read and written with `Atomics` (sequentially consistent): a descriptor's fields are
 * read only after its flags showed it available, and a used descriptor's id and length are visible
 * before its flags (§2.8.21: "the device MAY access the descriptor ... immediately" once flags
 * are set; the driver reads used descriptors the same way).
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  PVIRTQ_DESC_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  isValidPackedQueueSize,
  packOffWrap,
  packedDescRingSize,
  packedNeedEvent,
} from '../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../spec/split-ring.js';
import { DescriptorChain, type GuestBuffer } from './chain.js';
import { QueueError } from './errors.js';
import { indirectTableView, type RingViews } from './rings.js';
import type { QueueErrorHandler, QueueStats, Virtqueue } from './virtqueue.js';

/** Largest indirect table, as for split rings: 65536 entries (1 MiB), so the walk is bounded. */
const MAX_INDIRECT_ENTRIES = 0x10000;
const TWO_POW_32 = 0x1_0000_0000;
/** vhost-user base of a fresh ring: both indexes 0, both wrap counters 1 (§2.8.1 "initialized to 1"). */
export const PACKED_FRESH_BASE = 0x8000_8000;

export interface PackedDeviceQueueOptions {
  /** Queue size, 1..32768 (§2.8: no power-of-2 rule). */
  size: number;
  /** `desc` = descriptor ring, `avail` = Driver Area, `used` = Device Area (see resolvePackedRings). */
  rings: RingViews;
  /** Guest-physical memory: buffers and indirect tables live here. */
  memory: GuestMemory;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
  /** VIRTIO_F_EVENT_IDX was negotiated (allows RING_EVENT_FLAGS_DESC). */
  eventIdx: boolean;
  /** Where to start, in the vhost-user encoding (see `Virtqueue.vringBase`); default a fresh ring. */
  base?: number;
  onError?: QueueErrorHandler;
}

/** The end of a list found by the structural walk, with its first chain error if any. */
interface Walked {
  id: number;
  count: number;
  chain: DescriptorChain | undefined;
  error: QueueError | undefined;
}

export class PackedDeviceQueue implements Virtqueue {
  readonly layout = 'packed';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly indirect: boolean;
  readonly eventIdx: boolean;
  readonly stats: QueueStats = { chainsPopped: 0, chainsRejected: 0, notificationsSent: 0, notificationsSuppressed: 0 };

  readonly #desc: DataView;
  /** The descriptor ring as u16: descriptor i has id at [8i + 6] and flags at [8i + 7]. */
  readonly #desc16: Uint16Array;
  /** Driver event suppression (read): [desc (off | wrap << 15), flags]. */
  readonly #driverEvent: Uint16Array;
  /** Device event suppression (written): [desc, flags]. */
  readonly #deviceEvent: Uint16Array;
  readonly #onError: QueueErrorHandler | undefined;

  #availIdx: number;
  #availWrap: boolean;
  #usedIdx: number;
  #usedWrap: boolean;
  /** Descriptor count of each list in flight, by buffer id. */
  readonly #inflight = new Map<number, number>();
  #inflightDescs = 0;
  /** Descriptors marked used since the last notification decision. */
  #usedSinceSignal = 0;
  #broken: QueueError | undefined;

  /** @throws QueueError VIRTQ_BAD_SIZE, VIRTQ_RING_MISALIGNED or VIRTQ_RING_OUT_OF_RANGE. */
  constructor(opts: PackedDeviceQueueOptions) {
    if (!isValidPackedQueueSize(opts.size)) throw new QueueError('VIRTQ_BAD_SIZE', `packed queue size ${opts.size} is not in 1..32768`);
    const { desc, avail, used } = opts.rings;
    if (desc.byteLength < packedDescRingSize(opts.size) || avail.byteLength < 4 || used.byteLength < 4) {
      throw new QueueError('VIRTQ_RING_OUT_OF_RANGE', `ring views are smaller than a packed queue of size ${opts.size} needs`);
    }
    if (desc.byteOffset % 2 !== 0 || avail.byteOffset % 2 !== 0 || used.byteOffset % 2 !== 0) {
      throw new QueueError('VIRTQ_RING_MISALIGNED', 'packed ring parts are not aligned inside their backing buffers');
    }
    this.size = opts.size;
    this.memory = opts.memory;
    this.indirect = opts.indirect;
    this.eventIdx = opts.eventIdx;
    this.#desc = new DataView(desc.buffer, desc.byteOffset, packedDescRingSize(opts.size));
    this.#desc16 = new Uint16Array(desc.buffer, desc.byteOffset, packedDescRingSize(opts.size) / 2);
    this.#driverEvent = new Uint16Array(avail.buffer, avail.byteOffset, 2);
    this.#deviceEvent = new Uint16Array(used.buffer, used.byteOffset, 2);
    this.#onError = opts.onError;
    const base = (opts.base ?? PACKED_FRESH_BASE) >>> 0;
    // Indexes from a hostile front-end may exceed the ring: reduce them so every access is in range.
    this.#availIdx = (base & 0x7fff) % this.size;
    this.#availWrap = (base & 0x8000) !== 0;
    this.#usedIdx = ((base >>> 16) & 0x7fff) % this.size;
    this.#usedWrap = (base & 0x8000_0000) !== 0;
  }

  /** vhost-user ring base: next avail index | wrap << 15 | (next used index | wrap << 15) << 16. */
  get vringBase(): number {
    return packOffWrap(this.#availIdx, this.#availWrap) + packOffWrap(this.#usedIdx, this.#usedWrap) * 0x10000;
  }

  get broken(): QueueError | undefined {
    return this.#broken;
  }

  /** Lists handed out and not yet returned. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** 1 when the descriptor at the next avail position is available, else 0. */
  pending(): number {
    if (this.#broken) return 0;
    return this.#isAvail(this.#availIdx, this.#availWrap) ? 1 : 0;
  }

  /** Pops the next valid list, or null. Malformed lists are returned with length 0 on the way. */
  pop(): DescriptorChain | null {
    for (;;) {
      if (this.#broken || !this.#isAvail(this.#availIdx, this.#availWrap)) return null;
      let walked: Walked;
      try {
        walked = this.#walk();
      } catch (e: unknown) {
        if (!(e instanceof QueueError)) throw e;
        this.#broken = e;
        this.#onError?.(e, undefined);
        return null;
      }
      this.#advanceAvail(walked.count);
      if (walked.chain !== undefined) {
        this.#inflight.set(walked.id, walked.count);
        this.#inflightDescs += walked.count;
        this.stats.chainsPopped++;
        return walked.chain;
      }
      // Safe: #walk returns either a chain or an error.
      const error = walked.error!;
      this.stats.chainsRejected++;
      this.#onError?.(error, walked.id);
      this.#writeUsed(walked.id, 0, walked.count, true);
    }
  }

  /** Returns the list with buffer id `head` with `len` bytes written. */
  pushUsed(head: number, len: number): void {
    const count = this.#take(head);
    if (count !== undefined) this.#writeUsed(head, len, count, true);
  }

  /**
   * Returns several lists; the first one's flags are written last, so the driver sees all of them
   * or none (§2.8.9 "Multi-buffer requests": mark the first used after the rest).
   */
  pushUsedBatch(entries: ReadonlyArray<{ readonly head: number; readonly len: number }>): void {
    const first = entries[0];
    if (first === undefined) return;
    const firstCount = this.#take(first.head);
    if (firstCount === undefined) {
      this.#pushRest(entries);
      return;
    }
    const at = this.#usedIdx;
    const wrap = this.#usedWrap;
    this.#writeUsed(first.head, first.len, firstCount, false);
    this.#pushRest(entries);
    Atomics.store(this.#desc16, 8 * at + 7, this.#usedFlags(wrap, first.len));
  }

  /** Returns every entry but the first (no copy of the array, as `slice(1)` would make per batch). */
  #pushRest(entries: ReadonlyArray<{ readonly head: number; readonly len: number }>): void {
    for (let i = 1; i < entries.length; i++) {
      const e = entries[i]!;
      this.pushUsed(e.head, e.len);
    }
  }

  /**
   * Whether the driver wants a used-buffer notification for what was returned since the last
   * call (§2.8.10): DISABLE never, DESC (with EVENT_IDX) when the named position was among the
   * descriptors marked used, otherwise (ENABLE, or DESC/reserved values a driver should not
   * use) always, the safe choice.
   */
  needsNotification(): boolean {
    if (this.#usedSinceSignal === 0) return false;
    const count = this.#usedSinceSignal;
    this.#usedSinceSignal = 0;
    // The load after the seq-cst stores of the used flags cannot be reordered before them.
    const flags = Atomics.load(this.#driverEvent, 1) & 0x3;
    let notify: boolean;
    if (flags === RING_EVENT_FLAGS_DISABLE) notify = false;
    else if (flags === RING_EVENT_FLAGS_DESC && this.eventIdx) notify = packedNeedEvent(this.size, Atomics.load(this.#driverEvent, 0), this.#usedIdx, this.#usedWrap, count);
    else notify = true;
    if (notify) this.stats.notificationsSent++;
    else this.stats.notificationsSuppressed++;
    return notify;
  }

  /** Asks the driver not to notify while the device is busy. */
  disableNotifications(): void {
    Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_DISABLE);
  }

  /**
   * Asks for a notification on the next available list (with EVENT_IDX: when the descriptor at
   * the next avail position is made available), then re-checks the ring to close the race with a
   * driver that published before seeing the request. True when a list is already pending.
   */
  enableNotifications(): boolean {
    if (this.#broken) return false;
    if (this.eventIdx) {
      Atomics.store(this.#deviceEvent, 0, packOffWrap(this.#availIdx, this.#availWrap));
      Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_DESC);
    } else {
      Atomics.store(this.#deviceEvent, 1, RING_EVENT_FLAGS_ENABLE);
    }
    return this.pending() > 0;
  }

  /** §2.8.1: available when AVAIL matches the wrap counter and USED does not. */
  #isAvail(idx: number, wrap: boolean): boolean {
    const f = Atomics.load(this.#desc16, 8 * idx + 7);
    return (f & VIRTQ_DESC_F_AVAIL) !== 0 === wrap && (f & VIRTQ_DESC_F_USED) !== 0 !== wrap;
  }

  #usedFlags(wrap: boolean, len: number): number {
    // §2.8.3: in a used descriptor WRITE says whether the device wrote anything.
    return (wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) | (len > 0 ? VIRTQ_DESC_F_WRITE : 0);
  }

  #take(id: number): number | undefined {
    const count = this.#inflight.get(id);
    if (count === undefined) {
      this.#onError?.(new QueueError('VIRTQ_DEVICE_BAD_USED', `buffer id ${id} is not a list in flight on this queue`), id);
      return undefined;
    }
    this.#inflight.delete(id);
    this.#inflightDescs -= count;
    return count;
  }

  /** Writes one used descriptor at the next used position and skips the list's `count` slots. */
  #writeUsed(id: number, len: number, count: number, publish: boolean): void {
    const at = this.#usedIdx;
    const off = at * PVIRTQ_DESC_SIZE;
    this.#desc.setUint32(off + 8, len >>> 0, true);
    this.#desc.setUint16(off + 12, id, true);
    // Sequentially consistent store: id and len above are visible before the flags.
    if (publish) Atomics.store(this.#desc16, 8 * at + 7, this.#usedFlags(this.#usedWrap, len));
    this.#usedIdx += count;
    while (this.#usedIdx >= this.size) {
      this.#usedIdx -= this.size;
      this.#usedWrap = !this.#usedWrap;
    }
    this.#usedSinceSignal += count;
  }

  #advanceAvail(count: number): void {
    this.#availIdx += count;
    while (this.#availIdx >= this.size) {
      this.#availIdx -= this.size;
      this.#availWrap = !this.#availWrap;
    }
  }

  /**
   * Walks the list at the next avail position: finds its end (or throws a fatal QueueError when it
   * has none) and validates it, keeping the first chain error.
   */
  #walk(): Walked {
    const readable: GuestBuffer[] = [];
    const writable: GuestBuffer[] = [];
    const limit = this.size - this.#inflightDescs;
    let idx = this.#availIdx;
    let wrap = this.#availWrap;
    let count = 0;
    let total = 0;
    let error: QueueError | undefined;
    for (;;) {
      if (count >= limit) {
        throw new QueueError('VIRTQ_PACKED_CHAIN_UNTERMINATED', `list at ${this.#availIdx} still has NEXT after ${count} descriptors, all the driver may own (queue size ${this.size}, ${this.#inflightDescs} in flight)`);
      }
      // The first descriptor's flags were checked by the caller; later ones must be available too.
      if (count > 0 && !this.#isAvail(idx, wrap)) {
        throw new QueueError('VIRTQ_PACKED_PARTIAL_CHAIN', `list at ${this.#availIdx}: descriptor ${idx} (${count + 1}th of the list) is not available`);
      }
      const off = idx * PVIRTQ_DESC_SIZE;
      const flags = Atomics.load(this.#desc16, 8 * idx + 7);
      const addr = this.#desc.getUint32(off + 4, true) * TWO_POW_32 + this.#desc.getUint32(off, true);
      const len = this.#desc.getUint32(off + 8, true);
      const id = this.#desc.getUint16(off + 12, true);
      count++;
      if (error === undefined) {
        try {
          total = this.#element(flags, addr, len, count, total, readable, writable);
        } catch (e: unknown) {
          if (!(e instanceof QueueError)) throw e;
          error = e;
        }
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) {
        // §2.8.6: "Buffer ID is included in the last descriptor in the list".
        return this.#finish(id, count, error, readable, writable);
      }
      if (++idx === this.size) {
        idx = 0;
        wrap = !wrap;
      }
    }
  }

  #finish(id: number, count: number, error: QueueError | undefined, readable: GuestBuffer[], writable: GuestBuffer[]): Walked {
    let e = error;
    if (e === undefined && id >= this.size) e = new QueueError('VIRTQ_ID_OUT_OF_RANGE', `list with buffer id ${id}: ids must be below the queue size ${this.size}`);
    if (e === undefined && this.#inflight.has(id)) e = new QueueError('VIRTQ_ID_IN_USE', `list with buffer id ${id}: a list with that id is still in flight`);
    if (e !== undefined) return { id, count, chain: undefined, error: e };
    return { id, count, chain: new DescriptorChain(this.memory, id, readable, writable), error: undefined };
  }

  /** Validates one ring descriptor (the `count`th of its list); returns the new total length. */
  #element(flags: number, addr: number, len: number, count: number, total: number, readable: GuestBuffer[], writable: GuestBuffer[]): number {
    if (!(flags & VIRTQ_DESC_F_INDIRECT)) return this.#buffer(addr, len, (flags & VIRTQ_DESC_F_WRITE) !== 0, `descriptor ${count}`, total, readable, writable);
    if (!this.indirect) throw new QueueError('VIRTQ_INDIRECT_NOT_NEGOTIATED', 'descriptor is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated');
    if (flags & VIRTQ_DESC_F_NEXT || count > 1) throw new QueueError('VIRTQ_INDIRECT_WITH_NEXT', 'an INDIRECT descriptor is part of a list linked by NEXT (§2.8.19)');
    if (len === 0 || len % PVIRTQ_DESC_SIZE !== 0 || len / PVIRTQ_DESC_SIZE > MAX_INDIRECT_ENTRIES) {
      throw new QueueError('VIRTQ_INDIRECT_BAD_LENGTH', `indirect table has length ${len}, not a non-zero multiple of 16 up to ${MAX_INDIRECT_ENTRIES} entries`);
    }
    const table = indirectTableView(this.memory, addr, len);
    let t = total;
    for (let i = 0; i < len / PVIRTQ_DESC_SIZE; i++) {
      const off = i * PVIRTQ_DESC_SIZE;
      const f = table.getUint16(off + 14, true);
      if (f & VIRTQ_DESC_F_INDIRECT) throw new QueueError('VIRTQ_NESTED_INDIRECT', `entry ${i} of an indirect table is INDIRECT itself`);
      const a = table.getUint32(off + 4, true) * TWO_POW_32 + table.getUint32(off, true);
      t = this.#buffer(a, table.getUint32(off + 8, true), (f & VIRTQ_DESC_F_WRITE) !== 0, `indirect entry ${i}`, t, readable, writable);
    }
    return t;
  }

  #buffer(addr: number, len: number, write: boolean, what: string, total: number, readable: GuestBuffer[], writable: GuestBuffer[]): number {
    if (len > 0 && !this.memory.isValidRange(addr, len)) {
      throw new QueueError('VIRTQ_BUFFER_OUT_OF_RANGE', `${what}: buffer 0x${addr.toString(16)}+${len} is outside guest memory`);
    }
    const t = total + len;
    if (t > TWO_POW_32) throw new QueueError('VIRTQ_CHAIN_TOO_LARGE', 'list is longer than 2^32 bytes');
    if (write) writable.push({ addr, len });
    else if (writable.length > 0) throw new QueueError('VIRTQ_READABLE_AFTER_WRITABLE', `${what} is device-readable and follows a device-writable one`);
    else readable.push({ addr, len });
    return t;
  }
}
