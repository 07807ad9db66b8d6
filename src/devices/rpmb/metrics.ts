// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rpmb counters. JSON shape of `RpmbDevice.metrics()`:
 *
 * ```json
 * { "device": "rpmb", "requests": 9, "keyPrograms": 1, "writes": 3, "reads": 2, "counterReads": 3,
 *   "authFailures": 1, "counterFailures": 1, "otherFailures": 0, "malformed": 0, "writeCounter": 3,
 *   "keyProgrammed": true, "rejectedChains": 0, "notifications": 9 }
 * ```
 *
 * - `requests`: chains served; `keyPrograms`, `writes`, `reads`, `counterReads`: successful operations.
 * - `authFailures`: MAC mismatches (AUTH_FAILURE); `counterFailures`: replays and stale counters
 *   (COUNT_FAILURE); `otherFailures`: every other non-OK result.
 * - `malformed`: chains that are not whole frames, or have no room for a response.
 * - `writeCounter`, `keyProgrammed`: the partition's state.
 */
export type RpmbMetrics = {
  device: 'rpmb';
  requests: number;
  keyPrograms: number;
  writes: number;
  reads: number;
  counterReads: number;
  authFailures: number;
  counterFailures: number;
  otherFailures: number;
  malformed: number;
  writeCounter: number;
  keyProgrammed: boolean;
  rejectedChains: number;
  notifications: number;
};
