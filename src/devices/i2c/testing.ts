// SPDX-License-Identifier: Apache-2.0
/** Fakes for virtio-i2c tests: an in-memory EEPROM store that counts saves. */
import type { EepromStore } from './host.js';

export class MemoryEepromStore implements EepromStore {
  data = new Uint8Array(0);
  saves = 0;

  load(size: number): Uint8Array {
    this.data = new Uint8Array(size).fill(0xff);
    return this.data;
  }

  save(): void {
    this.saves++;
  }
}
