// SPDX-License-Identifier: Apache-2.0
/**
 * Inflight I/O tracking for split rings (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, QEMU's
 * docs/interop/vhost-user.rst "Inflight I/O tracking"): a shared-memory record, kept by the
 * front-end across back-end restarts, of the descriptor chains the back-end has taken from the
 * avail ring and not yet returned in the used ring. A back-end killed in the middle of a request
 * is restarted, gets the record back with SET_INFLIGHT_FD, and serves those chains again before
 * anything new, so the guest never sees a request lost.
 *
 * Owns: the region layout, allocating it (GET_INFLIGHT_FD), validating and mapping one handed back
 * (SET_INFLIGHT_FD), and per queue the three algorithms of the document (record a chain taken,
 * record chains returned, and on reconnect repair `used_idx` and list the chains to resubmit).
 * Does not own: when rings start (session.ts) or the ring walk (queue/split-device.ts, which calls
 * the `InflightTracker` hooks at the points that make the record crash-safe).
 *
 * Layout, per queue, `inflightQueueStride(queueSize)` bytes apart from offset 0 (the front-end
 * never looks inside; this is the layout libvhost-user uses, so the sizes agree with it):
 *
 * | offset | field | |
 * |---|---|---|
 * | 0 | u64 features | unused by split rings, kept 0 |
 * | 8 | u16 version | 0: fresh (never started); 1: in use |
 * | 10 | u16 desc_num | queue size the record was started with |
 * | 12 | u16 last_batch_head | head of the last batch returned; `desc[i].next` links the batch |
 * | 14 | u16 used_idx | `used.idx` after the last batch was fully recorded |
 * | 16 + 16·i | DescStateSplit: u8 inflight, u8 padding[5], u16 next, u64 counter | one per descriptor |
 *
 * Hostile front-end: the record lives in a file the front-end holds and can write at any time, so
 * every value read from it is checked (indexes against the queue size, the batch walk bounded by
 * the queue size); sizes and offsets in the message are validated before mapping; the file must be
 * a regular file at least as large as the mapping and is sealed against shrinking (a shrink would
 * fault the process), or it is refused. Wrong contents can only make the back-end serve a chain the
 * guest did not offer again, which the ring walk validates like any other.
 *
 * Packed rings are not tracked (DescStatePacked is not implemented): a packed ring runs without it.
 */
import type { InflightResume, InflightTracker } from '../queue/inflight.js';
import { isValidQueueSize } from '../spec/split-ring.js';
import { closeQuiet, fdFileSize, memfdCreate, mmapShared, munmap, sealAgainstShrink, type Mapping } from '../sys/index.js';
import { VhostUserBackendError } from './backend-errors.js';
import type { VhostUserInflight } from './messages.js';

/** The record format this back-end writes (the document's split-ring version). */
export const INFLIGHT_VERSION = 1;
/** Size of the per-queue header and of one DescStateSplit. */
const HEADER_BYTES = 16;
const DESC_BYTES = 16;
/** Each queue's part starts on a 64-byte boundary (as libvhost-user lays it out). */
const QUEUE_ALIGN = 64;
const PAGE_SIZE = 4096;
const TWO_POW_32 = 0x1_0000_0000;

/** Bytes one queue's record takes, padding included. */
export function inflightQueueStride(queueSize: number): number {
  const raw = HEADER_BYTES + DESC_BYTES * queueSize;
  return Math.ceil(raw / QUEUE_ALIGN) * QUEUE_ALIGN;
}

/** Bytes the record of `numQueues` queues of `queueSize` descriptors takes. */
export function inflightRegionSize(numQueues: number, queueSize: number): number {
  return numQueues * inflightQueueStride(queueSize);
}

/** What a queue's record did when it was resumed, for logs and tests. */
export interface InflightResumeReport {
  /** The record was fresh (or unusable) and was initialised. */
  readonly fresh: boolean;
  /** Descriptors whose `inflight` flag was cleared by the used_idx repair. */
  readonly repaired: number;
  /** Chains listed for resubmission, in counter order. */
  readonly resubmit: readonly number[];
}

/**
 * One queue's record, over a view of its `inflightQueueStride(descCount)` bytes. Works on any
 * DataView (a shared mapping in the back-end, an ArrayBuffer in tests).
 */
export class SplitInflightQueue implements InflightTracker {
  readonly #v: DataView;
  /** Descriptor slots the record has room for (the message's queue size). */
  readonly #slots: number;
  /** The queue size in use (set by `resume`); heads at or above it are never recorded. */
  #size = 0;
  #counter = 0;
  /** Heads announced by `publishing` and not yet `published`. */
  readonly #batch: number[] = [];
  #lastReport: InflightResumeReport | undefined;

  /** @throws RangeError when the view is too small for `slots` descriptors (our bug, not input). */
  constructor(view: DataView, slots: number) {
    if (!isValidQueueSize(slots) || view.byteLength < HEADER_BYTES + DESC_BYTES * slots) {
      throw new RangeError(`inflight view of ${view.byteLength} bytes cannot hold ${slots} descriptors`);
    }
    this.#v = view;
    this.#slots = slots;
  }

  /** What the last `resume` found (undefined before it ran). */
  get lastResume(): InflightResumeReport | undefined {
    return this.#lastReport;
  }

  get version(): number {
    return this.#v.getUint16(8, true);
  }

  get usedIdx(): number {
    return this.#v.getUint16(14, true);
  }

  get lastBatchHead(): number {
    return this.#v.getUint16(12, true);
  }

  /** True when descriptor `i` is recorded as in flight. */
  isInflight(i: number): boolean {
    return i >= 0 && i < this.#slots && this.#v.getUint8(HEADER_BYTES + DESC_BYTES * i) !== 0;
  }

  /**
   * "When reconnecting": repair `used_idx`, then list the in-flight chains in counter order. A
   * fresh record (version 0) or one in a format we do not know is initialised instead.
   * @throws RangeError when `queueSize` exceeds the record's slots (the session checks first).
   */
  resume(queueSize: number, usedIdx: number): InflightResume | undefined {
    if (!isValidQueueSize(queueSize) || queueSize > this.#slots) throw new RangeError(`queue size ${queueSize} does not fit an inflight record of ${this.#slots} descriptors`);
    this.#size = queueSize;
    this.#batch.length = 0;
    if (this.version !== INFLIGHT_VERSION) {
      this.#initialise(usedIdx);
      this.#lastReport = { fresh: true, repaired: 0, resubmit: [] };
      return undefined;
    }
    const repaired = this.#repairUsedIdx(usedIdx);
    // Slots past the queue size in use cannot name a chain of this ring: stale or forged.
    for (let i = queueSize; i < this.#slots; i++) this.#setInflight(i, false);
    const found: Array<{ head: number; counter: bigint }> = [];
    for (let i = 0; i < queueSize; i++) {
      if (this.isInflight(i)) found.push({ head: i, counter: this.#v.getBigUint64(HEADER_BYTES + DESC_BYTES * i + 8, true) });
    }
    found.sort((a, b) => (a.counter < b.counter ? -1 : a.counter > b.counter ? 1 : a.head - b.head));
    // Counters are renumbered from 0 in that order: the front-end could have written any u64, and
    // the global counter continues from the number of chains still in flight.
    found.forEach((f, k) => this.#setCounter(f.head, k));
    this.#counter = found.length;
    const resubmit = found.map((f) => f.head);
    this.#v.setUint16(10, queueSize, true);
    this.#lastReport = { fresh: false, repaired, resubmit };
    // Every avail entry consumed is either in the used ring or in flight.
    return { nextAvail: (usedIdx + found.length) & 0xffff, resubmit };
  }

  popped(head: number): void {
    if (head >= this.#size) return;
    this.#setCounter(head, this.#counter++);
    this.#setInflight(head, true);
  }

  publishing(head: number): void {
    if (head >= this.#size) return;
    this.#v.setUint16(HEADER_BYTES + DESC_BYTES * head + 6, this.lastBatchHead, true);
    this.#v.setUint16(12, head, true);
    this.#batch.push(head);
  }

  published(usedIdx: number): void {
    for (const head of this.#batch) this.#setInflight(head, false);
    // Emptied in place: this runs once per returned batch, so no new array each time.
    this.#batch.length = 0;
    this.#v.setUint16(14, usedIdx & 0xffff, true);
  }

  #initialise(usedIdx: number): void {
    this.#v.setBigUint64(0, 0n, true);
    this.#v.setUint16(10, this.#size, true);
    this.#v.setUint16(12, 0, true);
    this.#v.setUint16(14, usedIdx & 0xffff, true);
    for (let i = 0; i < this.#slots; i++) {
      const off = HEADER_BYTES + DESC_BYTES * i;
      this.#v.setUint8(off, 0);
      this.#v.setUint16(off + 6, 0, true);
      this.#v.setBigUint64(off + 8, 0n, true);
    }
    this.#counter = 0;
    // Written last: a back-end killed during the initialisation starts fresh again.
    this.#v.setUint16(8, INFLIGHT_VERSION, true);
  }

  /**
   * "If the value of used_idx does not match the idx value of used ring": the last batch reached
   * the used ring but its entries were not cleared; clear the `used.idx - used_idx` entries of the
   * batch list from `last_batch_head`. Bounded by the queue size and stopped at any index out of
   * range (the front-end may have written anything). Returns how many entries were cleared.
   */
  #repairUsedIdx(usedIdx: number): number {
    const recorded = this.usedIdx;
    if (recorded === (usedIdx & 0xffff)) return 0;
    const batch = Math.min((usedIdx - recorded) & 0xffff, this.#size);
    let head = this.lastBatchHead;
    let cleared = 0;
    for (let k = 0; k < batch && head < this.#size; k++) {
      if (this.isInflight(head)) cleared++;
      this.#setInflight(head, false);
      head = this.#v.getUint16(HEADER_BYTES + DESC_BYTES * head + 6, true);
    }
    this.#v.setUint16(14, usedIdx & 0xffff, true);
    return cleared;
  }

  #setInflight(i: number, on: boolean): void {
    this.#v.setUint8(HEADER_BYTES + DESC_BYTES * i, on ? 1 : 0);
  }

  #setCounter(i: number, value: number): void {
    const off = HEADER_BYTES + DESC_BYTES * i + 8;
    // Two u32 stores: no BigInt on the per-request path (the counter stays below 2^53).
    this.#v.setUint32(off, value % TWO_POW_32, true);
    this.#v.setUint32(off + 4, Math.floor(value / TWO_POW_32), true);
  }
}

/** Checks a GET/SET_INFLIGHT_FD description; returns the bytes the back-end will map. */
function checkDescription(body: VhostUserInflight, ringCount: number, what: string): { queues: number; mapBytes: number } {
  if (body.numQueues < 1) throw new VhostUserBackendError('VHOST_USER_BAD_INFLIGHT', `${what}: num_queues is 0`);
  if (!isValidQueueSize(body.queueSize)) throw new VhostUserBackendError('VHOST_USER_BAD_INFLIGHT', `${what}: queue_size ${body.queueSize} is not a power of 2 in 1..32768`);
  // Only the queues the device has are mapped; a larger num_queues is not an error in itself.
  const queues = Math.min(body.numQueues, ringCount);
  return { queues, mapBytes: inflightRegionSize(queues, body.queueSize) };
}

/** A mapped inflight record shared with the front-end: one `SplitInflightQueue` per ring. */
export class InflightRegion {
  readonly queueSize: number;
  readonly #mapping: Mapping;
  readonly #queues: SplitInflightQueue[];

  private constructor(mapping: Mapping, queues: number, queueSize: number) {
    this.#mapping = mapping;
    this.queueSize = queueSize;
    const stride = inflightQueueStride(queueSize);
    const buf = mapping.buffer;
    this.#queues = Array.from({ length: queues }, (_, i) => new SplitInflightQueue(new DataView(buf, i * stride, stride), queueSize));
  }

  /**
   * GET_INFLIGHT_FD: a new zeroed record for `body.numQueues` queues of `body.queueSize`, sealed
   * against shrinking and mapped. Returns the region, the reply body and the fd to send (the
   * caller closes it once sent).
   * @throws VhostUserBackendError VHOST_USER_BAD_INFLIGHT
   */
  static allocate(body: VhostUserInflight, ringCount: number): { region: InflightRegion; reply: VhostUserInflight; fd: number } {
    const { queues, mapBytes } = checkDescription(body, ringCount, 'GET_INFLIGHT_FD');
    const fd = memfdCreate('avp-inflight', mapBytes, { allowSealing: true });
    try {
      if (!sealAgainstShrink(fd)) throw new VhostUserBackendError('VHOST_USER_BAD_INFLIGHT', 'GET_INFLIGHT_FD: the new memfd cannot be sealed against shrinking');
      const region = new InflightRegion(mmapShared(fd, mapBytes, 0), queues, body.queueSize);
      return { region, reply: { mmapSize: mapBytes, mmapOffset: 0, numQueues: queues, queueSize: body.queueSize }, fd };
    } catch (e: unknown) {
      closeQuiet(fd);
      throw e;
    }
  }

  /**
   * SET_INFLIGHT_FD: maps a record handed back by the front-end. The description and the file are
   * checked first; the fd is not kept (the file is sealed, the mapping outlives it).
   * @throws VhostUserBackendError VHOST_USER_BAD_INFLIGHT, naming what is wrong
   */
  static adopt(body: VhostUserInflight, fd: number, ringCount: number): InflightRegion {
    const { queues, mapBytes } = checkDescription(body, ringCount, 'SET_INFLIGHT_FD');
    const bad = (m: string): VhostUserBackendError => new VhostUserBackendError('VHOST_USER_BAD_INFLIGHT', `SET_INFLIGHT_FD: ${m}`);
    if (body.mmapSize < mapBytes) throw bad(`mmap_size ${body.mmapSize} is smaller than the ${mapBytes} bytes ${queues} queue(s) of ${body.queueSize} need`);
    if (body.mmapOffset % PAGE_SIZE !== 0) throw bad(`mmap_offset ${body.mmapOffset} is not a multiple of the page size`);
    if (!Number.isSafeInteger(body.mmapOffset + mapBytes)) throw bad(`mmap_offset ${body.mmapOffset} is out of range`);
    const st = fdFileSize(fd);
    if (!st.regular) throw bad('the fd is not a regular file (memfd or tmpfs)');
    if (st.size < body.mmapOffset + mapBytes) throw bad(`the file has ${st.size} bytes, fewer than mmap_offset + ${mapBytes} = ${body.mmapOffset + mapBytes}`);
    // A shrink after mapping would fault the process on the next touch (docs/reliability.md).
    if (!sealAgainstShrink(fd)) throw bad('the file cannot be sealed against shrinking (a memfd made with MFD_ALLOW_SEALING is needed)');
    // Re-checked after the seal: the front-end may have shrunk it in between.
    if (fdFileSize(fd).size < body.mmapOffset + mapBytes) throw bad('the file shrank while it was being checked');
    let mapping: Mapping;
    try {
      mapping = mmapShared(fd, mapBytes, body.mmapOffset);
    } catch (e: unknown) {
      throw new VhostUserBackendError('VHOST_USER_BAD_INFLIGHT', `SET_INFLIGHT_FD: mmap failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new InflightRegion(mapping, queues, body.queueSize);
  }

  /** The record of ring `index`, or undefined when the region has none for it. */
  queue(index: number): SplitInflightQueue | undefined {
    return this.#queues[index];
  }

  /** Unmaps; no ring may still use one of its queues. A second call does nothing. */
  release(): void {
    munmap(this.#mapping);
  }
}
