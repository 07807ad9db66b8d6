// SPDX-License-Identifier: Apache-2.0
/**
 * The host resource behind virtio-rng: an entropy source that fills bytes in place.
 *
 * `CryptoEntropySource` draws from Node's cryptographic random source (OpenSSL's CSPRNG, seeded
 * and reseeded from the kernel's getrandom), writing straight into guest memory: no copy.
 * The deterministic fake for tests, `FakeEntropySource`, is in `testing.ts`.
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
