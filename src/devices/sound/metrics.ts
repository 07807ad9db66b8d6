// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-snd counters. JSON shape of `SoundDevice.metrics()`:
 *
 * ```json
 * { "device": "sound",
 *   "control": { "requests": 9, "badMessages": 0, "notSupported": 0 },
 *   "streams": [ { "id": 0, "direction": "output", "state": "running", "periods": 120,
 *                  "bytes": 460800, "buffers": 121, "xruns": 0, "badBuffers": 0, "pending": 4 } ],
 *   "badChains": 0, "events": { "held": 0 } }
 * ```
 *
 * - `control.requests`: control messages answered; `badMessages` / `notSupported`: answered with
 *   VIRTIO_SND_S_BAD_MSG / VIRTIO_SND_S_NOT_SUPP.
 * - per stream: `periods` of its clock, PCM `bytes` moved, I/O `buffers` queued, `xruns` (periods
 *   with no buffer pending: underruns for output, overruns for input), `badBuffers` (I/O refused
 *   with BAD_MSG), `pending` buffers now.
 * - `badChains`: chains too short to carry a status, returned with used length 0.
 * - `events.held`: event buffers the driver has posted.
 */
export type SoundStreamMetrics = {
  id: number;
  direction: 'output' | 'input';
  state: string;
  periods: number;
  bytes: number;
  buffers: number;
  xruns: number;
  badBuffers: number;
  pending: number;
};

export type SoundMetrics = {
  device: 'sound';
  control: { requests: number; badMessages: number; notSupported: number };
  streams: SoundStreamMetrics[];
  badChains: number;
  events: { held: number };
};
