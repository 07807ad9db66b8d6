// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu counters. JSON shape of `GpuDevice.metrics()`:
 *
 * ```json
 * { "device": "gpu",
 *   "commands": { "GET_DISPLAY_INFO": 1, "RESOURCE_CREATE_2D": 1, "TRANSFER_TO_HOST_2D": 312, ... },
 *   "errors": { "ERR_INVALID_PARAMETER": 0 },
 *   "badChains": 0,
 *   "resources": { "count": 1, "bytes": 3686400, "maxBytes": 268435456, "transfers": 312, "transferBytes": 1150000000 },
 *   "scanouts": [ { "id": 0, "width": 1280, "height": 720, "resourceId": 1, "frames": 312, "damagePixels": 287539200 } ],
 *   "cursor": { "updates": 0, "moves": 0, "errors": 0, "visible": false },
 *   "display": { "connected": true, "ready": true, "attached": 1, "messages": 320, "bytes": 1150003000,
 *                "droppedUpdates": 0, "offered": "0x3" },
 *   "snapshots": 2, "snapshotsReused": 9, "controlRequests": 3 }
 * ```
 *
 * - `commands`: control and cursor commands by name (unknown ones by hex code); `errors`: error
 *   responses by name; `badChains`: control chains without room for a response header.
 * - `resources`: live resources and their host bytes (`maxBytes` is the budget); `transfers` and
 *   `transferBytes`: TRANSFER_TO_HOST_2D done and the bytes they copied.
 * - `scanouts[].frames`: flushes that changed the scanout (the frame counter); `damagePixels`:
 *   pixels those flushes covered (the damage metric).
 * - `display`: QEMU's display socket: whether one is attached and negotiated, sockets received,
 *   messages and bytes sent, UPDATEs dropped while QEMU was not reading, the protocol features
 *   QEMU offered (hex).
 * - `snapshots`: PNG files written; `snapshotsReused`: snapshot requests answered with the file
 *   written before, because the scanout has not changed since (no SET_SCANOUT, flush or reset);
 *   `controlRequests`: control-socket requests answered.
 */
export type GpuMetrics = {
  device: 'gpu';
  commands: Record<string, number>;
  errors: Record<string, number>;
  badChains: number;
  resources: { count: number; bytes: number; maxBytes: number; transfers: number; transferBytes: number };
  scanouts: Array<{ id: number; width: number; height: number; resourceId: number; frames: number; damagePixels: number }>;
  cursor: { updates: number; moves: number; errors: number; visible: boolean };
  display: { connected: boolean; ready: boolean; attached: number; messages: number; bytes: number; droppedUpdates: number; offered: string | null };
  snapshots: number;
  snapshotsReused: number;
  controlRequests: number;
};
