// SPDX-License-Identifier: Apache-2.0
/**
 * Test helper: builds expected wire bytes by hand, independently of the codecs under test
 * (the pg-protocol `BufferList` idea; DESIGN.md "Expected bytes are built independently").
 *
 * Owns: appending little-endian integers and raw bytes; `frameBytes`, a vhost-user message from a
 * header and a payload. Does not own: any knowledge of payload layouts; tests spell those out.
 * Deliberately uses shifts and masks, not `DataView`, so it shares no code path with `messages.ts`.
 */

export class ByteBuilder {
  readonly #bytes: number[] = [];

  /** Number of bytes appended so far. */
  get length(): number {
    return this.#bytes.length;
  }

  u8(v: number): this {
    return this.#uint(BigInt(v), 1);
  }

  u16(v: number): this {
    return this.#uint(BigInt(v), 2);
  }

  u32(v: number): this {
    return this.#uint(BigInt(v), 4);
  }

  /** A u64 from a bigint or a safe-integer number. */
  u64(v: bigint | number): this {
    return this.#uint(BigInt(v), 8);
  }

  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.u8(b[i] ?? 0);
    return this;
  }

  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.#bytes.push(0);
    return this;
  }

  build(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  #uint(v: bigint, width: number): this {
    if (v < 0n || v >= 1n << BigInt(8 * width)) throw new RangeError(`${v} does not fit in ${width} byte(s)`);
    for (let i = 0; i < width; i++) this.#bytes.push(Number((v >> BigInt(8 * i)) & 0xffn));
    return this;
  }
}

/**
 * One vhost-user message: `u32 request, u32 flags, u32 size` then the payload. `size` defaults to
 * the payload length; pass another value to build a lying header.
 */
export function frameBytes(request: number, flags: number, payload: Uint8Array = new Uint8Array(0), size = payload.length): Uint8Array {
  return new ByteBuilder().u32(request).u32(flags).u32(size).bytes(payload).build();
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
