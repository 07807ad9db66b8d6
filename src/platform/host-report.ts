// SPDX-License-Identifier: Apache-2.0
/**
 * What this host can run, for `avp doctor`: the QEMU (version, vhost-user front-ends), the
 * accelerator, qemu-storage-daemon, the cached guest image (kernel, which virtio drivers it
 * carries), per AVPS device whether both ends are there, and each missing piece with the command
 * that fixes it. Nothing is built or installed here; the image is read from the cache only.
 *
 * Owns: gathering and judging (a JSON-ready `HostReport`). Does not own: formatting (cli/commands/
 * doctor.ts), the front-end rules (qemu-caps.ts), the image build (image/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AvpError } from '../errors.js';
import { cachedKernelFits, defaultCacheDir } from './image/build.js';
import { DEFAULT_GUEST_KERNEL, kernelMetaPackage } from './image/kernels.js';
import { normalizeModuleName } from './image/modules.js';
import { findQemu, type Accel } from './qemu.js';
import { DEVICE_KINDS } from '../devices/registry.js';
import { QEMU_FIX, canAttach, formatVersion, probeQemu, vhostUserFrontends, type QemuCaps } from './qemu-caps.js';
import { declaredAccel } from './run/index.js';

/** An AVPS device: the QEMU front-end that attaches an AVP back-end, and the guest driver. */
interface AvpsDevice {
  device: string;
  /** `-device` name; undefined: QEMU has no vhost-user front-end for it (AVP's own front-end only). */
  qemuDevice?: string;
  /** Guest kernel module (or built-in driver) name. */
  driver?: string;
}

/**
 * AVPS devices AVP does not serve yet, per shared/reference/device-wave-2.md §1.5 and §11: SCMI
 * sensors have no QEMU front-end on x86 and no x86 guest driver (Linux binds SCMI through a
 * device tree, on Arm only). A kind in the registry replaces its row.
 */
const PLANNED_DEVICES: readonly AvpsDevice[] = [{ device: 'scmi' }];

/** Device → front-end → driver: the registry's kinds (their last guest module is the driver), then the planned ones. */
export const AVPS_DEVICES: readonly AvpsDevice[] = [
  ...DEVICE_KINDS.map((k) => ({ device: k.name, ...(k.frontend.minQemu === null ? {} : { qemuDevice: k.frontend.qemuDevice }), ...(k.guestModules.length === 0 ? {} : { driver: k.guestModules[k.guestModules.length - 1] as string }) })),
  ...PLANNED_DEVICES.filter((d) => !DEVICE_KINDS.some((k) => k.name === d.device)),
];

export interface DeviceReadiness {
  device: string;
  qemuDevice: string | null;
  /** Whether the QEMU can attach it here; the reason when not. */
  frontend: { ok: boolean; reason?: string };
  /** 'module' or 'builtin' in the cached image, 'absent', or 'unknown' without an image. */
  guestDriver: 'module' | 'builtin' | 'absent' | 'unknown' | 'none-exists';
}

export interface HostReport {
  qemu:
    | { installed: true; binary: string; version: string; versionText: string; vhostUserFrontends: string[] }
    | { installed: false; error: string };
  storageDaemon: { installed: boolean; version?: string };
  accel: { accel: Accel; kvmDevice: boolean; note: string };
  image:
    | {
        found: true;
        dir: string;
        kernelVersion: string;
        kernelPackage: string;
        modules: string[];
        builtinModules: string[];
        extraModules: string[];
      }
    | { found: false; looked: string };
  devices: DeviceReadiness[];
  missing: Array<{ what: string; fix: string }>;
}

export interface HostReportOptions {
  env?: NodeJS.ProcessEnv;
  cacheDir?: string;
  kvmDevice?: string;
}

/** Gathers the report; never throws for a missing piece (that is what it reports). */
export async function hostReport(options: HostReportOptions = {}): Promise<HostReport> {
  const env = options.env ?? process.env;
  const missing: HostReport['missing'] = [];
  let caps: QemuCaps | undefined;
  let qemu: HostReport['qemu'];
  try {
    caps = probeQemu(findQemu(undefined, env), env);
    qemu = { installed: true, binary: caps.binary, version: formatVersion(caps.version), versionText: caps.versionText, vhostUserFrontends: vhostUserFrontends(caps) };
  } catch (e: unknown) {
    if (!(e instanceof AvpError)) throw e;
    qemu = { installed: false, error: e.message };
    missing.push({ what: 'QEMU (qemu-system-x86_64)', fix: QEMU_FIX });
  }

  const storageDaemon = toolVersion('qemu-storage-daemon', env);
  if (!storageDaemon.installed) missing.push({ what: 'qemu-storage-daemon (the vhost-user-blk peer)', fix: QEMU_FIX });

  const kvmDevice = existsSync(options.kvmDevice ?? '/dev/kvm');
  const accel = declaredAccel(env);
  const note =
    accel === 'kvm'
      ? 'AVP_ACCEL=kvm: guests run under KVM'
      : kvmDevice
        ? 'guests run under TCG (software emulation); /dev/kvm exists: AVP_ACCEL=auto tries it with a probe guest'
        : 'guests run under TCG (software emulation); no /dev/kvm';

  const cacheDir = options.cacheDir ?? defaultCacheDir(env);
  const image = await findImage(cacheDir);
  if (!image.found) missing.push({ what: `the guest image (Linux ${DEFAULT_GUEST_KERNEL})`, fix: 'npx avp image build' });

  const have = image.found ? new Set(image.modules.map(normalizeModuleName)) : new Set<string>();
  const builtin = image.found ? new Set(image.builtinModules.map(normalizeModuleName)) : new Set<string>();
  const devices = AVPS_DEVICES.map((d): DeviceReadiness => {
    let frontend: DeviceReadiness['frontend'];
    if (d.qemuDevice === undefined) frontend = { ok: false, reason: 'QEMU has no vhost-user front-end for it (AVP conformance front-end only)' };
    else if (caps === undefined) frontend = { ok: false, reason: 'no QEMU' };
    else {
      const v = canAttach(caps, d.qemuDevice, accel);
      frontend = v.ok ? { ok: true } : { ok: false, reason: v.reason };
      if (!v.ok) missing.push({ what: `${d.device}: ${v.reason}`, fix: v.fix });
    }
    let guestDriver: DeviceReadiness['guestDriver'] = 'unknown';
    if (d.driver === undefined) guestDriver = 'none-exists';
    else if (image.found) {
      const n = normalizeModuleName(d.driver);
      guestDriver = have.has(n) ? 'module' : builtin.has(n) ? 'builtin' : 'absent';
      if (guestDriver === 'absent') missing.push({ what: `${d.device}: the image's kernel ${image.kernelVersion} has no ${d.driver}`, fix: `npx avp image build --kernel ${DEFAULT_GUEST_KERNEL}` });
    }
    return { device: d.device, qemuDevice: d.qemuDevice ?? null, frontend, guestDriver };
  });
  return { qemu, storageDaemon, accel: { accel, kvmDevice, note }, image, devices, missing };
}

function toolVersion(tool: string, env: NodeJS.ProcessEnv): HostReport['storageDaemon'] {
  try {
    const out = execFileSync(tool, ['--version'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const m = /version (\S+)/.exec(out);
    return m ? { installed: true, version: m[1] as string } : { installed: true }; // group 1 is in every match
  } catch {
    return { installed: false };
  }
}

interface ImageJson {
  kernelVersion: string;
  kernelPackage: { name: string; version: string };
  modules: string[];
  builtinModules?: string[];
  extraModules?: string[];
  hasBakedScript?: boolean;
}

/**
 * The newest cached image of the default kernel series without a baked test script (the one
 * `avp run` uses), else the newest of that series.
 */
async function findImage(cacheDir: string): Promise<HostReport['image']> {
  const root = join(cacheDir, 'images');
  const meta = kernelMetaPackage(DEFAULT_GUEST_KERNEL);
  const found: Array<{ dir: string; json: ImageJson; mtime: number }> = [];
  for (const name of await readdir(root).catch((): string[] => [])) {
    const dir = join(root, name);
    try {
      const json = JSON.parse(await readFile(join(dir, 'image.json'), 'utf8')) as ImageJson; // written by image/build.ts
      if (!cachedKernelFits(meta, json.kernelPackage.name)) continue;
      found.push({ dir, json, mtime: (await stat(join(dir, 'image.json'))).mtimeMs });
    } catch {
      // half-written or foreign folder: not an image
    }
  }
  found.sort((a, b) => Number(a.json.hasBakedScript === true) - Number(b.json.hasBakedScript === true) || b.mtime - a.mtime);
  const best = found[0];
  if (best === undefined) return { found: false, looked: root };
  return {
    found: true,
    dir: best.dir,
    kernelVersion: best.json.kernelVersion,
    kernelPackage: `${best.json.kernelPackage.name}=${best.json.kernelPackage.version}`,
    modules: best.json.modules,
    builtinModules: best.json.builtinModules ?? [],
    extraModules: best.json.extraModules ?? [],
  };
}
