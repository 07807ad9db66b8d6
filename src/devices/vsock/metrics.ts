// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-vsock counters. JSON shape of `VsockDevice.metrics()`:
 *
 * ```json
 * { "device": "vsock", "guestCid": 3,
 *   "connections": { "open": 2, "host": 1, "peer": 1, "total": 7, "hostInitiated": 3, "guestInitiated": 4 },
 *   "bytes": { "guestToHost": 1048576, "hostToGuest": 1048576, "guestToPeer": 0, "peerToGuest": 0 },
 *   "packets": { "tx": 300, "rx": 290 },
 *   "resets": { "noListener": 1, "unknownConnection": 0, "notAllowed": 1, "noRoute": 0, "malformed": 2,
 *               "creditViolation": 0, "protocol": 0, "tooManyConnections": 0, "hostError": 0, "timeout": 0,
 *               "peerGone": 0, "fromGuest": 3 },
 *   "malformed": { "shortHeader": 1, "badLength": 1, "tooLong": 0, "badSrcCid": 1, "badType": 0, "badOp": 0,
 *                  "rxBufferTooSmall": 0 },
 *   "creditStalls": 4, "creditUpdatesSent": 12, "creditRequestsSent": 1, "txStalls": 0,
 *   "pendingPackets": 0, "pendingBytes": 0, "handshakeErrors": 0, "events": 0,
 *   "rejectedChains": 0, "notifications": 40, "suppressedNotifications": 3 }
 * ```
 *
 * - `connections.open`: connections now in the table (`host`: to host Unix sockets; `peer`: to
 *   other guests of the group); `total`: connections ever established or requested through this
 *   device; `hostInitiated` / `guestInitiated` split `total` by who connected.
 * - `bytes`: stream payload moved: `guestToHost` written to host sockets, `hostToGuest` read from
 *   host sockets for the guest, `guestToPeer` / `peerToGuest` forwarded to / from other guests.
 * - `packets.tx` / `packets.rx`: packets taken from the tx queue / placed in the rx queue.
 * - `resets`: RST packets the device sent to the guest, by reason: `noListener` (no host socket at
 *   `<uds>_<port>`, or no `udsPath`), `unknownConnection` (a packet for no connection),
 *   `notAllowed` (a peer outside the allow-list, or one that does not allow this guest), `noRoute`
 *   (a CID that is neither the host nor a group member), `malformed` (see `malformed`),
 *   `creditViolation` (the guest sent more than the credit the device advertised),
 *   `protocol` (a packet that makes no sense in the connection's state), `tooManyConnections`,
 *   `hostError` (the host socket failed or went away), `timeout` (a host-initiated connection the
 *   guest never answered, or a close that never drained), `peerGone` (the peer guest's device
 *   reset); `fromGuest`: RST packets the guest sent.
 * - `malformed`: tx packets refused: `shortHeader` (fewer than 44 readable bytes: dropped, no RST,
 *   there is no address to answer), `badLength` (`len` beyond the readable bytes), `tooLong`
 *   (`len` above 64 KiB), `badSrcCid` (not the guest's CID), `badType` (not STREAM), `badOp`;
 *   `rxBufferTooSmall`: rx buffers too small for a header, returned empty.
 * - `creditStalls`: times a connection had host data but the guest had no free credit;
 *   `creditUpdatesSent` / `creditRequestsSent`: CREDIT_UPDATE / CREDIT_REQUEST packets sent;
 *   `txStalls`: times tx processing paused because the packets' destination had no room.
 * - `pendingPackets` / `pendingBytes`: packets waiting for rx buffers now.
 * - `handshakeErrors`: host clients of `<uds>` that sent no valid `CONNECT <port>` line.
 * - `events`: event-queue events delivered (TRANSPORT_RESET).
 * - `rejectedChains`, `notifications`, `suppressedNotifications`: summed over the three queues,
 *   since each last started.
 */
export type VsockResetCounts = {
  noListener: number;
  unknownConnection: number;
  notAllowed: number;
  noRoute: number;
  malformed: number;
  creditViolation: number;
  protocol: number;
  tooManyConnections: number;
  hostError: number;
  timeout: number;
  peerGone: number;
  fromGuest: number;
};

export type VsockResetReason = Exclude<keyof VsockResetCounts, 'fromGuest'>;

export type VsockMalformedCounts = {
  shortHeader: number;
  badLength: number;
  tooLong: number;
  badSrcCid: number;
  badType: number;
  badOp: number;
  rxBufferTooSmall: number;
};

export type VsockMetrics = {
  device: 'vsock';
  guestCid: number;
  connections: { open: number; host: number; peer: number; total: number; hostInitiated: number; guestInitiated: number };
  bytes: { guestToHost: number; hostToGuest: number; guestToPeer: number; peerToGuest: number };
  packets: { tx: number; rx: number };
  resets: VsockResetCounts;
  malformed: VsockMalformedCounts;
  creditStalls: number;
  creditUpdatesSent: number;
  creditRequestsSent: number;
  txStalls: number;
  pendingPackets: number;
  pendingBytes: number;
  handshakeErrors: number;
  events: number;
  rejectedChains: number;
  notifications: number;
  suppressedNotifications: number;
};

export function emptyResetCounts(): VsockResetCounts {
  return { noListener: 0, unknownConnection: 0, notAllowed: 0, noRoute: 0, malformed: 0, creditViolation: 0, protocol: 0, tooManyConnections: 0, hostError: 0, timeout: 0, peerGone: 0, fromGuest: 0 };
}

export function emptyMalformedCounts(): VsockMalformedCounts {
  return { shortHeader: 0, badLength: 0, tooLong: 0, badSrcCid: 0, badType: 0, badOp: 0, rxBufferTooSmall: 0 };
}

/**
 * The running counts behind `VsockDevice.metrics()`, shared by the parts of the device that bump
 * them (`model.ts`, `host-connections.ts`, `handshake.ts`); `metrics()` reports them under the names above.
 */
export type VsockCounters = {
  total: number;
  hostInitiated: number;
  guestInitiated: number;
  guestToHost: number;
  hostToGuest: number;
  guestToPeer: number;
  peerToGuest: number;
  tx: number;
  rx: number;
  creditStalls: number;
  creditUpdatesSent: number;
  creditRequestsSent: number;
  txStalls: number;
  handshakeErrors: number;
  events: number;
};

export function emptyVsockCounters(): VsockCounters {
  return {
    total: 0,
    hostInitiated: 0,
    guestInitiated: 0,
    guestToHost: 0,
    hostToGuest: 0,
    guestToPeer: 0,
    peerToGuest: 0,
    tx: 0,
    rx: 0,
    creditStalls: 0,
    creditUpdatesSent: 0,
    creditRequestsSent: 0,
    txStalls: 0,
    handshakeErrors: 0,
    events: 0,
  };
}
