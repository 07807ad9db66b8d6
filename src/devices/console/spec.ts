// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-console constants and wire layouts, VIRTIO 1.3 §5.3 "Console Device", spelled as in the spec.
 *
 * Device ID 3. Queues: 0 receiveq(port 0), 1 transmitq(port 0), 2 control receiveq, 3 control
 * transmitq, then 4/5 for port 1, 6/7 for port 2, ... (§5.3.2; beyond 0-1 only with MULTIPORT).
 * Config `{ cols u16, rows u16, max_nr_ports u32, emerg_wr u32 }` (§5.3.4). Control message
 * `{ id u32, event u16, value u16 }` (§5.3.6.2). Does not own: any behaviour.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const CONSOLE_DEVICE_ID = VIRTIO_ID.CONSOLE;
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
export const VIRTIO_CONSOLE_CONFIG_SIZE = 12;
/** Offset of `emerg_wr` in the config space. */
export const VIRTIO_CONSOLE_EMERG_WR_OFFSET = 8;

export const CONSOLE_CONTROL_RX = 2;
export const CONSOLE_CONTROL_TX = 3;
export const CONSOLE_QUEUE_MAX_SIZE = 256;
/** Linux's VIRTCONS_MAX_PORTS is 0x8000; AVP serves far fewer, each bound to a host endpoint. */
export const CONSOLE_MAX_PORTS = 31;

/* Control events (§5.3.6.2). */
export const VIRTIO_CONSOLE_DEVICE_READY = 0;
export const VIRTIO_CONSOLE_DEVICE_ADD = 1;
export const VIRTIO_CONSOLE_DEVICE_REMOVE = 2;
export const VIRTIO_CONSOLE_PORT_READY = 3;
export const VIRTIO_CONSOLE_CONSOLE_PORT = 4;
export const VIRTIO_CONSOLE_RESIZE = 5;
export const VIRTIO_CONSOLE_PORT_OPEN = 6;
export const VIRTIO_CONSOLE_PORT_NAME = 7;
export const VIRTIO_CONSOLE_CONTROL_SIZE = 8;

/** Receive queue of port `p`. */
export function portRxQueue(p: number): number {
  return p === 0 ? 0 : 2 + 2 * p;
}
/** Transmit queue of port `p`. */
export function portTxQueue(p: number): number {
  return p === 0 ? 1 : 3 + 2 * p;
}
/** The port a data queue belongs to, or undefined for the control queues. */
export function queuePort(index: number): { port: number; tx: boolean } | undefined {
  if (index === CONSOLE_CONTROL_RX || index === CONSOLE_CONTROL_TX) return undefined;
  if (index < 2) return { port: 0, tx: index === 1 };
  return { port: Math.floor((index - 2) / 2), tx: index % 2 === 1 };
}
