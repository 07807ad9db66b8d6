// SPDX-License-Identifier: Apache-2.0
/**
 * In-tree kernel modules that Debian's kernel config leaves out but AVP's guests need:
 * GPIO_VIRTIO (drivers/gpio/gpio-virtio.c) and I2C_VIRTIO (drivers/i2c/busses/i2c-virtio.c).
 * They are built at image-build time from Debian's own `linux-source-<series>` against the
 * `linux-headers-<release>` of exactly the guest kernel (CONFIG_MODVERSIONS: other headers give
 * modules the kernel refuses), with kbuild from `linux-kbuild-<version>`. No C is in this
 * repository; the drivers' source is Debian's. The kernel does not force module signatures
 * (MODULE_SIG_FORCE unset, no lockdown without EFI secure boot), so unsigned modules load.
 *
 * Owns: the module list, extracting the sources, the kbuild invocation, the cache
 * (`<cache>/extra-modules/<release>_<version>-<key>/*.ko`). Does not own: downloads (apt.ts),
 * where the .ko files go in the image or their load order (build.ts runs depmod over them).
 *
 * Cost: the first build reads the 150 MB source .deb (about 20 s of xz) and compiles two files
 * (2 s); later builds of the same kernel take the cached .ko files.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostToolFailedError, HostToolMissingError, ImageBuildError } from '../errors.js';
import { debDepends, ensureDeb, extractDeb, type DebPackage, type Progress } from './apt.js';
import { kernelBuildPackages } from './kernels.js';
import { publish, runTool, withSbin } from './tools.js';

/** A driver that Debian builds as `# CONFIG_… is not set`, built here from the Debian source. */
export interface ExtraModule {
  /** Module file name without .ko, as kbuild names it from the source file. */
  name: string;
  /** Path of the single source file in the kernel tree. */
  source: string;
}

export const EXTRA_MODULES: readonly ExtraModule[] = [
  { name: 'gpio-virtio', source: 'drivers/gpio/gpio-virtio.c' },
  { name: 'i2c-virtio', source: 'drivers/i2c/busses/i2c-virtio.c' },
];

/** Bumped when the build recipe below changes in a way the key does not show. */
const RECIPE = 1;

export interface BuiltModule {
  name: string;
  file: string;
}

/** The key of a build: the kernel, the modules and the recipe. */
export function extraModulesKey(kernel: DebPackage, modules: readonly ExtraModule[]): string {
  return createHash('sha256').update(JSON.stringify({ RECIPE, kernel, modules })).digest('hex').slice(0, 16);
}

/**
 * Returns the built modules for `kernel` (a concrete Debian kernel package), building them when
 * the cache lacks them. The kernel release is the one `uname -r` prints (`6.12.117+deb12-amd64`).
 */
export async function ensureExtraModules(
  kernel: DebPackage,
  release: string,
  modules: readonly ExtraModule[],
  dirs: { cacheDir: string; debDir: string; tmpRoot: string },
  progress: Progress,
): Promise<BuiltModule[]> {
  if (modules.length === 0) return [];
  const pkgs = kernelBuildPackages(kernel);
  if (pkgs === undefined) throw new ImageBuildError(`cannot tell the headers and source packages of ${kernel.name}; extra modules need a concrete Debian kernel package`);
  const outDir = join(dirs.cacheDir, 'extra-modules', `${release}_${kernel.version.replaceAll(':', '%3a')}-${extraModulesKey(kernel, modules)}`);
  const cached = await readCached(outDir, modules);
  if (cached !== undefined) return cached;

  progress(`building ${modules.map((m) => m.name).join(' ')} for ${release} from ${pkgs.source.name} ${pkgs.source.version}`);
  const work = await mkdtemp(join(dirs.tmpRoot, 'extra-modules-'));
  try {
    const root = join(work, 'root');
    const headersDir = await unpackHeaders(pkgs.headers, release, root, dirs.debDir, progress);
    const src = join(work, 'src');
    await extractSources(await ensureDeb(dirs.debDir, pkgs.source, progress), pkgs.source.name, modules, src);
    await writeFile(join(src, 'Kbuild'), `obj-m := ${modules.map((m) => `${m.name}.o`).join(' ')}\n`);
    await kbuild(headersDir, src);
    // The headers' .config has DEBUG_INFO: strip it (450 KB → 30 KB a module) as Debian does.
    for (const m of modules) await runTool('strip', ['--strip-debug', join(src, `${m.name}.ko`)]);
    await publish(outDir, work, async (dir) => {
      for (const m of modules) await copyFile(join(src, `${m.name}.ko`), join(dir, `${m.name}.ko`));
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const built = await readCached(outDir, modules);
  if (built === undefined) throw new ImageBuildError(`extra modules missing from ${outDir} after the build`);
  return built;
}

async function readCached(outDir: string, modules: readonly ExtraModule[]): Promise<BuiltModule[] | undefined> {
  const names = await readdir(outDir).catch((): string[] => []); // absent: not built yet
  if (!modules.every((m) => names.includes(`${m.name}.ko`))) return undefined;
  return modules.map((m) => ({ name: m.name, file: join(outDir, `${m.name}.ko`) }));
}

/**
 * Unpacks linux-headers-<release>, its -common headers and linux-kbuild (named by its Depends, all
 * at the same version) into `root`, and points the headers' Makefile at the unpacked -common tree
 * (Debian's says `include /usr/src/linux-headers-…-common/Makefile`, an absolute path; the rest of
 * its links are relative). Returns the folder to run make in.
 */
async function unpackHeaders(headers: DebPackage, release: string, root: string, debDir: string, progress: Progress): Promise<string> {
  const deb = await ensureDeb(debDir, headers, progress);
  const companions = (await debDepends(deb)).filter((n) => /^linux-(headers|kbuild)-/.test(n));
  await mkdir(root, { recursive: true });
  await extractDeb(deb, root);
  for (const name of companions) await extractDeb(await ensureDeb(debDir, { name, version: headers.version }, progress), root);
  const dir = join(root, 'usr', 'src', `linux-headers-${release}`);
  const makefile = join(dir, 'Makefile');
  const text = await readFile(makefile, 'utf8').catch((e: unknown) => {
    throw new ImageBuildError(`${headers.name} has no usr/src/linux-headers-${release}/Makefile`, { cause: e });
  });
  await writeFile(makefile, text.replace(/^include \/usr\/src\//m, `include ${join(root, 'usr', 'src')}/`));
  return dir;
}

/**
 * Takes the modules' .c files out of the kernel source tarball in the linux-source package
 * (usr/src/linux-source-<series>.tar.xz) into `dest`. tar reads the whole xz stream either way;
 * the package is unpacked to a scratch folder first rather than piped through a shell.
 */
async function extractSources(deb: string, sourcePackage: string, modules: readonly ExtraModule[], dest: string): Promise<void> {
  const unpacked = `${dest}.deb`;
  await mkdir(unpacked, { recursive: true });
  await mkdir(dest, { recursive: true });
  try {
    await extractDeb(deb, unpacked);
    const tarball = join(unpacked, 'usr', 'src', `${sourcePackage}.tar.xz`);
    const top = sourcePackage; // the tarball's top folder is linux-source-<series>
    await runTool('tar', ['-xJf', tarball, '-C', dest, '--strip-components', String(stripDepth(top)), ...modules.map((m) => `${top}/${m.source}`)]);
    for (const m of modules) {
      // Flatten: kbuild builds every obj-m from the folder of the Kbuild file.
      const from = join(dest, m.source);
      const to = join(dest, `${m.name}.c`);
      if (from !== to) await rename(from, to);
    }
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}

function stripDepth(top: string): number {
  return top.split('/').length;
}

/**
 * `make -C <headers> M=<src> modules`. BTF for modules is turned off: it needs pahole, which a
 * CI machine lacks, and no AVP guest uses BTF. The compiler is the one the kernel names
 * (x86_64-linux-gnu-gcc-12, Debian 12's gcc), from the headers' .kernelvariables.
 */
async function kbuild(headersDir: string, src: string): Promise<void> {
  const args = ['-s', '-C', headersDir, `M=${src}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', 'modules'];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('make', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: withSbin(process.env['PATH']) } });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new HostToolMissingError('make', 'make', { cause: e }) : e);
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const detail = signal === null ? `exit status ${String(code)}` : `killed by ${signal}`;
        const log = Buffer.concat(out).toString('utf8');
        const hint = /gcc-12: (not found|No such file)/.test(log) ? ' (install gcc-12: bash scripts/setup.sh)' : '';
        reject(new HostToolFailedError('make', args, `${detail}${hint}`, log));
      }
    });
  });
}

/** Copies each built module into the unpacked kernel's `lib/modules/<release>/extra/` for depmod. */
export async function placeForDepmod(modulesDir: string, built: readonly BuiltModule[]): Promise<void> {
  const extra = join(modulesDir, 'extra');
  await mkdir(extra, { recursive: true });
  for (const m of built) await copyFile(m.file, join(extra, `${m.name}.ko`));
}
