// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-net switch counters. JSON shape of `NetPort.metrics()` (one switch port):
 *
 * ```json
 * { "device": "net", "port": "a", "index": 0, "mac": "52:54:00:00:00:01", "link": "up",
 *   "active": true, "priority": 0,
 *   "rx": { "frames": 10, "bytes": 980 }, "tx": { "frames": 12, "bytes": 1100 },
 *   "drops": { "noRxBuffers": 0, "oversize": 0, "rateLimit": 0, "linkDown": 0, "malformed": 0 },
 *   "shaping": { "policy": "backpressure", "bytesPerSec": 125000, "packetsPerSec": null,
 *                "burstBytes": 1514, "burstPackets": null, "throttled": 3 },
 *   "rejectedChains": 0, "notifications": 14, "suppressedNotifications": 2, "internalErrors": 0,
 *   "switch": { "name": "default", "clockMs": 81234.5, "mtu": 1500, "ports": 2,
 *               "macTable": { "entries": 2, "learned": 2, "moves": 0, "aged": 0, "full": 0 },
 *               "flooded": 3, "unknownUnicast": 1, "filtered": 0,
 *               "uplink": null } }
 * ```
 *
 * Directions are the VM's: `tx` = frames the VM sent that the switch took in (after the checks
 * below; `bytes` are Ethernet frame bytes without the virtio-net header, the unit rate limits are
 * in); `rx` = frames delivered into the VM's receive queue.
 * - `drops.malformed`: transmit chains too short for the 12-byte header plus an Ethernet header, or
 *   with a GSO type or NEEDS_CSUM (not offered: §5.1.6.2.1 "If VIRTIO_NET_F_CSUM is not negotiated,
 *   the driver MUST set flags to zero"; "If none of the ... TSO ... options have been negotiated, the
 *   driver MUST set gso_type to VIRTIO_NET_HDR_GSO_NONE"), or with a multicast or zero source MAC;
 *   and receive chains too small to carry even the header (returned with used length 0).
 * - `drops.oversize`: frames longer than MTU + 14 bytes, from the VM (or for the uplink, from the host).
 * - `drops.rateLimit`: frames dropped by the `drop` rate policy (always 0 under `backpressure`,
 *   where `shaping.throttled` counts the times the port was paused instead).
 * - `drops.linkDown`: frames from or to this port while its admin link is down, and frames to it
 *   while no driver runs it (VM not connected, or its receive queue not started).
 * - `drops.noRxBuffers`: frames for this port when its receive queue had no (large enough) buffers.
 * - `rejectedChains`, `notifications`, `suppressedNotifications`: both queues' counters, since each
 *   queue last started; `internalErrors`: frames abandoned on an unexpected exception (an AVP bug,
 *   logged). Other counters count since the switch started, across VM reconnects.
 * - `switch` (the same in every port's metrics): `clockMs` is the switch's monotonic clock (the one
 *   shaping uses; measure rates against it), `flooded` frames sent to every port (broadcast,
 *   multicast, unknown unicast), `unknownUnicast` of those, `filtered` frames whose destination was
 *   learned on the port they came from (not sent back), `uplink` the TAP's counters in the port
 *   shape (`tx` = frames read from the host, `rx` = frames written to it) or null.
 */
import type { MacTableStats } from './mac-table.js';
import type { RatePolicy } from './shaper.js';

export type NetTraffic = { frames: number; bytes: number };

export type NetDrops = {
  noRxBuffers: number;
  oversize: number;
  rateLimit: number;
  linkDown: number;
  malformed: number;
};

export type NetShapingMetrics = {
  policy: RatePolicy;
  bytesPerSec: number | null;
  packetsPerSec: number | null;
  burstBytes: number | null;
  burstPackets: number | null;
  throttled: number;
};

export type NetUplinkMetrics = {
  name: string;
  rx: NetTraffic;
  tx: NetTraffic;
  drops: NetDrops;
};

export type NetSwitchMetrics = {
  name: string;
  clockMs: number | null;
  mtu: number;
  ports: number;
  macTable: MacTableStats;
  flooded: number;
  unknownUnicast: number;
  filtered: number;
  uplink: NetUplinkMetrics | null;
};

export type NetPortMetrics = {
  device: 'net';
  port: string;
  index: number;
  mac: string;
  link: 'up' | 'down';
  active: boolean;
  priority: number;
  rx: NetTraffic;
  tx: NetTraffic;
  drops: NetDrops;
  shaping: NetShapingMetrics;
  rejectedChains: number;
  notifications: number;
  suppressedNotifications: number;
  internalErrors: number;
  switch: NetSwitchMetrics;
};

export function emptyDrops(): NetDrops {
  return { noRxBuffers: 0, oversize: 0, rateLimit: 0, linkDown: 0, malformed: 0 };
}
