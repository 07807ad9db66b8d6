// SPDX-License-Identifier: Apache-2.0
/**
 * Debian 12's own QEMU 7.2, unpacked into the cache beside the installed QEMU 10.0, so that "QEMU
 * 7.2 keeps working" (rng, blk, net, vsock, with its quirks) is tested on a machine that has 10.0
 * system-wide. Nothing is installed: the 7.2 qemu-system-x86, -common and -data packages are
 * downloaded and unpacked (apt.ts), and a wrapper script runs the binary with its own data and
 * module folders (QEMU refuses the installed 10.0's modules: "could not load module for type
 * 'tcg-accel-ops'").
 * Point AVP at it with `AVP_QEMU=<path>` (or QemuVmOptions.binary).
 *
 * Owns: choosing the 7.2 versions (the newest 7.x that apt knows), the cache layout
 * `<cache>/qemu/<version>/{root/,qemu-system-x86_64}`, the wrapper. Does not own: downloads and
 * unpacking (apt.ts), probing (qemu-caps.ts).
 *
 * Run-time libraries: the 7.2 binary links only libraries that QEMU 10.0's packages also pull in
 * (checked with ldd on Debian 12), so none are unpacked; probing fails loudly if one is missing.
 * Firmware: SeaBIOS comes from the installed seabios package (QEMU 10.0 depends on it); 7.2's data
 * folder does not have it, so /usr/share/seabios is a second -L folder.
 */
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultCacheDir } from './image/build.js';
import { ensureDeb, extractDeb, newestCachedDeb, type DebPackage, type Progress } from './image/apt.js';
import { runTool } from './image/tools.js';
import { ImageBuildError } from './errors.js';
import { probeQemu, type QemuCaps } from './qemu-caps.js';

/**
 * The packages of a QEMU system emulator: the binary, its loadable modules (qemu-system-common has
 * accel-tcg-x86_64.so: TCG itself is a module in Debian) and its firmware/keymap data.
 */
const PACKAGES = ['qemu-system-x86', 'qemu-system-common', 'qemu-system-data'] as const;

/** `apt-cache madison` lines: ` name | version | source`. The newest version comes first. */
export function newestVersionOf(madison: string, major: number): string | undefined {
  for (const line of madison.split('\n')) {
    const version = line.split('|')[1]?.trim();
    if (version !== undefined && new RegExp(`^(\\d+:)?${major}\\.`).test(version)) return version;
  }
  return undefined;
}

async function resolveMajor(name: string, major: number, debDir: string): Promise<DebPackage & { deb?: string }> {
  try {
    const { stdout } = await runTool('apt-cache', ['madison', name]);
    const version = newestVersionOf(stdout.toString('utf8'), major);
    if (version !== undefined) return { name, version };
  } catch {
    // offline or no apt: fall back to the cache below
  }
  const cached = await newestCachedDeb(debDir, (n) => n === name);
  if (cached !== undefined && new RegExp(`^(\\d+:)?${major}\\.`).test(cached.pkg.version)) return { ...cached.pkg, deb: cached.path };
  throw new ImageBuildError(`apt knows no ${name} ${major}.x (Debian 12's bookworm suite has 7.2); run apt-get update`);
}

/**
 * Returns the path of a `qemu-system-x86_64` wrapper for Debian 12's QEMU 7.2, unpacking it into
 * the cache the first time, and its probed capabilities.
 */
export async function ensureDebianQemu72(options: { cacheDir?: string; onProgress?: Progress } = {}): Promise<{ binary: string; caps: QemuCaps }> {
  const progress = options.onProgress ?? (() => {});
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const debDir = join(cacheDir, 'debs');
  await mkdir(debDir, { recursive: true });
  const pkgs = await Promise.all(PACKAGES.map((p) => resolveMajor(p, 7, debDir)));
  // The binary package's version names the folder (the data package's lacks the binNMU suffix).
  const main = pkgs[0] as DebPackage; // PACKAGES has two entries
  const dir = join(cacheDir, 'qemu', main.version.replaceAll(':', '%3a'));
  const wrapper = join(dir, 'qemu-system-x86_64');
  try {
    return { binary: wrapper, caps: probeQemu(wrapper) };
  } catch {
    // not unpacked yet (or damaged): unpack below
  }
  progress(`unpacking QEMU ${main.version} into ${dir}`);
  await mkdir(join(cacheDir, 'qemu'), { recursive: true });
  const staging = await mkdtemp(join(cacheDir, 'qemu', '.unpack-'));
  try {
    const root = join(staging, 'root');
    await mkdir(root);
    for (const p of pkgs) await extractDeb(p.deb ?? (await ensureDeb(debDir, p, progress)), root);
    // -L and QEMU_MODULE_DIR: 7.2's own firmware, keymaps and modules rather than the installed
    // 10.0's; exec keeps the pid, so signals reach QEMU itself.
    const finalRoot = join(dir, 'root');
    await writeFile(
      join(staging, 'qemu-system-x86_64'),
      `#!/bin/sh\n# Debian 12's QEMU ${main.version}, unpacked by AVP (src/platform/qemu-legacy.ts).\nQEMU_MODULE_DIR="${finalRoot}/usr/lib/x86_64-linux-gnu/qemu" exec "${finalRoot}/usr/bin/qemu-system-x86_64" -L "${finalRoot}/usr/share/qemu" -L /usr/share/seabios "$@"\n`,
    );
    await chmod(join(staging, 'qemu-system-x86_64'), 0o755);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { binary: wrapper, caps: probeQemu(wrapper) };
}
