// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can counters. JSON shape of `CanDevice.metrics()`:
 *
 * ```json
 * { "device": "can", "started": true, "busOff": false,
 *   "txOk": 120, "txNotOk": 2, "txInvalid": 1, "rxFrames": 118, "rxDropped": 0,
 *   "controlRequests": 3, "controlNotOk": 0, "busOffs": 0, "badChains": 0,
 *   "pendingTx": 0, "rxBacklog": 0,
 *   "link": { "connects": 1, "framesOut": 120, "framesIn": 118, ... } }
 * ```
 *
 * - `txOk` / `txNotOk`: transmissions completed with each result; `txInvalid`: those refused as
 *   malformed or not negotiated. `rxDropped`: frames from the bus the driver never got (no buffer
 *   and the backlog full, a buffer too small, a type not negotiated, the controller stopped).
 * - `pendingTx`: transmit buffers held while the bus link is busy; `rxBacklog`: frames waiting
 *   for a receive buffer. `link`: the bus link's own counters (host.ts, bus-link.ts).
 */
export type { CanCounters } from './model.js';
