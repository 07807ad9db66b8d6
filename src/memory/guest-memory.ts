// SPDX-License-Identifier: Apache-2.0
/**
 * Bounds-checked access to guest-physical memory.
 *
 * Owns: the `GuestMemory` interface every device and queue uses, and the two implementations:
 * `FlatGuestMemory` (one ArrayBuffer at guest-physical 0; tests and the in-process harness) and
 * `RegionGuestMemory` (several regions at arbitrary bases; what vhost-user builds from the
 * regions it maps, once for guest-physical and once for front-end-virtual addresses).
 * Does not own: mapping memory (that is `sys/` through `vhost-user/`), or any virtio semantics.
 *
 * Address arithmetic. Guest addresses are u64 on the wire and JS numbers here. Every address must
 * be a safe integer (< 2^53); a u64 at or above 2^53 decodes to a non-safe number (see
 * `spec/codec.ts#getU64`) and is rejected as GUEST_MEMORY_INVALID_ADDRESS, so a high word is never
 * silently dropped. Regions must end at or below 2^53, which no real machine exceeds (x86-64 user
 * space ends at 2^47). The range test is written as `len <= end - addr`, a subtraction of two safe
 * integers, so `addr + len` can neither overflow nor wrap around.
 */
import type { Codec } from '../spec/codec.js';
import { GuestMemoryError } from './errors.js';

/** One contiguous piece of guest memory. */
export interface MemoryRegion {
  /** First guest address of the region. */
  readonly guestBase: number;
  /** Bytes of guest memory; `bytes.byteLength` is the region size. */
  readonly bytes: Uint8Array;
}

export interface GuestMemory {
  /** Sum of all region sizes, in bytes. */
  readonly totalSize: number;
  /** The regions, sorted by `guestBase`, non-overlapping. */
  readonly regions: readonly MemoryRegion[];

  /** True when every byte of [addr, addr + len) lies in guest memory (len 0: addr is valid). */
  isValidRange(addr: number, len: number): boolean;
  /** @throws GuestMemoryError unless every byte of [addr, addr + len) lies in guest memory. */
  checkRange(addr: number, len: number): void;

  /**
   * A zero-copy view of [addr, addr + len). Writes through it reach guest memory.
   * @throws GuestMemoryError GUEST_MEMORY_NOT_CONTIGUOUS when the range spans two regions.
   */
  view(addr: number, len: number): Uint8Array;
  /** Zero-copy views covering [addr, addr + len) in order, split where regions meet. */
  segments(addr: number, len: number): Uint8Array[];

  /** Copies guest bytes into `dst` (length `dst.byteLength`). */
  readInto(addr: number, dst: Uint8Array): void;
  /** Copies `len` guest bytes out. The caller caps `len`; never pass a guest-claimed size unchecked. */
  read(addr: number, len: number): Uint8Array;
  /** Copies `src` into guest memory. */
  write(addr: number, src: Uint8Array): void;
  /** Sets [addr, addr + len) to `value` (default 0). */
  fill(addr: number, len: number, value?: number): void;

  readU8(addr: number): number;
  readU16(addr: number): number;
  readU32(addr: number): number;
  /** Little-endian u64; values >= 2^53 come back as non-safe numbers (see file comment). */
  readU64(addr: number): number;
  writeU8(addr: number, value: number): void;
  writeU16(addr: number, value: number): void;
  writeU32(addr: number, value: number): void;
  writeU64(addr: number, value: number): void;

  readObj<T>(codec: Codec<T>, addr: number): T;
  writeObj<T>(codec: Codec<T>, addr: number, value: T): void;
}

/** Highest address (exclusive) a region may reach: every address inside stays a safe integer. */
export const MAX_GUEST_ADDRESS = 2 ** 53;

interface Slot {
  readonly guestBase: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  readonly dv: DataView;
}

/** True when `addr` can be a guest address at all. */
function isAddress(addr: number): boolean {
  return Number.isSafeInteger(addr) && addr >= 0;
}

/** True when `len` is a usable length (a non-negative safe integer). */
function isLength(len: number): boolean {
  return Number.isSafeInteger(len) && len >= 0;
}

/**
 * Region-based guest memory: several regions at arbitrary guest-physical bases, each backed by
 * (part of) an ArrayBuffer. Accesses that span adjacent regions are split; accesses that touch a
 * gap or lie outside every region throw `GuestMemoryError`.
 */
export class RegionGuestMemory implements GuestMemory {
  readonly regions: readonly MemoryRegion[];
  readonly totalSize: number;
  readonly #slots: Slot[];
  /** Index of the slot that served the last lookup: accesses cluster in one region. */
  #hint = 0;
  readonly #scratch = new Uint8Array(8);
  readonly #scratchView = new DataView(this.#scratch.buffer);

  /** @throws GuestMemoryError GUEST_MEMORY_BAD_REGION for an empty, misplaced or overlapping region. */
  constructor(regions: readonly MemoryRegion[]) {
    const sorted = [...regions].sort((a, b) => a.guestBase - b.guestBase);
    const slots: Slot[] = [];
    let total = 0;
    for (const r of sorted) {
      const size = r.bytes.byteLength;
      if (!isAddress(r.guestBase)) throw GuestMemoryError.badRegion(`region base ${r.guestBase} is not a valid address`, r.guestBase, size);
      if (size === 0) throw GuestMemoryError.badRegion(`region at 0x${r.guestBase.toString(16)} is empty`, r.guestBase, size);
      if (size > MAX_GUEST_ADDRESS - r.guestBase) {
        throw GuestMemoryError.badRegion(`region at 0x${r.guestBase.toString(16)} of ${size} bytes ends above 2^53`, r.guestBase, size);
      }
      const prev = slots[slots.length - 1];
      if (prev !== undefined && r.guestBase < prev.end) {
        throw GuestMemoryError.badRegion(
          `region at 0x${r.guestBase.toString(16)} overlaps the region ending at 0x${prev.end.toString(16)}`,
          r.guestBase,
          size,
        );
      }
      slots.push({ guestBase: r.guestBase, end: r.guestBase + size, bytes: r.bytes, dv: new DataView(r.bytes.buffer, r.bytes.byteOffset, size) });
      total += size;
    }
    this.#slots = slots;
    this.regions = sorted;
    this.totalSize = total;
  }

  /** The slot containing `addr`, or undefined. `addr` must already be a valid address. */
  #find(addr: number): Slot | undefined {
    const slots = this.#slots;
    const hinted = slots[this.#hint];
    if (hinted !== undefined && addr >= hinted.guestBase && addr < hinted.end) return hinted;
    let lo = 0;
    let hi = slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      // Safe: 0 <= mid < slots.length.
      const s = slots[mid]!;
      if (addr < s.guestBase) hi = mid - 1;
      else if (addr >= s.end) lo = mid + 1;
      else {
        this.#hint = mid;
        return s;
      }
    }
    return undefined;
  }

  /**
   * The slot holding all of [addr, addr + len) when it lies in one region; `null` when the range
   * is valid but spans regions.
   * @throws GuestMemoryError when the range is invalid or leaves guest memory.
   */
  #single(addr: number, len: number): Slot | null {
    if (!isAddress(addr) || !isLength(len)) throw GuestMemoryError.invalidAddress(addr, len);
    const s = this.#find(addr);
    if (s === undefined) {
      // A zero-length range at the very end of a region touches no byte; accept it.
      if (len === 0 && this.#slots.some((x) => x.end === addr)) return null;
      throw GuestMemoryError.outOfRange(addr, len);
    }
    if (len <= s.end - addr) return s;
    this.checkRange(addr, len);
    return null;
  }

  isValidRange(addr: number, len: number): boolean {
    if (!isAddress(addr) || !isLength(len)) return false;
    let cur = addr;
    let left = len;
    for (;;) {
      const s = this.#find(cur);
      if (s === undefined) return left === 0 && this.#slots.some((x) => x.end === cur);
      const room = s.end - cur;
      if (left <= room) return true;
      left -= room;
      cur = s.end;
    }
  }

  checkRange(addr: number, len: number): void {
    if (!isAddress(addr) || !isLength(len)) throw GuestMemoryError.invalidAddress(addr, len);
    if (!this.isValidRange(addr, len)) throw GuestMemoryError.outOfRange(addr, len);
  }

  view(addr: number, len: number): Uint8Array {
    const s = this.#single(addr, len);
    if (s === null) {
      if (len === 0) return new Uint8Array(0);
      throw GuestMemoryError.notContiguous(addr, len);
    }
    const off = addr - s.guestBase;
    return s.bytes.subarray(off, off + len);
  }

  segments(addr: number, len: number): Uint8Array[] {
    this.checkRange(addr, len);
    const out: Uint8Array[] = [];
    let cur = addr;
    let left = len;
    while (left > 0) {
      // Safe: checkRange proved every byte of the range lies in some region.
      const s = this.#find(cur)!;
      const off = cur - s.guestBase;
      const n = Math.min(left, s.end - cur);
      out.push(s.bytes.subarray(off, off + n));
      cur += n;
      left -= n;
    }
    return out;
  }

  readInto(addr: number, dst: Uint8Array): void {
    const s = this.#single(addr, dst.byteLength);
    if (s !== null) {
      const off = addr - s.guestBase;
      dst.set(s.bytes.subarray(off, off + dst.byteLength));
      return;
    }
    let at = 0;
    for (const seg of this.segments(addr, dst.byteLength)) {
      dst.set(seg, at);
      at += seg.byteLength;
    }
  }

  read(addr: number, len: number): Uint8Array {
    this.checkRange(addr, len);
    const out = new Uint8Array(len);
    this.readInto(addr, out);
    return out;
  }

  write(addr: number, src: Uint8Array): void {
    const s = this.#single(addr, src.byteLength);
    if (s !== null) {
      s.bytes.set(src, addr - s.guestBase);
      return;
    }
    let at = 0;
    for (const seg of this.segments(addr, src.byteLength)) {
      seg.set(src.subarray(at, at + seg.byteLength));
      at += seg.byteLength;
    }
  }

  fill(addr: number, len: number, value = 0): void {
    for (const seg of this.segments(addr, len)) seg.fill(value);
  }

  /** DataView and offset for an aligned-size scalar access, copying through scratch when split. */
  #scalar(addr: number, size: number): [DataView, number] {
    const s = this.#single(addr, size);
    if (s !== null) return [s.dv, addr - s.guestBase];
    this.readInto(addr, this.#scratch.subarray(0, size));
    return [this.#scratchView, 0];
  }

  readU8(addr: number): number {
    const [dv, off] = this.#scalar(addr, 1);
    return dv.getUint8(off);
  }
  readU16(addr: number): number {
    const [dv, off] = this.#scalar(addr, 2);
    return dv.getUint16(off, true);
  }
  readU32(addr: number): number {
    const [dv, off] = this.#scalar(addr, 4);
    return dv.getUint32(off, true);
  }
  readU64(addr: number): number {
    const [dv, off] = this.#scalar(addr, 8);
    return dv.getUint32(off + 4, true) * 0x1_0000_0000 + dv.getUint32(off, true);
  }

  #writeScalar(addr: number, size: number, put: (dv: DataView, off: number) => void): void {
    const s = this.#single(addr, size);
    if (s !== null) {
      put(s.dv, addr - s.guestBase);
      return;
    }
    put(this.#scratchView, 0);
    this.write(addr, this.#scratch.subarray(0, size));
  }

  writeU8(addr: number, value: number): void {
    this.#writeScalar(addr, 1, (dv, off) => dv.setUint8(off, value));
  }
  writeU16(addr: number, value: number): void {
    this.#writeScalar(addr, 2, (dv, off) => dv.setUint16(off, value, true));
  }
  writeU32(addr: number, value: number): void {
    this.#writeScalar(addr, 4, (dv, off) => dv.setUint32(off, value, true));
  }
  writeU64(addr: number, value: number): void {
    this.#writeScalar(addr, 8, (dv, off) => {
      dv.setUint32(off, value % 0x1_0000_0000, true);
      dv.setUint32(off + 4, Math.floor(value / 0x1_0000_0000), true);
    });
  }

  readObj<T>(codec: Codec<T>, addr: number): T {
    const s = this.#single(addr, codec.size);
    if (s !== null) return codec.decode(s.dv, addr - s.guestBase);
    const tmp = this.read(addr, codec.size);
    return codec.decode(new DataView(tmp.buffer), 0);
  }

  writeObj<T>(codec: Codec<T>, addr: number, value: T): void {
    const s = this.#single(addr, codec.size);
    if (s !== null) {
      codec.encode(value, s.dv, addr - s.guestBase);
      return;
    }
    const tmp = new Uint8Array(codec.size);
    codec.encode(value, new DataView(tmp.buffer), 0);
    this.write(addr, tmp);
  }
}

/**
 * Flat guest memory: one zero-initialised ArrayBuffer mapped at guest-physical 0. The memory of
 * unit tests, benchmarks and the in-process harness.
 */
export class FlatGuestMemory extends RegionGuestMemory {
  readonly buffer: ArrayBuffer;

  constructor(size: number) {
    const buffer = new ArrayBuffer(size);
    super([{ guestBase: 0, bytes: new Uint8Array(buffer) }]);
    this.buffer = buffer;
  }
}
