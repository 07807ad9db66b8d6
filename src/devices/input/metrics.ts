// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-input counters. JSON shape of `InputDevice.metrics()`:
 *
 * ```json
 * { "device": "input", "type": "touch", "name": "AVP Virtio Touchscreen",
 *   "configWrites": 120, "eventsSent": 7, "framesQueued": 2, "framesDropped": 0, "badChains": 0,
 *   "statusEvents": 2, "steps": 1, "badSteps": 0, "pendingEvents": 0, "heldBuffers": 57,
 *   "leds": { "numlock": false, "capslock": false, "scrolllock": false },
 *   "recentStatus": [[17, 0, 0], [0, 0, 0]], "controlRequests": 3 }
 * ```
 *
 * - `configWrites`: select/subsel writes (QEMU sends one per guest byte write).
 * - `eventsSent`: events put in the driver's buffers; `framesQueued` / `framesDropped`: frames
 *   accepted / dropped whole because `maxPendingEvents` was reached; `pendingEvents`: waiting for
 *   buffers; `heldBuffers`: empty event buffers the driver posted.
 * - `badChains`: event or status buffers too small for one event (returned with used length 0).
 * - `statusEvents`: events the driver sent on the status queue; `leds`: the last LED state it
 *   set; `recentStatus`: the last 32 of them as [type, code, value].
 * - `steps` / `badSteps`: input steps done / refused (script and control socket).
 */
export type InputMetrics = {
  device: 'input';
  type: string;
  name: string;
  configWrites: number;
  eventsSent: number;
  framesQueued: number;
  framesDropped: number;
  badChains: number;
  statusEvents: number;
  steps: number;
  badSteps: number;
  pendingEvents: number;
  heldBuffers: number;
  leds: Record<string, boolean>;
  recentStatus: Array<[number, number, number]>;
  controlRequests: number;
};
