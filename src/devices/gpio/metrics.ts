// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpio counters. JSON shape of `GpioDevice.metrics()`:
 *
 * ```json
 * { "device": "gpio", "requests": 40, "errors": 1, "malformed": 0, "interrupts": 2,
 *   "invalidated": 1, "levelChanges": 3, "guestChanges": 4, "controlClients": 1,
 *   "rejectedChains": 0, "notifications": 44,
 *   "lines": { "door": { "direction": "in", "value": 1, "level": 1 }, "3": { ... } } }
 * ```
 *
 * - `requests`: requestq chains served; `errors`: answered VIRTIO_GPIO_STATUS_ERR; `malformed`:
 *   chains too short to answer (used length 0), on either queue.
 * - `interrupts`: eventq buffers returned VALID; `invalidated`: returned INVALID (interrupt
 *   disabled, not enabled, duplicate pair, no such line).
 * - `levelChanges`: external level changes (control socket, trace, script); `guestChanges`:
 *   direction or output changes the guest made.
 * - `lines`: every line by name (by number when unnamed): direction, the value the guest reads,
 *   the external level.
 */
export type GpioMetrics = {
  device: 'gpio';
  requests: number;
  errors: number;
  malformed: number;
  interrupts: number;
  invalidated: number;
  levelChanges: number;
  guestChanges: number;
  controlClients: number;
  rejectedChains: number;
  notifications: number;
  lines: Record<string, { direction: string; value: number; level: number }>;
};
