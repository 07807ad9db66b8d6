// SPDX-License-Identifier: Apache-2.0
/**
 * What a console port is bound to on the host: bytes the guest writes go to `write`; bytes for the
 * guest arrive through the listener the device attaches; `connected` is what the device reports
 * with PORT_OPEN (§5.3.6.2 "host_connected").
 *
 * Owns: `PortHost`, `LogFilePortHost` (appends to a file; always connected; sends nothing) and
 * `DiscardPortHost`. A port on a host Unix socket is socket-host.ts's. Does not own: queues or
 * control messages (model.ts).
 */
import fs from 'node:fs';
import type { HostReactor } from '../../device/contract.js';
import { ConsoleConfigError } from './errors.js';

export interface PortHost {
  readonly connected: boolean;
  write(bytes: Uint8Array): void;
  /** The device listens for bytes for the guest and for connection changes. */
  attach(onData: (bytes: Uint8Array) => void, onConnected: (connected: boolean) => void): void;
  /** The device is active: watch host fds on its reactor (hosts with fds only). */
  start?(reactor: HostReactor): void;
  /** The device was reset: stop watching (the host end stays as it is). */
  stop?(): void;
  close(): void;
}

/** Appends what the guest writes to a file. */
export class LogFilePortHost implements PortHost {
  readonly connected = true;
  readonly #fd: number;

  /** @throws ConsoleConfigError CONSOLE_HOST_FILE */
  constructor(path: string) {
    try {
      this.#fd = fs.openSync(path, 'a');
    } catch (e: unknown) {
      throw new ConsoleConfigError('CONSOLE_HOST_FILE', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  write(bytes: Uint8Array): void {
    fs.writeSync(this.#fd, bytes);
  }
  attach(): void {}
  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** Drops what the guest writes; never connected. */
export class DiscardPortHost implements PortHost {
  readonly connected = false;
  write(): void {}
  attach(): void {}
  close(): void {}
}
