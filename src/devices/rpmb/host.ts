// SPDX-License-Identifier: Apache-2.0
/**
 * Where an RPMB partition's state lives: the authentication key, the write counter and the data.
 *
 * `FileRpmbStore` keeps it in one file, so a programmed key and the counter survive restarts (the
 * point of replay protection: a counter that resets on restart would let old writes be replayed).
 * Layout: a 64-byte header (`AVPRPMB1`, u32 LE capacity units, u32 LE flags (bit 0: key
 * programmed), u32 LE write counter, 12 bytes reserved, key[32]) followed by the data. Every
 * change is written and fdatasync'ed before the response reports success.
 * `MemoryRpmbStore` (testing.ts) is the fake.
 */
import fs from 'node:fs';
import { RpmbConfigError } from './errors.js';
import { RPMB_CAPACITY_UNIT, RPMB_KEY_SIZE } from './spec.js';

export interface RpmbState {
  key: Uint8Array | null;
  writeCounter: number;
  /** capacity × 128 KiB bytes. */
  data: Uint8Array;
}

export interface RpmbStore {
  /** The state at start-up (a fresh store: no key, counter 0, zero data). */
  load(): RpmbState;
  /** Persists the key and the counter, and `data[offset, offset+len)` when given. */
  save(state: RpmbState, changed?: { offset: number; length: number }): void;
}

const MAGIC = 'AVPRPMB1';
export const RPMB_STATE_HEADER = 64;

export class FileRpmbStore implements RpmbStore {
  readonly #path: string;
  readonly #capacity: number;
  #fd: number | undefined;

  constructor(path: string, capacityUnits: number) {
    this.#path = path;
    this.#capacity = capacityUnits;
  }

  load(): RpmbState {
    const size = this.#capacity * RPMB_CAPACITY_UNIT;
    try {
      this.#fd = fs.openSync(this.#path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      const st = fs.fstatSync(this.#fd);
      if (st.size === 0) {
        const state: RpmbState = { key: null, writeCounter: 0, data: new Uint8Array(size) };
        fs.ftruncateSync(this.#fd, RPMB_STATE_HEADER + size);
        this.save(state);
        return state;
      }
      if (st.size !== RPMB_STATE_HEADER + size) throw new RpmbConfigError('RPMB_BAD_STATE_FILE', `${this.#path}: ${st.size} bytes, expected ${RPMB_STATE_HEADER + size} for capacity ${this.#capacity}`);
      const buf = new Uint8Array(RPMB_STATE_HEADER + size);
      fs.readSync(this.#fd, buf, 0, buf.length, 0);
      const v = new DataView(buf.buffer);
      if (Buffer.from(buf.subarray(0, 8)).toString('latin1') !== MAGIC || v.getUint32(8, true) !== this.#capacity) {
        throw new RpmbConfigError('RPMB_BAD_STATE_FILE', `${this.#path} is not an AVP RPMB state file of capacity ${this.#capacity}`);
      }
      const keyed = (v.getUint32(12, true) & 1) !== 0;
      return {
        key: keyed ? buf.slice(32, 32 + RPMB_KEY_SIZE) : null,
        writeCounter: v.getUint32(16, true),
        data: buf.slice(RPMB_STATE_HEADER),
      };
    } catch (e: unknown) {
      if (e instanceof RpmbConfigError) throw e;
      throw new RpmbConfigError('RPMB_STATE_IO', `${this.#path}: ${(e as Error).message}`, { cause: e });
    }
  }

  save(state: RpmbState, changed?: { offset: number; length: number }): void {
    if (this.#fd === undefined) throw new RpmbConfigError('RPMB_STATE_IO', `${this.#path}: not loaded`);
    const head = new Uint8Array(RPMB_STATE_HEADER);
    head.set(Buffer.from(MAGIC, 'latin1'), 0);
    const v = new DataView(head.buffer);
    v.setUint32(8, this.#capacity, true);
    v.setUint32(12, state.key === null ? 0 : 1, true);
    v.setUint32(16, state.writeCounter, true);
    if (state.key !== null) head.set(state.key, 32);
    if (changed !== undefined) fs.writeSync(this.#fd, state.data, changed.offset, changed.length, RPMB_STATE_HEADER + changed.offset);
    fs.writeSync(this.#fd, head, 0, head.length, 0);
    fs.fdatasyncSync(this.#fd);
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}
