// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-i2c counters. JSON shape of `I2cDevice.metrics()`:
 *
 * ```json
 * { "device": "i2c", "requests": 30, "reads": 10, "writes": 12, "bytesRead": 20,
 *   "bytesWritten": 14, "nacks": 6, "refused": 1, "skipped": 1, "malformed": 0,
 *   "clientErrors": 0, "rejectedChains": 0, "notifications": 28,
 *   "devices": { "0x48": "lm75", "0x50": "24c02" } }
 * ```
 *
 * - `requests`: chains served; `reads`/`writes`: segments a device acknowledged, with their bytes.
 * - `nacks`: segments to an address no device answers (i2cdetect's probes count here).
 * - `refused`: reserved flags, M_RD against the buffer's direction, a segment over the cap;
 *   `skipped`: failed without running because the request before failed with FAIL_NEXT.
 * - `malformed`: chains without a header or a status byte (used length 0).
 * - `clientErrors`: a device's operation failed on the host (an EEPROM file write).
 * - `devices`: the bus, address → chip.
 */
export type I2cMetrics = {
  device: 'i2c';
  requests: number;
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  nacks: number;
  refused: number;
  skipped: number;
  malformed: number;
  clientErrors: number;
  rejectedChains: number;
  notifications: number;
  devices: Record<string, string>;
};
