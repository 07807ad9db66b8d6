// SPDX-License-Identifier: Apache-2.0
/**
 * Refuses, at validate and run time, a device whose QEMU front-end the detected QEMU cannot
 * attach (for example vhost-user-input on QEMU 7.2 under TCG), with the reason and the fix.
 *
 * Owns: the check over a parsed manifest, from each device kind's declared front-end
 * (`frontend.qemuDevice` and `frontend.minQemu`, the device registry). A kind whose minQemu is
 * 99.0 or more has no front-end in any QEMU release (console, can): it is refused with that said,
 * since no QEMU upgrade helps. Does not own: the rules per QEMU device (qemu-caps.ts `canAttach`).
 */
import { findKind } from '../../devices/registry.js';
import { compareVersions } from '../attach.js';
import { canAttach, formatVersion, type QemuCaps } from '../qemu-caps.js';
import type { Accel } from '../qemu.js';
import type { RawIssue } from './checks.js';
import type { PlatformManifest } from './schema.js';

/** A kind's minQemu at or above this means no QEMU release has its front-end. */
const NO_RELEASE = '99.0';

/** The QEMU the platform will run on, and the accelerator its guests get. */
export interface FrontendContext {
  caps: QemuCaps;
  accel: Accel;
  /** The QEMU device of a kind; default: the kind's `frontend.qemuDevice`. */
  qemuDeviceOf?: (kind: string) => string | undefined;
}

/** One issue per device this QEMU cannot attach, at the device's `kind`. */
export function checkFrontends(m: PlatformManifest, ctx: FrontendContext): RawIssue[] {
  const deviceOf = ctx.qemuDeviceOf ?? ((k: string) => findKind(k)?.frontend.qemuDevice);
  const issues: RawIssue[] = [];
  m.vms.forEach((vm, i) => {
    vm.devices.forEach((d, j) => {
      const at = ['vms', i, 'devices', j, 'kind'];
      const min = findKind(d.kind)?.frontend.minQemu;
      if (min !== undefined && compareVersions(min, NO_RELEASE) >= 0) {
        issues.push({ path: at, message: `${d.kind}: no QEMU release has a vhost-user front-end for it yet (QEMU ${formatVersion(ctx.caps.version)} is installed); serve it with avp serve ${d.kind} and check it with avp conformance --device ${d.kind}` });
        return;
      }
      const qemuDevice = deviceOf(d.kind);
      if (qemuDevice === undefined) return;
      const v = canAttach(ctx.caps, qemuDevice, ctx.accel);
      if (!v.ok) issues.push({ path: at, message: `${d.kind}: ${v.reason}; fix: ${v.fix}` });
    });
  });
  return issues;
}
