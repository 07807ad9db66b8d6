// SPDX-License-Identifier: Apache-2.0
/**
 * A validated descriptor chain and cursors over its buffers.
 *
 * Owns: the device's view of one request: its head index, its device-readable buffers followed by
 * its device-writable buffers (VIRTIO 1.3 §2.7.4.2: "The driver MUST place any device-writable
 * descriptor elements after any device-readable descriptor elements"), and bounded cursors that
 * read and write them with zero-copy views where possible.
 * Does not own: walking or validating the ring (that is `split-device.ts`, which only hands out
 * chains whose every buffer lies in guest memory), or any device semantics.
 *
 * Guest memory is shared with a running guest: bytes may change under us at any time. Cursors
 * therefore copy what they parse (`readBytes`, `readObj`) and re-check ranges on each access.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { Codec } from '../spec/codec.js';

/** One guest buffer: a guest-physical address and a length, already checked against memory. */
export interface GuestBuffer {
  readonly addr: number;
  readonly len: number;
}

/** Sum of buffer lengths. */
export function totalLength(buffers: readonly GuestBuffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.len;
  return n;
}

/** A chain popped from a virtqueue: what the device may read and where it may write. */
export class DescriptorChain {
  readonly readableLength: number;
  readonly writableLength: number;

  constructor(
    readonly memory: GuestMemory,
    /** Index of the head descriptor: the id to hand back in the used ring. */
    readonly head: number,
    readonly readable: readonly GuestBuffer[],
    readonly writable: readonly GuestBuffer[],
  ) {
    this.readableLength = totalLength(readable);
    this.writableLength = totalLength(writable);
  }

  reader(): ChainReader {
    return new ChainReader(this.memory, this.readable);
  }

  writer(): ChainWriter {
    return new ChainWriter(this.memory, this.writable);
  }
}

/** A forward-only cursor over a list of guest buffers. */
class Cursor {
  #index = 0;
  #offset = 0;
  #consumed = 0;
  readonly total: number;

  constructor(
    protected readonly memory: GuestMemory,
    private readonly buffers: readonly GuestBuffer[],
  ) {
    this.total = totalLength(buffers);
  }

  /** Bytes not yet consumed. */
  get remaining(): number {
    return this.total - this.#consumed;
  }

  /** Bytes consumed so far. */
  get consumed(): number {
    return this.#consumed;
  }

  /**
   * Zero-copy views of the next `n` bytes (n <= remaining), advancing the cursor. Views are split
   * at buffer and region boundaries.
   * @throws RangeError when n > remaining (a caller bug: callers compare against `remaining`).
   */
  segments(n: number): Uint8Array[] {
    if (n > this.remaining || n < 0) throw new RangeError(`cursor: ${n} bytes asked, ${this.remaining} left`);
    const out: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      // Safe: remaining >= left > 0 guarantees a buffer at #index.
      const b = this.buffers[this.#index]!;
      const take = Math.min(left, b.len - this.#offset);
      for (const seg of this.memory.segments(b.addr + this.#offset, take)) out.push(seg);
      this.#advance(take);
      left -= take;
    }
    return out;
  }

  /**
   * Guest address of the next `n` bytes when they lie in the current buffer, advancing past them;
   * undefined (and no advance) when they span buffers. The hot path of small reads and writes (a
   * request header, a status byte): no segment arrays, no views. The caller checked n <= remaining.
   */
  protected takeContiguous(n: number): number | undefined {
    // Step over exhausted (or zero-length) buffers first.
    while (this.#index < this.buffers.length && this.#offset >= (this.buffers[this.#index]?.len ?? 0)) {
      this.#index++;
      this.#offset = 0;
    }
    const b = this.buffers[this.#index];
    if (b === undefined || b.len - this.#offset < n) return undefined;
    const addr = b.addr + this.#offset;
    this.#advance(n);
    return addr;
  }

  /** Advances by `n` bytes without touching memory. */
  skip(n: number): void {
    if (n > this.remaining || n < 0) throw new RangeError(`cursor: skip ${n}, ${this.remaining} left`);
    let left = n;
    while (left > 0) {
      // Safe: as in segments().
      const b = this.buffers[this.#index]!;
      const take = Math.min(left, b.len - this.#offset);
      this.#advance(take);
      left -= take;
    }
  }

  #advance(n: number): void {
    this.#offset += n;
    this.#consumed += n;
    while (this.#index < this.buffers.length && this.#offset >= (this.buffers[this.#index]?.len ?? 0)) {
      this.#index++;
      this.#offset = 0;
    }
  }
}

/** Reads the device-readable part of a chain. */
export class ChainReader extends Cursor {
  /** Copies the next `n` bytes out (n <= remaining). */
  readBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    if (n > this.remaining || n < 0) throw new RangeError(`cursor: ${n} bytes asked, ${this.remaining} left`);
    const addr = this.takeContiguous(n);
    if (addr !== undefined) {
      this.memory.readInto(addr, out);
      return out;
    }
    let at = 0;
    for (const seg of this.segments(n)) {
      out.set(seg, at);
      at += seg.byteLength;
    }
    return out;
  }

  /** Decodes the next struct (copied first: the guest may change the bytes meanwhile). */
  readObj<T>(codec: Codec<T>): T {
    if (codec.size > SCRATCH_BYTES) {
      const bytes = this.readBytes(codec.size);
      return codec.decode(new DataView(bytes.buffer), 0);
    }
    // Small structs (request headers) go through one reused buffer: no allocation per request.
    // Decoding is synchronous and returns plain values, so the scratch is free again at once.
    this.readInto(SCRATCH.subarray(0, codec.size));
    return codec.decode(SCRATCH_VIEW, 0);
  }

  /** Copies the next `dst.byteLength` bytes into `dst` (<= remaining). */
  readInto(dst: Uint8Array): void {
    const n = dst.byteLength;
    if (n > this.remaining) throw new RangeError(`cursor: ${n} bytes asked, ${this.remaining} left`);
    const addr = this.takeContiguous(n);
    if (addr !== undefined) {
      this.memory.readInto(addr, dst);
      return;
    }
    let at = 0;
    for (const seg of this.segments(n)) {
      dst.set(seg, at);
      at += seg.byteLength;
    }
  }
}

/** Scratch for `readObj` of structs up to this size (virtio request headers are 8 to 64 bytes). */
const SCRATCH_BYTES = 64;
const SCRATCH = new Uint8Array(SCRATCH_BYTES);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

/** Writes the device-writable part of a chain. */
export class ChainWriter extends Cursor {
  /** Copies `src` into the next `src.byteLength` bytes (must fit in `remaining`). */
  write(src: Uint8Array): void {
    if (src.byteLength > this.remaining) throw new RangeError(`cursor: ${src.byteLength} bytes asked, ${this.remaining} left`);
    const addr = this.takeContiguous(src.byteLength);
    if (addr !== undefined) {
      this.memory.write(addr, src);
      return;
    }
    let at = 0;
    for (const seg of this.segments(src.byteLength)) {
      seg.set(src.subarray(at, at + seg.byteLength));
      at += seg.byteLength;
    }
  }

  writeU8(value: number): void {
    if (this.remaining < 1) throw new RangeError('cursor: 1 byte asked, 0 left');
    const addr = this.takeContiguous(1);
    if (addr === undefined) this.write(Uint8Array.of(value));
    else this.memory.writeU8(addr, value);
  }

  writeObj<T>(codec: Codec<T>, value: T): void {
    const bytes = new Uint8Array(codec.size);
    codec.encode(value, new DataView(bytes.buffer), 0);
    this.write(bytes);
  }
}
