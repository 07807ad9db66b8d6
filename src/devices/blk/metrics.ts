// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk counters. JSON shape of `BlkDevice.metrics()`:
 *
 * ```json
 * { "device": "blk", "queues": 1, "writeback": 1,
 *   "requests": { "in": 10, "out": 4, "flush": 2, "getId": 1, "discard": 1, "writeZeroes": 0, "other": 0 },
 *   "bytesRead": 40960, "bytesWritten": 16384, "flushes": 2,
 *   "discardSegments": 1, "writeZeroesSegments": 0,
 *   "errors": { "ioerr": 0, "unsupp": 0, "host": 0, "internal": 0 },
 *   "malformed": 0, "rejectedChains": 0, "notifications": 18, "suppressedNotifications": 0 }
 * ```
 *
 * - `queues`: request queues the device has; `writeback`: current cache mode (1 writeback, 0 writethrough).
 * - `requests`: chains that carried a whole header, by request type (`other`: any unknown type).
 * - `bytesRead` / `bytesWritten`: data moved by successful IN / OUT requests.
 * - `flushes`: host flushes (fdatasync) issued: FLUSH requests plus writethrough-mode writes.
 * - `discardSegments` / `writeZeroesSegments`: ranges handed to the host successfully.
 * - `errors.ioerr` / `errors.unsupp`: requests completed with VIRTIO_BLK_S_IOERR / VIRTIO_BLK_S_UNSUPP,
 *   whatever the cause; `errors.host`: host operations that threw (each also counts in `ioerr`);
 *   `errors.internal`: chains abandoned because of an unexpected exception (an AVP bug, logged).
 * - `malformed`: chains too short for a request (no 16-byte header, or no writable status byte);
 *   they complete with used length 0, or 1 with VIRTIO_BLK_S_IOERR when a status byte exists.
 * - `rejectedChains`: chains the queues returned with length 0 before the device saw them.
 * - `notifications` / `suppressedNotifications`: used-buffer notifications sent / suppressed.
 * Queue-level counters (`rejectedChains`, notifications) are summed over the started queues and
 * cover each queue since it last started; the others count since the device was created.
 */
export type BlkRequestCounts = {
  in: number;
  out: number;
  flush: number;
  getId: number;
  discard: number;
  writeZeroes: number;
  other: number;
};

export type BlkErrorCounts = {
  ioerr: number;
  unsupp: number;
  host: number;
  internal: number;
};

export type BlkMetrics = {
  device: 'blk';
  queues: number;
  writeback: number;
  requests: BlkRequestCounts;
  bytesRead: number;
  bytesWritten: number;
  flushes: number;
  discardSegments: number;
  writeZeroesSegments: number;
  errors: BlkErrorCounts;
  malformed: number;
  rejectedChains: number;
  notifications: number;
  suppressedNotifications: number;
};
