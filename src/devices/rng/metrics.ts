// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rng counters. JSON shape of `RngDevice.metrics()`:
 *
 * ```json
 * { "device": "rng", "requests": 12, "bytes": 768, "emptyRequests": 0, "cappedRequests": 0,
 *   "rejectedChains": 0, "notifications": 12, "suppressedNotifications": 0 }
 * ```
 *
 * - `requests`: valid chains served; `bytes`: random bytes written into guest memory.
 * - `emptyRequests`: chains with no device-writable byte (nothing can be placed; used length 0).
 * - `cappedRequests`: chains whose writable part exceeded the per-request cap.
 * - `rejectedChains`: malformed chains the queue returned with length 0.
 * - `notifications` / `suppressedNotifications`: used-buffer notifications sent / suppressed by the driver.
 * Queue-level counters (`rejectedChains`, notifications) cover the queue since it last started.
 */
export type RngMetrics = {
  device: 'rng';
  requests: number;
  bytes: number;
  emptyRequests: number;
  cappedRequests: number;
  rejectedChains: number;
  notifications: number;
  suppressedNotifications: number;
};
