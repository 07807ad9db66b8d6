// SPDX-License-Identifier: Apache-2.0
/**
 * Refuses, at validate and run time, a device whose QEMU front-end the detected QEMU cannot
 * attach (for example vhost-user-input on QEMU 7.2 under TCG), with the reason and the fix.
 *
 * Owns: the check over a parsed manifest and, until each device kind declares its
 * `frontend.qemuDevice` (the device registry), the QEMU device of each existing manifest kind.
 * Does not own: the rules (qemu-caps.ts `canAttach`, keyed by QEMU device name).
 */
import { canAttach, type QemuCaps } from '../qemu-caps.js';
import type { Accel } from '../qemu.js';
import type { RawIssue } from './checks.js';
import type { ManifestDeviceKind, PlatformManifest } from './schema.js';

/** The `-device` each manifest kind attaches (qemu.ts spells the argv). */
export const KIND_QEMU_DEVICE: Readonly<Record<ManifestDeviceKind, string>> = {
  rng: 'vhost-user-rng-pci',
  blk: 'vhost-user-blk-pci',
  // -netdev vhost-user behind QEMU's own virtio-net-pci
  net: 'virtio-net-pci',
  vsock: 'vhost-user-vsock-pci',
};

/** The QEMU the platform will run on, and the accelerator its guests get. */
export interface FrontendContext {
  caps: QemuCaps;
  accel: Accel;
  /** The QEMU device of a kind; default KIND_QEMU_DEVICE. */
  qemuDeviceOf?: (kind: string) => string | undefined;
}

/** One issue per device this QEMU cannot attach, at the device's `kind`. */
export function checkFrontends(m: PlatformManifest, ctx: FrontendContext): RawIssue[] {
  const deviceOf = ctx.qemuDeviceOf ?? ((k: string) => KIND_QEMU_DEVICE[k as ManifestDeviceKind]);
  const issues: RawIssue[] = [];
  m.vms.forEach((vm, i) => {
    vm.devices.forEach((d, j) => {
      const qemuDevice = deviceOf(d.kind);
      if (qemuDevice === undefined) return;
      const v = canAttach(ctx.caps, qemuDevice, ctx.accel);
      if (!v.ok) issues.push({ path: ['vms', i, 'devices', j, 'kind'], message: `${d.kind}: ${v.reason}; fix: ${v.fix}` });
    });
  });
  return issues;
}
