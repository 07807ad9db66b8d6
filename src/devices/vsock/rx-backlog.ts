// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock device's rx backlog: packets for the guest (replies, host data, packets forwarded from
 * peers) waiting for rx buffers, in order, under a cap on packets and one on payload bytes.
 *
 * Why a backlog: the tx queue is processed even when the rx queue is full (§5.10.6.1), as long as
 * the backlog has room for the replies, so replies must wait somewhere. The caps bound that;
 * `REPLY_RESERVE` slots are kept for the device's own replies, which forwarded packets and host
 * data cannot take.
 *
 * Owns: the FIFO, its caps and room checks, and writing the first packet (or its first part) into
 * one rx chain. Does not own: popping the rx queue or notifying the guest (`model.ts`), deciding
 * what to enqueue (`model.ts`, `host-connections.ts`).
 */
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_VSOCK_HDR_SIZE, virtioVsockHdr, type VirtioVsockHdr } from './spec.js';

/** Backlog slots kept for the device's own replies, which forwarded packets cannot take. */
export const REPLY_RESERVE = 64;

/** A packet waiting for an rx buffer. */
export interface Pending {
  hdr: VirtioVsockHdr;
  data: Uint8Array | undefined;
  /** The host connection whose bytes these are (its `queued` count shrinks as they are delivered). */
  conn: { queued: number } | undefined;
}

export class RxBacklog {
  readonly #maxPackets: number;
  readonly #maxBytes: number;
  /** A FIFO from #head on (delivered slots are cleared, then compacted). */
  #items: Array<Pending | undefined> = [];
  #head = 0;
  #bytes = 0;

  /** Caps checked by the device's constructor: `maxPackets` >= 2 * REPLY_RESERVE. */
  constructor(maxPackets: number, maxBytes: number) {
    this.#maxPackets = maxPackets;
    this.#maxBytes = maxBytes;
  }

  /** Packets waiting. */
  get count(): number {
    return this.#items.length - this.#head;
  }

  /** Payload bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** No slot left even for a reply: tx processing must wait for rx buffers. */
  get full(): boolean {
    return this.count >= this.#maxPackets;
  }

  /** A slot is free outside the reply reserve (for host data and forwarded packets). */
  get hasDataSlot(): boolean {
    return this.count < this.#maxPackets - REPLY_RESERVE;
  }

  /** Payload bytes that fit before the byte cap. */
  get freeBytes(): number {
    return this.#maxBytes - this.#bytes;
  }

  /** True when a forwarded packet with `len` payload bytes fits now. */
  hasRoomFor(len: number): boolean {
    return this.hasDataSlot && this.#bytes + len <= this.#maxBytes;
  }

  /**
   * Adds a packet. Callers check room first (replies: tx pauses when the backlog is full; host
   * reads: `readRoom` in connection.ts; peers: `hasRoomFor`), so the caps hold except for the few
   * control packets of a teardown, which are bounded by the number of connections.
   */
  push(p: Pending): void {
    this.#items.push(p);
    this.#bytes += p.data?.byteLength ?? 0;
  }

  /**
   * Writes the first packet (or its first part, split to the buffer's size) into `chain`; returns
   * the used length, or 0 when the buffer cannot hold a header (or no payload byte of a packet that
   * has some): then the packet stays first. The caller checked the backlog is not empty.
   */
  fill(chain: DescriptorChain): number {
    // Safe: the caller checked the backlog is not empty.
    const p = this.#items[this.#head]!;
    const room = chain.writableLength - VIRTIO_VSOCK_HDR_SIZE;
    const len = p.data?.byteLength ?? 0;
    if (room < 0 || (len > 0 && room === 0)) return 0;
    const n = Math.min(len, room);
    const w = chain.writer();
    w.writeObj(virtioVsockHdr, { ...p.hdr, len: n });
    if (n > 0 && p.data !== undefined) w.write(p.data.subarray(0, n));
    this.#bytes -= n;
    if (p.conn !== undefined) p.conn.queued -= n;
    if (n < len && p.data !== undefined) p.data = p.data.subarray(n);
    else {
      this.#items[this.#head] = undefined;
      this.#head++;
    }
    return VIRTIO_VSOCK_HDR_SIZE + n;
  }

  /** Drops delivered slots once they are the larger part of the array. */
  compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Forgets every packet (the guest driver is gone). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
