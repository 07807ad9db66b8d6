// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures for virtio-rng tests: a deterministic entropy source.
 *
 * Owns: test fixtures only (exported through `avp/testing`, not the main entry). Does not own: any
 * device behaviour.
 */
import type { EntropySource } from './host.js';

/** Writes a counter sequence 1, 2, 3, ... (mod 256, never 0) so tests can see every byte. */
export class FakeEntropySource implements EntropySource {
  #n = 0;
  fill(dst: Uint8Array): void {
    for (let i = 0; i < dst.length; i++) {
      this.#n = (this.#n % 255) + 1;
      dst[i] = this.#n;
    }
  }
}
