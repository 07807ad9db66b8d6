// SPDX-License-Identifier: Apache-2.0
/**
 * The shape every VIRTIO wire struct is declared in: a fixed-size little-endian codec over a
 * `DataView`.
 *
 * Owns: the `Codec` contract and the u64 helpers shared by struct codecs.
 * Does not own: any bounds checking of guest addresses (that is `memory/`); a codec trusts the
 * view and offset it is given, and the caller guarantees `off + size <= view.byteLength`.
 */

/** A fixed-size struct codec. Every multi-byte field is little-endian (VIRTIO 1.3 §1.4). */
export interface Codec<T> {
  /** Size of the encoded struct in bytes. */
  readonly size: number;
  decode(view: DataView, off: number): T;
  encode(value: T, view: DataView, off: number): void;
}

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Reads a little-endian u64 as a JS number.
 *
 * Values at or above 2^53 cannot be represented exactly; they come back as a number that is not
 * a safe integer, which every consumer (the memory layer in particular) rejects. The high word is
 * never dropped: a non-zero high word always yields a value >= 2^32.
 */
export function getU64(view: DataView, off: number): number {
  const lo = view.getUint32(off, true);
  const hi = view.getUint32(off + 4, true);
  return hi * TWO_POW_32 + lo;
}

/** Writes a u64 given as a JS number; the caller guarantees a safe, non-negative integer. */
export function setU64(view: DataView, off: number, value: number): void {
  view.setUint32(off, value % TWO_POW_32, true);
  view.setUint32(off + 4, Math.floor(value / TWO_POW_32), true);
}
