// SPDX-License-Identifier: Apache-2.0
/**
 * Where a simulated EEPROM keeps its bytes: a file of exactly the chip's size, so what the guest
 * wrote is there after the back-end or the guest restarts, and a host program can read or prepare
 * it. A missing file is created filled with 0xff (an erased EEPROM). Each page the guest writes is
 * written to the file before the request completes (no fsync: an EEPROM's own write cycle is the
 * only promise a guest gets, and the page cache keeps it across a back-end crash).
 *
 * Owns: `EepromStore`, `FileEepromStore`. `MemoryEepromStore` (testing.ts) is the fake. Does not
 * own: the chip's addressing (clients.ts).
 */
import fs from 'node:fs';
import { errorText } from '../../errors.js';
import { I2cConfigError } from './errors.js';

export interface EepromStore {
  /** The contents (`size` bytes) at start-up. @throws I2cConfigError I2C_EEPROM_FILE */
  load(size: number): Uint8Array;
  /** Persists `data[offset, offset + length)`. @throws on I/O failure */
  save(data: Uint8Array, offset: number, length: number): void;
}

export class FileEepromStore implements EepromStore {
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.path = path;
  }

  load(size: number): Uint8Array {
    try {
      this.#fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      const st = fs.fstatSync(this.#fd);
      if (st.size === 0) {
        const erased = new Uint8Array(size).fill(0xff);
        fs.writeSync(this.#fd, erased, 0, size, 0);
        return erased;
      }
      if (st.size !== size) throw new I2cConfigError('I2C_EEPROM_FILE', `${this.path}: ${st.size} bytes, expected ${size} (a 24c02 holds 256)`);
      const data = new Uint8Array(size);
      fs.readSync(this.#fd, data, 0, size, 0);
      return data;
    } catch (e: unknown) {
      this.close();
      if (e instanceof I2cConfigError) throw e;
      throw new I2cConfigError('I2C_EEPROM_FILE', `${this.path}: ${errorText(e)}`, { cause: e });
    }
  }

  save(data: Uint8Array, offset: number, length: number): void {
    if (this.#fd === undefined) throw new I2cConfigError('I2C_EEPROM_FILE', `${this.path}: not loaded`);
    fs.writeSync(this.#fd, data, offset, length, offset);
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}
