// SPDX-License-Identifier: Apache-2.0
/**
 * Split virtqueue wire layout, VIRTIO 1.3 §2.7 "Split Virtqueues".
 *
 * Owns: descriptor/avail/used struct codecs, flag bits, ring sizes and alignments.
 * Does not own: walking chains or deciding notifications (that is `queue/`).
 *
 * ```
 * struct virtq_desc  { le64 addr; le32 len; le16 flags; le16 next; };            // 16 bytes, align 16
 * struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; };    // align 2
 * struct virtq_used_elem { le32 id; le32 len; };
 * struct virtq_used  { le16 flags; le16 idx; virtq_used_elem ring[N]; le16 avail_event; }; // align 4
 * ```
 */
import { type Codec, getU64, setU64 } from './codec.js';

/** §2.7.5: this marks a buffer as continuing via the next field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** §2.7.5: this marks a buffer as device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** §2.7.5.3: this means the buffer contains a list of buffer descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** §2.7.6: the driver asks the device not to interrupt (ignored by devices when EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** §2.7.8: the device asks the driver not to notify (ignored by drivers when EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** §2.7: "Queue Size ... the maximum queue size is 32768" and it is a power of 2 for split rings. */
export const VIRTQ_MAX_SIZE = 32768;

export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_USED_ELEM_SIZE = 8;

/** §2.7 table "Virtqueue Part / Alignment". */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

export interface VirtqDesc {
  /** Guest-physical address (u64; see `getU64` for values >= 2^53). */
  addr: number;
  len: number;
  flags: number;
  next: number;
}

export const virtqDesc: Codec<VirtqDesc> = {
  size: VIRTQ_DESC_SIZE,
  decode(view, off) {
    return {
      addr: getU64(view, off),
      len: view.getUint32(off + 8, true),
      flags: view.getUint16(off + 12, true),
      next: view.getUint16(off + 14, true),
    };
  },
  encode(v, view, off) {
    setU64(view, off, v.addr);
    view.setUint32(off + 8, v.len, true);
    view.setUint16(off + 12, v.flags, true);
    view.setUint16(off + 14, v.next, true);
  },
};

export interface VirtqUsedElem {
  /** Index of the head of the used descriptor chain. */
  id: number;
  /** Bytes written into the device-writable part of the chain. */
  len: number;
}

export const virtqUsedElem: Codec<VirtqUsedElem> = {
  size: VIRTQ_USED_ELEM_SIZE,
  decode(view, off) {
    return { id: view.getUint32(off, true), len: view.getUint32(off + 4, true) };
  },
  encode(v, view, off) {
    view.setUint32(off, v.id, true);
    view.setUint32(off + 4, v.len, true);
  },
};

/** Byte sizes of the three parts for a queue of `n` entries (§2.7, "Virtqueue Part / Size"). */
export function descTableSize(n: number): number {
  return VIRTQ_DESC_SIZE * n;
}
export function availRingSize(n: number): number {
  return 6 + 2 * n;
}
export function usedRingSize(n: number): number {
  return 6 + VIRTQ_USED_ELEM_SIZE * n;
}

/* Offsets inside the avail ring. */
export const AVAIL_FLAGS_OFF = 0;
export const AVAIL_IDX_OFF = 2;
export function availRingEntryOff(i: number): number {
  return 4 + 2 * i;
}
export function usedEventOff(n: number): number {
  return 4 + 2 * n;
}

/* Offsets inside the used ring. */
export const USED_FLAGS_OFF = 0;
export const USED_IDX_OFF = 2;
export function usedRingEntryOff(i: number): number {
  return 4 + VIRTQ_USED_ELEM_SIZE * i;
}
export function availEventOff(n: number): number {
  return 4 + VIRTQ_USED_ELEM_SIZE * n;
}

/** True for a valid split-ring size: a power of 2 from 1 to 32768 (§2.7). */
export function isValidQueueSize(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= VIRTQ_MAX_SIZE && (n & (n - 1)) === 0;
}

/**
 * §2.7.7.2 / §2.7.10: the notification test shared by both sides.
 * "vring_need_event(event_idx, new_idx, old_idx)": true when `eventIdx` lies in [old, new).
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
