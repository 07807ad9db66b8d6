// SPDX-License-Identifier: Apache-2.0
/**
 * The devices the conformance suite knows, derived from the device registry (each kind's
 * `conformance`): nothing to add here for a new device.
 * Does not own: the checks (devices/<name>/conformance.ts) or generic checks (checks/).
 */
import type { DeviceConformance } from '../device/conformance.js';
import { DEVICE_KINDS } from '../devices/registry.js';
import { ConformanceError } from './errors.js';

export const DEVICE_CONFORMANCE: Readonly<Record<string, DeviceConformance>> = Object.fromEntries(DEVICE_KINDS.map((k) => [k.name, k.conformance]));

/** @throws ConformanceError CONFORMANCE_UNKNOWN_DEVICE */
export function conformanceFor(device: string): DeviceConformance {
  const c = DEVICE_CONFORMANCE[device];
  if (c === undefined) throw new ConformanceError('CONFORMANCE_UNKNOWN_DEVICE', `no conformance checks for device '${device}'; known: ${Object.keys(DEVICE_CONFORMANCE).join(', ')}`);
  return c;
}
