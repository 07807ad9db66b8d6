// SPDX-License-Identifier: Apache-2.0
/**
 * The host resource behind virtio-rng: an entropy source that fills bytes in place.
 *
 * `CryptoEntropySource` draws from Node's cryptographic random source (OpenSSL's CSPRNG, seeded
 * and reseeded from the kernel's getrandom), writing straight into guest memory: no copy.
 * `FakeEntropySource` is deterministic, for tests that check exactly where bytes land.
 */
import { randomFillSync } from 'node:crypto';

export interface EntropySource {
  /** Fills `dst` completely with random bytes. */
  fill(dst: Uint8Array): void;
}

export class CryptoEntropySource implements EntropySource {
  fill(dst: Uint8Array): void {
    randomFillSync(dst);
  }
}

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
