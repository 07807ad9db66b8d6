// SPDX-License-Identifier: Apache-2.0
/**
 * Packed virtqueue wire layout, VIRTIO 1.3 §2.8 "Packed Virtqueues".
 *
 * Owns: the descriptor and event-suppression struct layouts, flag bits, part sizes and alignments.
 * Does not own: walking chains or deciding notifications (that is `queue/packed-*.ts`).
 *
 * ```
 * struct pvirtq_desc { le64 addr; le32 len; le16 id; le16 flags; };              // 16 bytes, align 16
 * struct pvirtq_event_suppress { le16 desc;  // off : 15, wrap : 1
 *                                le16 flags; };                                   // 4 bytes, align 4
 * ```
 * The ring has three parts: the descriptor ring (Descriptor Area), the driver event suppression
 * structure (Driver Area, written by the driver, read by the device: it controls used buffer
 * notifications) and the device event suppression structure (Device Area, written by the device:
 * it controls available buffer notifications).
 */
import { type Codec, getU64, setU64 } from './codec.js';

/** §2.8.1: marks a descriptor available when it matches the driver's ring wrap counter. */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
/** §2.8.1: marks a descriptor used when it (and AVAIL) match the device's ring wrap counter. */
export const VIRTQ_DESC_F_USED = 1 << 15;

/** §2.8.10: event suppression flags (the low 2 bits of `flags`). */
export const RING_EVENT_FLAGS_ENABLE = 0x0;
export const RING_EVENT_FLAGS_DISABLE = 0x1;
/** Only valid with VIRTIO_F_EVENT_IDX (§2.8.10: "Only valid if VIRTIO_F_RING_EVENT_IDX has been negotiated"). */
export const RING_EVENT_FLAGS_DESC = 0x2;

/** §2.8: "Packed virtqueues support up to 2^15 entries each"; the size need not be a power of 2. */
export const PVIRTQ_MAX_SIZE = 0x8000;

export const PVIRTQ_DESC_SIZE = 16;
export const PVIRTQ_EVENT_SIZE = 4;
/** §2.8.10.1 table "Virtqueue Part / Alignment / Size". */
export const PVIRTQ_DESC_ALIGN = 16;
export const PVIRTQ_EVENT_ALIGN = 4;

/** Byte offsets inside a descriptor. */
export const PVIRTQ_DESC_ID_OFF = 12;
export const PVIRTQ_DESC_FLAGS_OFF = 14;

/** §2.8: a packed queue has 1..2^15 entries (no power-of-2 rule unless the transport adds one). */
export function isValidPackedQueueSize(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= PVIRTQ_MAX_SIZE;
}

export function packedDescRingSize(queueSize: number): number {
  return PVIRTQ_DESC_SIZE * queueSize;
}

export interface PvirtqDesc {
  /** Guest-physical address (u64; see `getU64` for values >= 2^53). */
  addr: number;
  len: number;
  id: number;
  flags: number;
}

export const pvirtqDesc: Codec<PvirtqDesc> = {
  size: PVIRTQ_DESC_SIZE,
  decode(view, off) {
    return {
      addr: getU64(view, off),
      len: view.getUint32(off + 8, true),
      id: view.getUint16(off + 12, true),
      flags: view.getUint16(off + 14, true),
    };
  },
  encode(v, view, off) {
    setU64(view, off, v.addr);
    view.setUint32(off + 8, v.len, true);
    view.setUint16(off + 12, v.id, true);
    view.setUint16(off + 14, v.flags, true);
  },
};

/**
 * `desc` of an event suppression structure: offset in bits 0..14, wrap counter in bit 15. The
 * same encoding carries a ring position (index + wrap counter) in vhost-user's packed ring base.
 */
export function packOffWrap(off: number, wrap: boolean): number {
  return (off & 0x7fff) | (wrap ? 0x8000 : 0);
}

export function unpackOffWrap(v: number): { off: number; wrap: boolean } {
  return { off: v & 0x7fff, wrap: (v & 0x8000) !== 0 };
}

/**
 * Whether a position `(off, wrap)` lies among the `count` positions that end just before
 * `(newOff, newWrap)` in a ring of `size` entries (§2.8.10 descriptor-specific events; the packed
 * form of `vring_need_event`). Positions are linearised over two laps (wrap 1 → [0, size),
 * wrap 0 → [size, 2·size)), the period of the (index, wrap counter) pair.
 */
export function packedNeedEvent(size: number, event: number, newOff: number, newWrap: boolean, count: number): boolean {
  if (count <= 0) return false;
  if (count >= size) return true;
  const period = 2 * size;
  const { off, wrap } = unpackOffWrap(event);
  if (off >= size) return false;
  const lin = (o: number, w: boolean): number => o + (w ? 0 : size);
  const back = (lin(newOff, newWrap) - lin(off, wrap) - 1 + period) % period;
  return back < count;
}
