// SPDX-License-Identifier: Apache-2.0
/**
 * The devices the conformance suite knows: each device folder's `conformance.ts`, by name.
 * A new device adds its checks file and one line here.
 * Does not own: the checks (devices/<name>/conformance.ts) or generic checks (checks/).
 */
import type { DeviceConformance } from '../device/conformance.js';
import { blkConformance } from '../devices/blk/conformance.js';
import { netConformance } from '../devices/net/conformance.js';
import { rngConformance } from '../devices/rng/conformance.js';
import { vsockConformance } from '../devices/vsock/conformance.js';
import { ConformanceError } from './errors.js';

export const DEVICE_CONFORMANCE: Readonly<Record<string, DeviceConformance>> = {
  blk: blkConformance,
  net: netConformance,
  rng: rngConformance,
  vsock: vsockConformance,
};

/** @throws ConformanceError CONFORMANCE_UNKNOWN_DEVICE */
export function conformanceFor(device: string): DeviceConformance {
  const c = DEVICE_CONFORMANCE[device];
  if (c === undefined) throw new ConformanceError('CONFORMANCE_UNKNOWN_DEVICE', `no conformance checks for device '${device}'; known: ${Object.keys(DEVICE_CONFORMANCE).join(', ')}`);
  return c;
}
