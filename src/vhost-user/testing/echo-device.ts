// SPDX-License-Identifier: Apache-2.0
/**
 * Test devices for back-end loop tests, free of any real device type (vhost-user must not depend
 * on one): `EchoDevice` fills every device-writable byte of a chain with 0xec and returns its
 * writable length; `linkedEchoPair` makes two such devices where serving a chain on B also
 * delivers one "frame" into A's queue and interrupts A, the path a switch takes (port B's TX
 * becomes port A's RX and A's call eventfd is signalled from B's kick).
 * Owns: nothing but test behaviour. Not used by any product code.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';

/** Byte the echo device writes into device-writable buffers. */
export const ECHO_FILL = 0xec;

export class EchoDevice implements VirtioDevice {
  readonly deviceId = 4;
  readonly name: string;
  readonly queueMaxSizes = [16];
  /** VERSION_1 only. */
  readonly offeredFeatures = 1n << 32n;
  readonly configSize = 0;
  served = 0;
  /** Called after this device served chains from its own queue (the link of a pair). */
  onServed: ((n: number) => void) | undefined;
  /** A receive-only device: a kick just makes buffers available; `deliver` uses them (switch RX). */
  passive = false;
  #ctx: DeviceContext | undefined;

  constructor(name = 'echo') {
    this.name = name;
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  queueNotify(index: number): void {
    if (this.#ctx === undefined || this.passive) return;
    const n = serveQueue(this.#ctx, index, (chain) => {
      for (const seg of chain.writer().segments(chain.writableLength)) seg.fill(ECHO_FILL);
      return chain.writableLength;
    });
    this.served += n;
    if (n > 0) this.onServed?.(n);
  }

  /** Takes one chain from this device's queue 0 as a delivered frame and interrupts (switch RX). */
  deliver(): void {
    if (this.#ctx === undefined) return;
    serveQueue(this.#ctx, 0, (chain) => chain.writableLength);
  }

  reset(): void {
    this.#ctx = undefined;
  }

  metrics(): Record<string, unknown> {
    return { served: this.served };
  }
}

/** Two echo devices; `a` is receive-only, and every chain served on `b` delivers one frame into `a`. */
export function linkedEchoPair(): [EchoDevice, EchoDevice] {
  const a = new EchoDevice('a');
  const b = new EchoDevice('b');
  a.passive = true;
  b.onServed = (n) => {
    for (let i = 0; i < n; i++) a.deliver();
  };
  return [a, b];
}
