// SPDX-License-Identifier: Apache-2.0
/**
 * Refuses, at validate and run time, a device whose QEMU front-end the detected QEMU cannot
 * attach (for example vhost-user-input on QEMU 7.2 under TCG), with the reason and the fix, and a
 * device no QEMU has a front-end for (its kind's `frontend.minQemu` is null).
 *
 * Owns: the check over a parsed manifest.
 * Does not own: the rules (qemu-caps.ts `canAttach`, keyed by QEMU device name), which device a
 * kind attaches (its `frontend`, devices/<name>/kind.ts).
 */
import { findKind } from '../../devices/registry.js';
import { canAttach, type QemuCaps } from '../qemu-caps.js';
import type { Accel } from '../qemu.js';
import type { RawIssue } from './checks.js';
import type { PlatformManifest } from './schema.js';

/** The QEMU the platform will run on, and the accelerator its guests get. */
export interface FrontendContext {
  caps: QemuCaps;
  accel: Accel;
  /** The QEMU device of a kind (null: no QEMU has one); default: the kind's `frontend`. */
  qemuDeviceOf?: (kind: string) => string | null | undefined;
}

/** A kind's QEMU device: its `frontend.qemuDevice`, null when no QEMU release has it. */
function registryQemuDevice(kind: string): string | null | undefined {
  const fe = findKind(kind)?.frontend;
  if (fe === undefined) return undefined;
  return fe.minQemu === null ? null : fe.qemuDevice;
}

/** One issue per device this QEMU cannot attach, at the device's `kind`. */
export function checkFrontends(m: PlatformManifest, ctx: FrontendContext): RawIssue[] {
  const deviceOf = ctx.qemuDeviceOf ?? registryQemuDevice;
  const issues: RawIssue[] = [];
  m.vms.forEach((vm, i) => {
    vm.devices.forEach((d, j) => {
      const qemuDevice = deviceOf(d.kind);
      if (qemuDevice === undefined) return;
      const path = ['vms', i, 'devices', j, 'kind'];
      if (qemuDevice === null) {
        issues.push({ path, message: `${d.kind}: no QEMU release has a vhost-user front-end for this device, so a VM cannot attach it; serve it to another VMM with avp serve ${d.kind}, and check it with avp conformance --device ${d.kind}` });
        return;
      }
      const v = canAttach(ctx.caps, qemuDevice, ctx.accel);
      if (!v.ok) issues.push({ path, message: `${d.kind}: ${v.reason}; fix: ${v.fix}` });
    });
  });
  return issues;
}
