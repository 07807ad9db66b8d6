// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-console counters. JSON shape of `ConsoleDevice.metrics()`:
 *
 * ```json
 * { "device": "console", "ports": [ { "id": 0, "name": "console", "guestOpen": true,
 *   "txBytes": 120, "rxBytes": 0, "rxDropped": 0 } ], "control": { "in": 3, "out": 4, "bad": 0,
 *   "dropped": 0 }, "emergencyBytes": 0 }
 * ```
 *
 * - per port: bytes from the guest (`txBytes`) and to it (`rxBytes`), host bytes dropped because
 *   the guest did not take them (`rxDropped`), whether the guest has the port open.
 * - `control.in` / `out`: control messages from / to the driver; `bad`: ignored ones (short, an id
 *   that is no port, an unknown event); `dropped`: messages to the driver that did not fit its buffer.
 * - `emergencyBytes`: bytes written to `emerg_wr`.
 */
export type ConsoleMetrics = {
  device: 'console';
  ports: Array<{ id: number; name: string; guestOpen: boolean; txBytes: number; rxBytes: number; rxDropped: number }>;
  control: { in: number; out: number; bad: number; dropped: number };
  emergencyBytes: number;
};
