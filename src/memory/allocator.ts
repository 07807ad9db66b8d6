// SPDX-License-Identifier: Apache-2.0
/**
 * A bump allocator over a window of guest memory, for driver-side code that has to place rings,
 * indirect tables and buffers somewhere: unit tests, the in-process harness, benchmarks and the
 * conformance front-end. It plays the role of libqos's guest_alloc.
 * Does not own: freeing (allocations live as long as the test or session; `reset` starts over).
 */
import { GuestMemoryError } from './errors.js';

export class GuestAllocator {
  #next: number;

  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    this.#next = base;
  }

  /** Bytes still free. */
  get free(): number {
    return this.base + this.size - this.#next;
  }

  /**
   * Returns the guest address of `len` fresh bytes aligned to `align` (a power of 2).
   * @throws GuestMemoryError GUEST_MEMORY_OUT_OF_RANGE when the window is exhausted.
   */
  alloc(len: number, align = 16): number {
    const at = Math.ceil(this.#next / align) * align;
    if (at + len > this.base + this.size) {
      throw new GuestMemoryError('GUEST_MEMORY_OUT_OF_RANGE', `guest allocator: ${len} bytes do not fit (${this.free} free)`, at, len);
    }
    this.#next = at + len;
    return at;
  }

  /** Forgets every allocation. */
  reset(): void {
    this.#next = this.base;
  }
}
