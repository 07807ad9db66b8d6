// SPDX-License-Identifier: Apache-2.0
/** Fixtures for virtio-console tests: a port host kept in memory, whose connection and input the test drives. */
import type { PortHost } from './host.js';

export class MemoryPortHost implements PortHost {
  connected: boolean;
  readonly written: number[] = [];
  #onData: ((b: Uint8Array) => void) | undefined;
  #onConnected: ((c: boolean) => void) | undefined;

  constructor(connected = true) {
    this.connected = connected;
  }
  write(bytes: Uint8Array): void {
    this.written.push(...bytes);
  }
  attach(onData: (b: Uint8Array) => void, onConnected: (c: boolean) => void): void {
    this.#onData = onData;
    this.#onConnected = onConnected;
  }
  /** Host bytes for the guest. */
  send(bytes: Uint8Array): void {
    this.#onData?.(bytes);
  }
  setConnected(c: boolean): void {
    this.connected = c;
    this.#onConnected?.(c);
  }
  close(): void {}
}

/** A control message `{ id u32, event u16, value u16 }`, field by field (§5.3.6.2). */
export function ctl(id: number, event: number, value: number): Uint8Array {
  return Uint8Array.of(id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24, event & 0xff, event >> 8, value & 0xff, value >> 8);
}
