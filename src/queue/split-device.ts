// SPDX-License-Identifier: Apache-2.0
/**
 * Split virtqueue, device side (VIRTIO 1.3 §2.7).
 *
 * Owns: popping available chains, walking and validating descriptors (direct and indirect),
 * returning used elements, notification suppression in both directions (EVENT_IDX `used_event` /
 * `avail_event`, otherwise VIRTQ_AVAIL_F_NO_INTERRUPT / VIRTQ_USED_F_NO_NOTIFY), and the
 * next-avail / next-used indexes a transport saves and restores (vhost-user GET/SET_VRING_BASE).
 * Does not own: what a chain means (devices), how a notification is delivered (transports).
 *
 * Every guest value is hostile. The walk never trusts an index, length or address:
 *
 * | driver fault | what the device side does | why |
 * |---|---|---|
 * | avail.idx more than queue size ahead | queue stops; device NEEDS_RESET | the ring is corrupt: no used entry can be trusted (§2.7.13.1 avail.idx counts entries the driver added) |
 * | head index >= queue size | queue stops; device NEEDS_RESET | no valid id exists to return in the used ring (§2.7.8: id is a descriptor index) |
 * | next >= queue size (or >= indirect table entries) | chain used with length 0 | head is valid; the driver reclaims it |
 * | loop: chain longer than its table | chain used with length 0 | §2.7.5.2 "loops in the descriptor chain are forbidden" |
 * | INDIRECT without VIRTIO_F_INDIRECT_DESC | chain used with length 0 | §2.7.5.3.1 driver MUST NOT set it unless negotiated |
 * | INDIRECT inside an indirect table | chain used with length 0 | §2.7.5.3.1 "only one table per descriptor" |
 * | INDIRECT together with NEXT | chain used with length 0 | §2.7.5.3.1 driver MUST NOT set both |
 * | indirect table length 0 or not a multiple of 16 | chain used with length 0 | §2.7.5.3 the table holds whole descriptors |
 * | readable descriptor after a writable one | chain used with length 0 | §2.7.4.2 writable elements come after readable ones |
 * | total length above 2^32 | chain used with length 0 | §2.7.5.2 "MUST NOT add a descriptor chain longer than 2^32 bytes in total" |
 * | buffer or indirect table outside guest memory | chain used with length 0 | §2.7.5 addr is guest-physical; nothing outside the guest is touched |
 *
 * Ring indexes are read and written with `Atomics` (sequentially consistent) so that the used
 * elements are visible before `used.idx` (§2.7.8.2 "the device MUST ... update the used ring
 * ... before ... idx") and `avail.idx` is re-read from memory rather than hoisted by the JIT.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  availRingSize,
  descTableSize,
  isValidQueueSize,
  usedRingSize,
  vringNeedEvent,
} from '../spec/split-ring.js';
import { DescriptorChain, type GuestBuffer } from './chain.js';
import { QueueError } from './errors.js';
import type { InflightTracker } from './inflight.js';
import { checkRingAlignment, indirectTableView, type RingViews } from './rings.js';
import type { QueueStats, Virtqueue } from './virtqueue.js';

/** Largest indirect table: `next` is a u16, so a table can address 65536 entries at most. */
const MAX_INDIRECT_ENTRIES = 0x10000;
const TWO_POW_32 = 0x1_0000_0000;

export interface DeviceQueueOptions {
  /** Queue size (a power of 2, at most 32768). */
  size: number;
  /** Views of the three ring parts, already resolved in the transport's address space. */
  rings: RingViews;
  /** Guest-physical memory: descriptors' buffers and indirect tables live here. */
  memory: GuestMemory;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  eventIdx: boolean;
  /** Where to start (vhost-user SET_VRING_BASE); default 0. */
  nextAvail?: number;
  /** Called once per rejected chain or fatal ring error, for the device's log and metrics. */
  onError?: (error: QueueError, head: number | undefined) => void;
  /**
   * Records chains in flight (vhost-user inflight tracking, `inflight.ts`); when its record says
   * chains were in flight at a crash, the queue resumes where it says and serves those first.
   */
  inflight?: InflightTracker;
}

export class DeviceQueue implements Virtqueue {
  readonly layout = 'split';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly indirect: boolean;
  readonly eventIdx: boolean;
  readonly stats: QueueStats = { chainsPopped: 0, chainsRejected: 0, notificationsSent: 0, notificationsSuppressed: 0 };

  readonly #mask: number;
  readonly #desc: DataView;
  /** avail ring as u16: [flags, idx, ring[size], used_event]. */
  readonly #avail: Uint16Array;
  /** used ring as u16: [flags, idx, ..., avail_event at 2 + 4·size]. */
  readonly #used16: Uint16Array;
  /** used ring as u32: element i is at [1 + 2i] (id) and [2 + 2i] (len). */
  readonly #used32: Uint32Array;
  readonly #onError: ((error: QueueError, head: number | undefined) => void) | undefined;
  readonly #inflight: InflightTracker | undefined;
  /** Heads to serve again before new avail entries (inflight resubmission), in order. */
  #resubmit: number[] = [];

  /** Free-running 16-bit index of the next avail entry to consume. */
  #nextAvail: number;
  /** Free-running 16-bit index of the next used entry to fill. */
  #nextUsed: number;
  /** used.idx at the last notification decision (EVENT_IDX "old" index). */
  #signalledUsed: number;
  /** True when used entries were added since the last notification decision. */
  #pendingUsed = false;
  #broken: QueueError | undefined;

  /** @throws QueueError VIRTQ_BAD_SIZE or VIRTQ_RING_MISALIGNED / VIRTQ_RING_OUT_OF_RANGE for unusable rings. */
  constructor(opts: DeviceQueueOptions) {
    if (!isValidQueueSize(opts.size)) throw new QueueError('VIRTQ_BAD_SIZE', `queue size ${opts.size} is not a power of 2 in 1..32768`);
    const { desc, avail, used } = opts.rings;
    if (desc.byteLength < descTableSize(opts.size) || avail.byteLength < availRingSize(opts.size) || used.byteLength < usedRingSize(opts.size)) {
      throw new QueueError('VIRTQ_RING_OUT_OF_RANGE', `ring views are smaller than a queue of size ${opts.size} needs`);
    }
    checkRingAlignment(opts.rings);
    this.size = opts.size;
    this.memory = opts.memory;
    this.indirect = opts.indirect;
    this.eventIdx = opts.eventIdx;
    this.#mask = opts.size - 1;
    this.#desc = new DataView(desc.buffer, desc.byteOffset, descTableSize(opts.size));
    this.#avail = new Uint16Array(avail.buffer, avail.byteOffset, availRingSize(opts.size) / 2);
    const usedLen = usedRingSize(opts.size);
    this.#used16 = new Uint16Array(used.buffer, used.byteOffset, usedLen / 2);
    // The u32 view stops before avail_event (a trailing u16); elements start at byte 4.
    this.#used32 = new Uint32Array(used.buffer, used.byteOffset, (usedLen - 2) / 4);
    this.#onError = opts.onError;
    this.#nextAvail = (opts.nextAvail ?? 0) & 0xffff;
    // §2.7.8: the device starts from the used index in memory (re-read at setup: a cached value
    // breaks after a guest reboot, rust-vmm/vhost#180).
    this.#nextUsed = Atomics.load(this.#used16, 1);
    this.#signalledUsed = this.#nextUsed;
    // A ring taken over from a back-end that died (a restart) may hold used entries that back-end
    // published past the driver's used_event without notifying: the driver still waits for that
    // interrupt, and as "old" is already past used_event, no later decision would ever send it
    // (the driver's RX stalls for good; seen with a killed avp switch). Deciding from used_event
    // instead makes the next decision notify. A fresh ring (used_event = used.idx) is unchanged.
    if (this.eventIdx) {
      const usedEvent = Atomics.load(this.#avail, 2 + this.size);
      const behind = (this.#nextUsed - usedEvent) & 0xffff;
      if (behind !== 0 && behind < 0x8000) this.#signalledUsed = usedEvent;
    }
    this.#inflight = opts.inflight;
    const resume = opts.inflight?.resume(opts.size, this.#nextUsed);
    if (resume !== undefined) {
      this.#nextAvail = resume.nextAvail & 0xffff;
      // The tracker checked each head against the size; re-checked here, as pop trusts this list.
      this.#resubmit = resume.resubmit.filter((h) => Number.isInteger(h) && h >= 0 && h < opts.size);
    }
  }

  /** Heads still waiting to be served again after a restart (inflight resubmission). */
  get resubmitPending(): number {
    return this.#resubmit.length;
  }

  /** Next avail index to consume: what vhost-user GET_VRING_BASE returns. */
  get nextAvail(): number {
    return this.#nextAvail;
  }

  /** vhost-user ring base: the next avail index. */
  get vringBase(): number {
    return this.#nextAvail;
  }

  /** Next used index to fill. */
  get nextUsed(): number {
    return this.#nextUsed;
  }

  /** The fatal error that stopped this queue, if any. */
  get broken(): QueueError | undefined {
    return this.#broken;
  }

  /** Number of chains the driver has made available and the device has not popped yet. */
  pending(): number {
    if (this.#broken) return 0;
    return this.#resubmit.length + ((Atomics.load(this.#avail, 1) - this.#nextAvail) & 0xffff);
  }

  /**
   * Pops the next valid chain, or returns null when none is available or the queue is broken.
   * Malformed chains are returned to the driver with used length 0 on the way (see file table),
   * so callers only ever see chains whose buffers lie in guest memory.
   */
  pop(): DescriptorChain | null {
    for (;;) {
      if (this.#broken) return null;
      const again = this.#resubmit.shift();
      if (again !== undefined) {
        // Already recorded as in flight (with its first counter): not popped again.
        const chain = this.#take(again);
        if (chain !== null) return chain;
        continue;
      }
      const availIdx = Atomics.load(this.#avail, 1);
      const pending = (availIdx - this.#nextAvail) & 0xffff;
      if (pending === 0) return null;
      if (pending > this.size) {
        this.#fail(new QueueError('VIRTQ_AVAIL_IDX_JUMP', `avail.idx ${availIdx} is ${pending} entries ahead of ${this.#nextAvail}, more than the queue size ${this.size}`));
        return null;
      }
      const head = Atomics.load(this.#avail, 2 + (this.#nextAvail & this.#mask));
      if (head >= this.size) {
        this.#fail(new QueueError('VIRTQ_HEAD_OUT_OF_RANGE', `avail ring entry ${this.#nextAvail & this.#mask} names descriptor ${head}, outside a queue of size ${this.size}`));
        return null;
      }
      this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
      this.#inflight?.popped(head);
      const chain = this.#take(head);
      if (chain !== null) return chain;
    }
  }

  /** Walks the chain at `head`; a malformed one is returned with length 0 and null comes back. */
  #take(head: number): DescriptorChain | null {
    try {
      const chain = this.#walk(head);
      this.stats.chainsPopped++;
      return chain;
    } catch (e: unknown) {
      if (!(e instanceof QueueError)) throw e;
      this.stats.chainsRejected++;
      this.#onError?.(e, head);
      this.pushUsed(head, 0);
      return null;
    }
  }

  /** Returns a chain to the driver with `len` bytes written into its writable part. */
  pushUsed(head: number, len: number): void {
    const slot = this.#nextUsed & this.#mask;
    this.#used32[1 + 2 * slot] = head;
    this.#used32[2 + 2 * slot] = len;
    this.#inflight?.publishing(head);
    this.#nextUsed = (this.#nextUsed + 1) & 0xffff;
    // Sequentially consistent store: the element above is visible before the new index.
    Atomics.store(this.#used16, 1, this.#nextUsed);
    this.#inflight?.published(this.#nextUsed);
    this.#pendingUsed = true;
  }

  /**
   * Returns several chains and publishes them with a single used.idx store, so the driver sees all
   * of them or none. virtio-net needs this for a packet spread over several receive chains
   * (VIRTIO_NET_F_MRG_RXBUF, §5.1.6.4): Linux reads `num_buffers` from the first chain and drops
   * the packet if the other chains are not in the used ring yet. Callers return chains they popped,
   * so there are never more than `size` of them.
   */
  pushUsedBatch(entries: ReadonlyArray<{ readonly head: number; readonly len: number }>): void {
    if (entries.length === 0) return;
    let next = this.#nextUsed;
    for (const e of entries) {
      const slot = next & this.#mask;
      this.#used32[1 + 2 * slot] = e.head;
      this.#used32[2 + 2 * slot] = e.len;
      this.#inflight?.publishing(e.head);
      next = (next + 1) & 0xffff;
    }
    this.#nextUsed = next;
    // Sequentially consistent store: every element above is visible before the new index.
    Atomics.store(this.#used16, 1, next);
    this.#inflight?.published(next);
    this.#pendingUsed = true;
  }

  /**
   * Whether the driver wants a used-buffer notification for the entries added since the last call
   * (§2.7.10). With EVENT_IDX: notify when `used_event` lies in [old, new). Without: notify unless
   * the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. Counts the decision in `stats`.
   */
  needsNotification(): boolean {
    if (!this.#pendingUsed) return false;
    this.#pendingUsed = false;
    let notify: boolean;
    if (this.eventIdx) {
      // The load after the seq-cst store of used.idx cannot be reordered before it.
      const usedEvent = Atomics.load(this.#avail, 2 + this.size);
      notify = vringNeedEvent(usedEvent, this.#nextUsed, this.#signalledUsed);
    } else {
      notify = (Atomics.load(this.#avail, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    this.#signalledUsed = this.#nextUsed;
    if (notify) this.stats.notificationsSent++;
    else this.stats.notificationsSuppressed++;
    return notify;
  }

  /** Asks the driver not to notify while the device is busy (no-op with EVENT_IDX, see enable). */
  disableNotifications(): void {
    if (!this.eventIdx) Atomics.store(this.#used16, 0, VIRTQ_USED_F_NO_NOTIFY);
  }

  /**
   * Asks the driver to notify on the next available buffer, then re-checks the ring to close the
   * race with a driver that added buffers before seeing the request (§2.7.10). Returns true when
   * buffers are already pending, in which case the caller processes again.
   */
  enableNotifications(): boolean {
    if (this.#broken) return false;
    if (this.eventIdx) Atomics.store(this.#used16, 2 + 4 * this.size, this.#nextAvail);
    else Atomics.store(this.#used16, 0, 0);
    return this.pending() > 0;
  }

  #fail(error: QueueError): void {
    this.#broken = error;
    this.#onError?.(error, undefined);
  }

  /** Walks the chain at `head`, validating every descriptor. @throws QueueError (chain errors). */
  #walk(head: number): DescriptorChain {
    const readable: GuestBuffer[] = [];
    const writable: GuestBuffer[] = [];
    let table = this.#desc;
    let tableSize = this.size;
    let inIndirect = false;
    let idx = head;
    // A chain visits each descriptor of its table at most once; more hops means a loop.
    let ttl = tableSize;
    let total = 0;
    for (;;) {
      const off = idx * VIRTQ_DESC_SIZE;
      const addr = table.getUint32(off + 4, true) * TWO_POW_32 + table.getUint32(off, true);
      const len = table.getUint32(off + 8, true);
      const flags = table.getUint16(off + 12, true);
      const next = table.getUint16(off + 14, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirect) throw new QueueError('VIRTQ_INDIRECT_NOT_NEGOTIATED', `descriptor ${idx} of chain ${head} is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated`);
        if (inIndirect) throw new QueueError('VIRTQ_NESTED_INDIRECT', `chain ${head} has an INDIRECT descriptor inside an indirect table`);
        if (flags & VIRTQ_DESC_F_NEXT) throw new QueueError('VIRTQ_INDIRECT_WITH_NEXT', `descriptor ${idx} of chain ${head} sets both INDIRECT and NEXT`);
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0 || len / VIRTQ_DESC_SIZE > MAX_INDIRECT_ENTRIES) {
          throw new QueueError('VIRTQ_INDIRECT_BAD_LENGTH', `indirect table of chain ${head} has length ${len}, not a non-zero multiple of 16 up to ${MAX_INDIRECT_ENTRIES} entries`);
        }
        table = indirectTableView(this.memory, addr, len, head);
        tableSize = len / VIRTQ_DESC_SIZE;
        inIndirect = true;
        ttl = tableSize;
        idx = 0;
        continue;
      }
      if (len > 0 && !this.memory.isValidRange(addr, len)) {
        throw new QueueError('VIRTQ_BUFFER_OUT_OF_RANGE', `descriptor ${idx} of chain ${head}: buffer 0x${addr.toString(16)}+${len} is outside guest memory`);
      }
      total += len;
      if (total > TWO_POW_32) throw new QueueError('VIRTQ_CHAIN_TOO_LARGE', `chain ${head} is longer than 2^32 bytes`);
      if (flags & VIRTQ_DESC_F_WRITE) writable.push({ addr, len });
      else if (writable.length > 0) throw new QueueError('VIRTQ_READABLE_AFTER_WRITABLE', `chain ${head}: device-readable descriptor ${idx} follows a device-writable one`);
      else readable.push({ addr, len });
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (--ttl === 0) throw new QueueError('VIRTQ_CHAIN_LOOP', `chain ${head} is longer than its descriptor table (${tableSize}): a loop`);
      if (next >= tableSize) throw new QueueError('VIRTQ_NEXT_OUT_OF_RANGE', `descriptor ${idx} of chain ${head} points to ${next}, outside a table of ${tableSize}`);
      idx = next;
    }
    return new DescriptorChain(this.memory, head, readable, writable);
  }
}
