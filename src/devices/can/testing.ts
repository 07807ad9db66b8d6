// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures for virtio-can tests: a link that records what the device sends and lets the test play
 * the bus (frames in, bus-off, busy and writable), and request builders written field by field
 * from the spec (independent of model.ts). Test fixtures only.
 */
import type { CanFrame } from '../../can/index.js';
import type { HostReactor } from '../../device/contract.js';
import type { CanLink, CanLinkEvents } from './host.js';

export class FakeLink implements CanLink {
  readonly stats = { starts: 0, stops: 0 };
  readonly sent: CanFrame[] = [];
  events: CanLinkEvents | undefined;
  /** What send answers next. */
  answer: 'ok' | 'busy' | 'refused' = 'ok';
  /** What start answers. */
  reachable = true;
  attach(events: CanLinkEvents, _reactor: HostReactor): void {
    this.events = events;
  }
  start(): boolean {
    this.stats.starts++;
    return this.reachable;
  }
  stop(): void {
    this.stats.stops++;
  }
  send(f: CanFrame): 'ok' | 'busy' | 'refused' {
    if (this.answer === 'ok') this.sent.push(f);
    return this.answer;
  }
  detach(): void {
    this.events = undefined;
  }
}

const le16 = (n: number) => [n & 0xff, (n >>> 8) & 0xff];
const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** virtio_can_tx_out: msg_type, length, reserved_classic_dlc, padding, reserved_xl_priority, flags, can_id, sdu. */
export function txOut(f: { msgType?: number; length?: number; flags?: number; id: number; sdu?: number[] }): Uint8Array {
  const sdu = f.sdu ?? [];
  return Uint8Array.from([...le16(f.msgType ?? 0x0001), ...le16(f.length ?? sdu.length), 0, 0, ...le16(0), ...le32(f.flags ?? 0), ...le32(f.id), ...sdu]);
}

/** virtio_can_control_out. */
export function controlOut(msgType: number): Uint8Array {
  return Uint8Array.from(le16(msgType));
}
