// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto counters. JSON shape of `CryptoDevice.metrics()`:
 *
 * ```json
 * { "device": "crypto", "dataRequests": 40, "encrypted": 18, "decrypted": 18, "hashed": 0,
 *   "maced": 0, "bytes": 4096, "invalidSession": 1, "badMessages": 2, "notSupported": 1,
 *   "malformed": 0, "controlRequests": 0, "forwardedSessions": 12, "refusedSessions": 1,
 *   "sessions": 2, "sessionsCreated": 11, "sessionsClosed": 9, "rejectedChains": 0,
 *   "notifications": 40 }
 * ```
 *
 * - `dataRequests`: data-queue chains; `encrypted`/`decrypted`/`hashed`/`maced`: operations done,
 *   `bytes` their source bytes.
 * - `invalidSession` (INVSESS), `badMessages` (BADMSG), `notSupported` (NOTSUPP): refusals;
 *   `malformed`: chains without a writable byte (used length 0).
 * - `controlRequests`: control-queue chains; `forwardedSessions`: sessions the front-end created
 *   out of band (vhost-user CREATE_CRYPTO_SESSION); `refusedSessions`: creations refused either way.
 * - `sessions`: live now; `sessionsCreated`/`sessionsClosed`: since start.
 */
export type CryptoMetrics = {
  device: 'crypto';
  dataRequests: number;
  encrypted: number;
  decrypted: number;
  hashed: number;
  maced: number;
  bytes: number;
  invalidSession: number;
  badMessages: number;
  notSupported: number;
  malformed: number;
  controlRequests: number;
  forwardedSessions: number;
  refusedSessions: number;
  sessions: number;
  sessionsCreated: number;
  sessionsClosed: number;
  rejectedChains: number;
  notifications: number;
};
