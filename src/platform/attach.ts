// SPDX-License-Identifier: Apache-2.0
/**
 * How a device of the registry attaches to a QEMU VM: its kind's front-end description
 * (DeviceKind.frontend) turned into the generic vhost-user `VmDevice` that qemuArgs spells.
 *
 * Owns: parsing the device options for the front-end's properties (defaults applied), version
 * quirks (properties a QEMU older than a version needs), and comparing QEMU versions.
 * Does not own: QEMU option syntax (qemu.ts), which options a device gets (plan.ts, the kinds).
 */
import { parseOptions } from '../devices/options.js';
import { kindOf } from '../devices/registry.js';
import type { VhostUserVmDevice } from './qemu.js';

/** The QEMU version assumed when none was detected: the oldest AVP supports (Debian 12's). */
export const OLDEST_QEMU = '7.2';

/** `7.2` < `10.0`: compares dotted version numbers numerically. Negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface AttachOptions {
  /** Seconds between QEMU's reconnect attempts (a back-end restarted on failure). */
  reconnect?: number;
  /** The QEMU that runs the VM (x.y); default OLDEST_QEMU, so every quirk applies. */
  qemuVersion?: string;
}

/**
 * The VM device for a back-end of kind `kind` at `socket`, serving a device with `options` (its
 * kind's options; only what the front-end's properties read matters).
 * @throws UnknownDeviceKindError; DeviceOptionError when the options are not the kind's.
 */
export function vhostUserDevice(kind: string, socket: string, options: Readonly<Record<string, unknown>> = {}, opts: AttachOptions = {}): VhostUserVmDevice {
  const k = kindOf(kind);
  const fe = k.frontend;
  const version = opts.qemuVersion ?? OLDEST_QEMU;
  // Parsed even when the front-end reads no option: a device QEMU is told about must be valid.
  const parsed = parseOptions(k, options);
  const props: Record<string, string | number> = { ...(fe.props?.(parsed) ?? {}) };
  for (const q of fe.quirks ?? []) if (compareVersions(version, q.below) < 0) Object.assign(props, q.props);
  return {
    kind: 'vhost-user',
    qemuDevice: fe.qemuDevice,
    socket,
    ...(Object.keys(props).length === 0 ? {} : { props }),
    ...(fe.netdev === true ? { netdev: true } : {}),
    ...(fe.object === undefined ? {} : { object: fe.object }),
    ...(opts.reconnect === undefined ? {} : { reconnect: opts.reconnect }),
  };
}
