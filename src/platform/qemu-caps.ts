// SPDX-License-Identifier: Apache-2.0
/**
 * What the installed QEMU can do for AVP: its version, its device list (`-device help`), the
 * version-dependent quirks of the argv, and whether it can attach a given vhost-user front-end
 * under the chosen accelerator.
 *
 * Owns: probing a QEMU binary (two short runs, cached per binary), parsing their output, the
 * front-end rules keyed by QEMU device name (`canAttach(caps, 'vhost-user-input-pci', 'tcg')`),
 * Does not own: the argv or version quirks (qemu.ts; each kind's frontend.quirks, applied by attach.ts), nor which manifest
 * kind uses which QEMU device (each device kind declares its front-end; attach-check.ts maps the
 * existing kinds until it does).
 *
 * Facts behind the rules (shared/reference/device-wave-2.md §0-1, qemu-7.2-and-node-notes.md §5):
 * QEMU 7.2's vhost-user-input-pci and vhost-user-gpu-pci fail realize under TCG ("vhost
 * initialization failed: requires kvm"; the check was removed in 8.0); 7.2 has no
 * vhost-user-snd-pci; QEMU 10.0.2 (bookworm-backports) has both. QEMU 7.2 segfaults in
 * msix_set_vector_notifiers when a vhost-user virtio-net starts under TCG unless MSI-X is off
 * (`vectors=0`).
 */
import { execFileSync } from 'node:child_process';
import { QemuProbeError } from './errors.js';
import type { Accel } from './qemu.js';

export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
}

export interface QemuCaps {
  binary: string;
  version: QemuVersion;
  /** The first line of `-version`, e.g. `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)`. */
  versionText: string;
  /** Every device name of `-device help`. */
  devices: ReadonlySet<string>;
}

/** `QEMU emulator version 7.2.22 (Debian …)` → 7.2.22. */
export function parseQemuVersion(text: string): QemuVersion | undefined {
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  // Groups 1 and 2 take part in every match; 3 is optional.
  return m ? { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) } : undefined;
}

/** Device names from `-device help`: lines `name "vhost-user-blk-pci", bus PCI`. */
export function parseDeviceHelp(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^name "([^"]+)"/gm)) out.add(m[1] as string); // group 1 is in every match
  return out;
}

export function versionAtLeast(v: QemuVersion, major: number, minor = 0): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function formatVersion(v: QemuVersion): string {
  return `${v.major}.${v.minor}.${v.micro}`;
}

const probed = new Map<string, QemuCaps>();

/**
 * Runs `binary -version` and `binary -device help` (about 0.1 s each) and caches the result for
 * this process. Throws QemuProbeError when the binary does not run or prints no version.
 */
export function probeQemu(binary: string, env: NodeJS.ProcessEnv = process.env): QemuCaps {
  const hit = probed.get(binary);
  if (hit !== undefined) return hit;
  const run = (args: string[]): string => {
    try {
      return execFileSync(binary, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    } catch (e: unknown) {
      throw new QemuProbeError(binary, `${args.join(' ')} failed: ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)}`, { cause: e });
    }
  };
  const versionOut = run(['-version']);
  const version = parseQemuVersion(versionOut);
  if (version === undefined) throw new QemuProbeError(binary, `-version printed no version: ${JSON.stringify(versionOut.slice(0, 80))}`);
  const caps: QemuCaps = {
    binary,
    version,
    versionText: versionOut.split('\n')[0] ?? '',
    devices: parseDeviceHelp(run(['-device', 'help'])),
  };
  probed.set(binary, caps);
  return caps;
}

/** A front-end that needs more than being in the device list. */
interface FrontendRule {
  /** Under TCG, the least QEMU version whose front-end works, and why older ones fail. */
  tcg?: { since: [number, number]; why: string };
}

const KVM_GATE = {
  since: [8, 0] as [number, number],
  why: 'needs KVM in QEMU 7.2 ("vhost initialization failed: requires kvm", removed in QEMU 8.0), and guests here run under TCG',
};

/** Rules keyed by QEMU device name. A device without a rule only has to be in `-device help`. */
const FRONTEND_RULES: Readonly<Record<string, FrontendRule>> = {
  'vhost-user-input-pci': { tcg: KVM_GATE },
  'vhost-user-gpu-pci': { tcg: KVM_GATE },
  'vhost-user-vga': { tcg: KVM_GATE },
};

/** The command that installs a QEMU that has every front-end AVP uses. */
export const QEMU_FIX = 'bash scripts/setup.sh (installs QEMU 10.0 from bookworm-backports)';

export type AttachVerdict = { ok: true } | { ok: false; reason: string; fix: string };

/**
 * Whether this QEMU can attach the front-end `qemuDevice` (a `-device` name such as
 * `vhost-user-input-pci`) to a guest under `accel`. The reason names the QEMU and the device.
 */
export function canAttach(caps: QemuCaps, qemuDevice: string, accel: Accel): AttachVerdict {
  const qemu = `QEMU ${formatVersion(caps.version)}`;
  if (!caps.devices.has(qemuDevice)) {
    return { ok: false, reason: `${qemu} (${caps.binary}) has no ${qemuDevice} front-end`, fix: QEMU_FIX };
  }
  const tcg = FRONTEND_RULES[qemuDevice]?.tcg;
  if (accel === 'tcg' && tcg !== undefined && !versionAtLeast(caps.version, ...tcg.since)) {
    return { ok: false, reason: `${qemu}'s ${qemuDevice} ${tcg.why}`, fix: `${QEMU_FIX}, or run with KVM (AVP_ACCEL=kvm)` };
  }
  return { ok: true };
}

/** The vhost-user front-ends (and vhost-user-capable virtio-net) in a device list, sorted. */
export function vhostUserFrontends(caps: QemuCaps): string[] {
  return [...caps.devices].filter((d) => /^vhost-user-.*-pci$|^vhost-user-vga$/.test(d) && !/-(non-)?transitional$/.test(d)).sort();
}
