// SPDX-License-Identifier: Apache-2.0
/**
 * The check catalog: generic protocol, queue and hostile checks plus each device's own checks,
 * and selecting checks by ID, ID prefix or group (`--only`, `--skip`).
 *
 * Owns: assembling the catalog for a device, the rule that check IDs are unique, and filters.
 * Does not own: the checks (checks/, devices/<name>/conformance.ts), running them (runner.ts).
 */
import type { CheckInfo, DeviceCheck, DeviceConformance } from '../device/conformance.js';
import { type Check, driverCheck } from './check.js';
import { FRONTEND_ABUSE_CHECKS } from './checks/frontend-abuse.js';
import { HOSTILE_CHECKS } from './checks/hostile.js';
import { PACKED_CHECKS } from './checks/packed.js';
import { PROTOCOL_CHECKS } from './checks/protocol.js';
import { QUEUE_CHECKS } from './checks/queue.js';
import { DEVICE_CONFORMANCE } from './devices.js';
import { ConformanceError } from './errors.js';

/** Generic checks, in run order: protocol (with the hostile front-end's), queue, hostile. */
export const GENERIC_CHECKS: readonly Check[] = [...PROTOCOL_CHECKS, ...FRONTEND_ABUSE_CHECKS, ...QUEUE_CHECKS, ...HOSTILE_CHECKS, ...PACKED_CHECKS];

/** A device check as a catalog check: its body gets a fresh connection and starts it itself. */
export function fromDeviceCheck(check: DeviceCheck): Check {
  return driverCheck({ ...check, setup: 'connected', run: (d) => check.run(d) });
}

/** True when `check` applies to device `name`. */
export function appliesTo(check: CheckInfo, name: string): boolean {
  return check.devices === 'all' || check.devices.includes(name);
}

/** Every check that applies to `device`, in run order. */
export function catalogFor(device: DeviceConformance): Check[] {
  return [...GENERIC_CHECKS, ...device.checks.map(fromDeviceCheck)].filter((c) => appliesTo(c, device.device));
}

/** Every check of every device (for listings and filter validation). */
export function fullCatalog(): Check[] {
  const seen = new Set<string>();
  const out: Check[] = [];
  for (const c of [...GENERIC_CHECKS, ...Object.values(DEVICE_CONFORMANCE).flatMap((d) => d.checks.map(fromDeviceCheck))]) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    out.push(c);
  }
  return out;
}

/** True when `pattern` selects `check`: its exact ID, a prefix of its ID, or its group. */
export function matches(check: CheckInfo, pattern: string): boolean {
  return check.id === pattern || check.id.startsWith(pattern) || check.group === pattern;
}

export interface CheckFilter {
  /** Keep only checks matching one of these (empty: all). */
  readonly only?: readonly string[];
  /** Then drop checks matching one of these. */
  readonly skip?: readonly string[];
}

/**
 * Applies `--only` and `--skip`. A pattern that matches no check of the full catalog is a typo.
 * @throws ConformanceError CONFORMANCE_BAD_FILTER for such a pattern, or when nothing is left.
 */
export function selectChecks(checks: readonly Check[], filter: CheckFilter): Check[] {
  const all = fullCatalog();
  for (const p of [...(filter.only ?? []), ...(filter.skip ?? [])]) {
    if (!all.some((c) => matches(c, p))) throw new ConformanceError('CONFORMANCE_BAD_FILTER', `'${p}' matches no check ID, ID prefix or group (groups: protocol, queue, hostile, device)`);
  }
  const only = filter.only ?? [];
  const skip = filter.skip ?? [];
  const picked = checks.filter((c) => (only.length === 0 || only.some((p) => matches(c, p))) && !skip.some((p) => matches(c, p)));
  if (picked.length === 0) throw new ConformanceError('CONFORMANCE_BAD_FILTER', 'the filters leave no check to run');
  return picked;
}
