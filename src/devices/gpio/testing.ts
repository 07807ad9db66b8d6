// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures for virtio-gpio: a guest driver over the in-process harness that sends requestq
 * messages and queues eventq buffer pairs, with the bytes built by hand (DataView), never with the
 * constants' users in model.ts.
 *
 * Owns: test fixtures only. Does not own: any device behaviour.
 */
import { DeviceHarness, type HarnessOptions } from '../../device/harness.js';
import type { GpioDevice } from './model.js';

export interface GpioAnswer {
  status: number;
  value: number;
  len: number;
  bytes: Uint8Array;
}

export class GpioDriver {
  readonly h: DeviceHarness<GpioDevice>;

  constructor(device: GpioDevice, opts: HarnessOptions = {}) {
    this.h = new DeviceHarness(device, opts);
  }

  /** One requestq message: `type, gpio, value` in, `respLen` bytes of response (primed with 0xee). */
  request(type: number, gpio: number, value = 0, respLen = 2): GpioAnswer {
    const req = this.h.alloc.alloc(8);
    const v = new DataView(new ArrayBuffer(8));
    v.setUint16(0, type, true);
    v.setUint16(2, gpio, true);
    v.setUint32(4, value, true);
    this.h.memory.write(req, new Uint8Array(v.buffer));
    const resp = this.h.alloc.alloc(Math.max(respLen, 1));
    this.h.memory.fill(resp, respLen, 0xee);
    const used = this.h.request(0, [{ addr: req, len: 8 }, { addr: resp, len: respLen, writable: true }]);
    const bytes = this.h.memory.read(resp, respLen);
    return { status: bytes[0] ?? -1, value: bytes[1] ?? -1, len: used.len, bytes };
  }

  /** Queues an eventq pair for `gpio`; returns the address of its status byte and its head. */
  irqBuffer(gpio: number): { status: number; head: number } {
    const req = this.h.alloc.alloc(2);
    this.h.memory.write(req, Uint8Array.of(gpio & 0xff, gpio >> 8));
    const status = this.h.alloc.alloc(1);
    this.h.memory.fill(status, 1, 0xee);
    const head = this.h.submit(1, [{ addr: req, len: 2 }, { addr: status, len: 1, writable: true }]);
    return { status, head };
  }

  /** Used eventq elements so far, each with its status byte (read from `statusOf(head)`). */
  eventUsed(): Array<{ head: number; len: number }> {
    const out: Array<{ head: number; len: number }> = [];
    for (let u = this.h.queue(1).popUsed(); u !== null; u = this.h.queue(1).popUsed()) out.push({ head: u.head, len: u.len });
    return out;
  }

  statusAt(addr: number): number {
    return this.h.memory.read(addr, 1)[0] ?? -1;
  }
}
