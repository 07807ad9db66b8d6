// SPDX-License-Identifier: Apache-2.0
/**
 * `buildGuestImage()`: the guest kernel (vmlinuz) and initramfs (cpio.gz) AVP boots under QEMU,
 * made from Debian 12 packages without installing any of them, and cached. The kernel is Linux
 * 6.12 from bookworm-security by default (kernels.ts), with gpio-virtio and i2c-virtio built from
 * its Debian source (extra-modules.ts), and fio built from Debian's fio source (fio.ts).
 *
 * Owns: the build sequence, the image layout, the cache (folders, key, atomic publication).
 * Does not own: apt/dpkg details (apt.ts), module ordering (modules.ts), the guest scripts
 * (init.ts), the archive format (cpio.ts), nor booting (qemu.ts).
 *
 * Cache (`$AVP_CACHE_DIR`, else `<repo>/.cache/avp/`):
 *   debs/                      downloaded .deb files, kept across builds
 *   extra-modules/<kver>-…/    gpio-virtio.ko, i2c-virtio.ko built for one kernel (extra-modules.ts)
 *   fio/<version>-<key>/       fio built from Debian's source, stripped, and its build.json (fio.ts)
 *   images/<kver>-<key>/       vmlinuz, initramfs.cpio.gz, image.json
 *   resolved/<hash>.json       package versions resolved for an apt state (resolve-memo.ts), so a
 *                              cached image is found without running apt-cache
 *   tmp/                       scratch (the unpacked kernel package, about 400 MB, while building)
 * The key hashes the kernel package and version, the requested and the built modules, the baked
 * script, the generated scripts, the busybox binary, the guest tools' packages and the fio build key, so any change to them builds a new image and an
 * unchanged request is served from the cache at once.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { HostToolFailedError, HostToolMissingError, ImageBuildError } from '../errors.js';
import {
  ensureDeb,
  extractDeb,
  installedVersion,
  newestCachedDeb,
  resolveKernelPackage,
  resolvePackage,
  resolveWithSource,
  type DebPackage,
  type Progress,
} from './apt.js';
import { X86_CMDLINE_MAX_BYTES, bzImageCmdlineLimit } from './cmdline.js';
import { packNewc, type CpioEntry } from './cpio.js';
import { BAKED_SCRIPT_PATH, MODULES_DIR, MODULES_ORDER_PATH, renderHelpers, renderInit, renderModulesOrder } from './init.js';
import { DEFAULT_GUEST_TOOLS, resolveToolPackages, toolEntries, type GuestTool } from './guest-tools.js';
import { DEFAULT_GUEST_MODULES, readModuleFile, readModuleIndex, resolveLoadOrder } from './modules.js';
import { EXTRA_MODULES, ensureExtraModules, extraModulesKey, placeForDepmod, type BuiltModule, type ExtraModule } from './extra-modules.js';
import { DEFAULT_GUEST_KERNEL, isConcreteKernelPackage, kernelMetaPackage, type GuestKernel } from './kernels.js';
import { aptStateFingerprint, readMemo, writeMemo } from './resolve-memo.js';
import { FIO_GUEST_PATH, FIO_LIBRARY_PACKAGES, FIO_PACKAGE, ensureFio, fioBuildKey, newestCachedFio, poolDirOf, type BuiltFio, type FioSource } from './fio.js';
import { runTool } from './tools.js';

const gzipAsync = promisify(gzip);

/** Bumped when the image layout changes in a way the hashed inputs do not show. */
const IMAGE_FORMAT = 2;

export interface GuestImageOptions {
  /** Cache folder; default `$AVP_CACHE_DIR`, else `<repo>/.cache/avp`. */
  cacheDir?: string;
  /** Also copy the results to this folder as `vmlinuz` and `initramfs.cpio.gz`; the returned paths then point there. */
  outDir?: string;
  /** Kernel modules to load at boot (dependencies are added); default DEFAULT_GUEST_MODULES. */
  modules?: readonly string[];
  /** A shell script baked in as the default test (the kernel command line's avp.cmd= / avp.script= win over it). */
  script?: string;
  /** Kernel series (default 6.12); `kernelPackage` overrides it. */
  kernel?: GuestKernel;
  /** Debian package of the kernel: a meta package (`linux-image-6.12-amd64`) or a concrete `linux-image-6.12.117+deb12-amd64`. */
  kernelPackage?: string;
  /** In-tree modules to build from the kernel's Debian source; default EXTRA_MODULES for a 6.12 kernel, none for others. */
  extraModules?: readonly ExtraModule[];
  /** Debian programs to add with their shared libraries (default DEFAULT_GUEST_TOOLS: socat, for vsock). */
  tools?: readonly GuestTool[];
  /** Build fio from Debian's fio source and add it as /usr/bin/fio (default true). */
  fio?: boolean;
  /** Rebuild even when the cache has this image. */
  force?: boolean;
  /** Called with one line per build step. */
  onProgress?: Progress;
}

export interface GuestImage {
  /** The kernel (bzImage) for QEMU's -kernel. */
  kernel: string;
  /** The initramfs for QEMU's -initrd. */
  initramfs: string;
  /** The kernel release, as `uname -r` prints it in the guest. */
  kernelVersion: string;
  kernelPackage: DebPackage;
  /** Where busybox came from, for the record. */
  busybox: string;
  /** Modules /init loads, in load order. */
  modules: string[];
  /** Debian packages the guest tools (and their libraries) came from, `name=version`. */
  toolPackages: string[];
  /** fio in the image (`fio-3.33, from Debian source fio 3.33-3`), absent when left out. */
  fio?: string;
  /** Requested modules that the kernel has built in (nothing to load). */
  builtinModules: string[];
  /** Default modules this kernel does not have (6.1: virtio_snd, gpio-virtio, i2c-virtio). */
  absentModules: string[];
  /** Modules built from the Debian kernel source for this image. */
  extraModules: string[];
  /** The longest kernel command line this kernel takes, in bytes (from its bzImage header). */
  cmdlineLimit: number;
  kernelBytes: number;
  initramfsBytes: number;
  hasBakedScript: boolean;
  cacheKey: string;
  /** True when the image came from the cache without building. */
  fromCache: boolean;
}

/** The package root (`<repo>`): this file is `<repo>/{src,dist}/platform/image/build.*`. */
function packageRoot(): string {
  return fileURLToPath(new URL('../../../', import.meta.url));
}

/** `$AVP_CACHE_DIR`, else `<repo>/.cache/avp`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['AVP_CACHE_DIR'];
  return fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : join(packageRoot(), '.cache', 'avp');
}

/** Builds (or fetches from the cache) the guest kernel and initramfs. */
export async function buildGuestImage(options: GuestImageOptions = {}): Promise<GuestImage> {
  const started = Date.now();
  const progress: Progress = options.onProgress ?? (() => {});
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const debDir = join(cacheDir, 'debs');
  const tmpRoot = join(cacheDir, 'tmp');
  await mkdir(debDir, { recursive: true });
  await mkdir(tmpRoot, { recursive: true });
  await mkdir(join(cacheDir, 'images'), { recursive: true });
  await removeStaleScratch(tmpRoot);

  const requested = options.modules ?? DEFAULT_GUEST_MODULES;
  const kernelName = options.kernelPackage ?? kernelMetaPackage(options.kernel ?? DEFAULT_GUEST_KERNEL);
  const withFio = options.fio ?? true;
  // fio's libraries come from these packages, walked like any tool's (a tool with no programs).
  const tools = [...(options.tools ?? DEFAULT_GUEST_TOOLS), ...(withFio ? FIO_LIBRARY_PACKAGES.map((p) => ({ package: p, programs: [] })) : [])];
  const { kernel, toolPkgs, fio: fioSource } = await resolveInputs(cacheDir, kernelName, tools, withFio, debDir, progress);
  const extras = options.extraModules ?? defaultExtraModules(kernel.pkg);
  const busybox = await busyboxBinary(debDir, tmpRoot, progress);
  const fioKey = fioSource === undefined ? null : 'built' in fioSource ? fioSource.built.key : fioBuildKey(fioSource.source);
  const key = cacheKey(
    kernel.pkg,
    requested,
    options.script,
    busybox.data,
    { tools, packages: toolPkgs.map((p) => `${p.name}=${p.version}`) },
    extraModulesKey(kernel.pkg, extras),
    fioKey,
  );
  const imageDir = join(cacheDir, 'images', `${kernelRelease(kernel.pkg)}-${key}`);

  let image = options.force ? undefined : await readCachedImage(imageDir);
  if (image !== undefined) progress(`using cached image ${imageDir}`);
  else {
    // Downloaded only now: a cached image needs no .deb, which may have been deleted to save space.
    const deb = kernel.deb ?? (await ensureDeb(debDir, kernel.pkg, progress));
    const built = await ensureExtraModules(kernel.pkg, kernelRelease(kernel.pkg), extras, { cacheDir, debDir, tmpRoot }, progress);
    const fio = fioSource === undefined ? undefined : 'built' in fioSource ? fioSource.built : await ensureFio(fioSource, { cacheDir, tmpRoot }, progress);
    image = await buildInto(imageDir, {
      pkg: kernel.pkg,
      deb,
      key,
      requested,
      skipAbsent: options.modules === undefined,
      built,
      script: options.script,
      busybox,
      tmpRoot,
      progress,
      tools,
      toolPkgs,
      debDir,
      fio,
    });
    progress(`built ${imageDir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return options.outDir === undefined ? image : copyOut(image, options.outDir);
}

interface ResolvedInputs {
  kernel: KernelSource;
  toolPkgs: Array<DebPackage & { deb?: string }>;
  /** fio's source, or (offline) a build already in the cache; undefined when fio is left out. */
  fio?: FioSource | { built: BuiltFio };
}

/**
 * The kernel and guest-tool packages, from the memo when apt's state has not changed since they
 * were resolved (resolve-memo.ts), else from apt. Offline fallbacks (cached .debs) are not memoized.
 */
async function resolveInputs(cacheDir: string, kernelName: string, tools: readonly GuestTool[], withFio: boolean, debDir: string, progress: Progress): Promise<ResolvedInputs> {
  const fingerprint = await aptStateFingerprint();
  const query = { kernelName, tools: tools.map((t) => t.package), fio: withFio };
  const memo = await readMemo<ResolvedInputs>(cacheDir, fingerprint, query);
  if (memo !== undefined) {
    progress(`resolving ${kernelName}`);
    progress(`kernel package ${memo.kernel.pkg.name} ${memo.kernel.pkg.version} (resolved earlier; apt's lists have not changed)`);
    return memo;
  }
  const kernel = await resolveKernel(kernelName, debDir, progress);
  const toolPkgs = tools.length === 0 ? [] : await resolveToolPackages(tools, debDir, progress);
  const fio = withFio ? await resolveFioSource(cacheDir, progress) : undefined;
  const online = kernel.deb === undefined && toolPkgs.every((p) => p.deb === undefined) && (fio === undefined || !('built' in fio));
  if (online) await writeMemo(cacheDir, fingerprint, query, { kernel, toolPkgs, ...(fio === undefined ? {} : { fio }) });
  return { kernel, toolPkgs, ...(fio === undefined ? {} : { fio }) };
}

/**
 * fio's source package and the pool folder of the mirror apt would download fio from; offline
 * (apt cannot resolve it), the newest fio already built in the cache.
 */
async function resolveFioSource(cacheDir: string, progress: Progress): Promise<FioSource | { built: BuiltFio }> {
  try {
    const r = await resolveWithSource(FIO_PACKAGE, progress);
    return { source: r.source, poolDir: poolDirOf(r.uri) };
  } catch (e: unknown) {
    const cached = await newestCachedFio(cacheDir);
    if (cached === undefined || !isAptFailure(e)) throw e;
    progress(`cannot resolve ${FIO_PACKAGE}; using the cached ${cached.version} built from ${cached.source.name} ${cached.source.version}`);
    return { built: cached };
  }
}

/** gpio-virtio and i2c-virtio are built for 6.12 kernels, whose source is known to have them as single files. */
function defaultExtraModules(pkg: DebPackage): readonly ExtraModule[] {
  return /^linux-image-6\.12\./.test(pkg.name) ? EXTRA_MODULES : [];
}

/** The kernel release a Debian kernel package installs: `linux-image-6.1.0-56-amd64` → `6.1.0-56-amd64`. */
function kernelRelease(pkg: DebPackage): string {
  return pkg.name.replace(/^linux-image-/, '');
}

interface KernelSource {
  pkg: DebPackage;
  /** The .deb, when already known (the offline fallback found it in the cache). */
  deb?: string;
}

/**
 * Resolves the kernel package. When apt cannot resolve it (no network, no lists), falls back to
 * the newest kernel .deb already in the cache, so that an offline rebuild works.
 */
async function resolveKernel(name: string, debDir: string, progress: Progress): Promise<KernelSource> {
  progress(`resolving ${name}`);
  let pkg: DebPackage;
  try {
    pkg = await resolveKernelPackage(name, progress);
  } catch (e: unknown) {
    // A concrete package name must be that package; a meta package takes a cached kernel of its
    // series and flavour (linux-image-6.12-rt-amd64: linux-image-6.12.*-rt-amd64).
    const concrete = isConcreteKernelPackage(name);
    const cached = await newestCachedDeb(debDir, (n) => (concrete ? n === name : cachedKernelFits(name, n)));
    if (cached === undefined || !isAptFailure(e)) throw e;
    const reason = e instanceof Error ? (e.message.split('\n')[0] ?? '') : '';
    progress(`cannot resolve ${name} (${reason}); using the cached ${cached.pkg.name} ${cached.pkg.version}`);
    return { pkg: cached.pkg, deb: cached.path };
  }
  progress(`kernel package ${pkg.name} ${pkg.version}`);
  return { pkg };
}

/** Whether cached concrete kernel `n` belongs to meta package `meta` (offline fallback). */
export function cachedKernelFits(meta: string, n: string): boolean {
  if (!isConcreteKernelPackage(n)) return false;
  const flavour = (p: string): string => (/-rt-amd64$/.test(p) ? 'rt' : /-cloud-amd64$/.test(p) ? 'cloud' : 'plain');
  if (flavour(meta) !== flavour(n)) return false;
  const series = /^linux-image-(\d+\.\d+)-/.exec(meta);
  // linux-image-amd64 is Debian 12's 6.1 series.
  const want = series ? (series[1] as string) : '6.1'; // group 1 takes part in every match
  return n.startsWith(`linux-image-${want}.`);
}

function isAptFailure(e: unknown): boolean {
  return e instanceof ImageBuildError || e instanceof HostToolFailedError || e instanceof HostToolMissingError;
}

interface BusyboxSource {
  data: Buffer;
  source: string;
}

/**
 * The static busybox: the installed /bin/busybox when busybox-static is installed (the dynamic
 * `busybox` package installs a /bin/busybox too, which would not run in the guest), else the
 * binary from the downloaded busybox-static package.
 */
async function busyboxBinary(debDir: string, tmpRoot: string, progress: Progress): Promise<BusyboxSource> {
  const installed = await installedVersion('busybox-static');
  if (installed !== undefined) return { data: await readFile('/bin/busybox'), source: `busybox-static ${installed} (installed)` };
  let pkg: DebPackage;
  let deb: string;
  try {
    pkg = await resolvePackage('busybox-static', progress);
    deb = await ensureDeb(debDir, pkg, progress);
  } catch (e: unknown) {
    const cached = await newestCachedDeb(debDir, (n) => n === 'busybox-static');
    if (cached === undefined || !isAptFailure(e)) throw e;
    ({ pkg, path: deb } = cached);
  }
  const dir = await mkdtemp(join(tmpRoot, 'busybox-'));
  try {
    await extractDeb(deb, dir);
    for (const candidate of ['bin/busybox', 'usr/bin/busybox']) {
      const data = await readFile(join(dir, candidate)).catch(() => undefined);
      if (data !== undefined) return { data, source: `busybox-static ${pkg.version} (downloaded)` };
    }
    throw new ImageBuildError(`${deb} has no bin/busybox`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function cacheKey(
  pkg: DebPackage,
  modules: readonly string[],
  script: string | undefined,
  busybox: Buffer,
  tools: { tools: readonly GuestTool[]; packages: string[] },
  extraModules: string,
  fio: string | null,
): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      format: IMAGE_FORMAT,
      kernel: pkg,
      modules,
      script: script ?? null,
      init: renderInit(),
      helpers: [...renderHelpers()],
      busybox: createHash('sha256').update(busybox).digest('hex'),
      tools,
      extraModules,
      fio,
    }),
  );
  return h.digest('hex').slice(0, 16);
}

const MANIFEST = 'image.json';
const KERNEL_FILE = 'vmlinuz';
const INITRAMFS_FILE = 'initramfs.cpio.gz';

type Manifest = Omit<GuestImage, 'kernel' | 'initramfs' | 'fromCache'>;

async function readCachedImage(imageDir: string): Promise<GuestImage | undefined> {
  try {
    // The manifest is written by this module only, last, after the files it describes.
    const manifest = JSON.parse(await readFile(join(imageDir, MANIFEST), 'utf8')) as Manifest;
    const kernel = join(imageDir, KERNEL_FILE);
    const initramfs = join(imageDir, INITRAMFS_FILE);
    if ((await stat(kernel)).size !== manifest.kernelBytes || (await stat(initramfs)).size !== manifest.initramfsBytes) return undefined;
    return { ...manifest, kernel, initramfs, fromCache: true };
  } catch {
    return undefined; // absent or damaged: build it again
  }
}

interface BuildInputs {
  pkg: DebPackage;
  deb: string;
  key: string;
  requested: readonly string[];
  /** Leave out (and report) requested modules the kernel lacks: true for the default list. */
  skipAbsent: boolean;
  built: readonly BuiltModule[];
  script: string | undefined;
  busybox: BusyboxSource;
  tmpRoot: string;
  progress: Progress;
  tools: readonly GuestTool[];
  toolPkgs: Awaited<ReturnType<typeof resolveToolPackages>>;
  debDir: string;
  fio: BuiltFio | undefined;
}

async function buildInto(imageDir: string, inp: BuildInputs): Promise<GuestImage> {
  const work = await mkdtemp(join(inp.tmpRoot, 'kernel-'));
  try {
    inp.progress(`unpacking ${inp.deb}`);
    await extractDeb(inp.deb, work);
    const { modulesDir, release } = await findModules(work, kernelRelease(inp.pkg));
    // The built modules go where depmod finds them, so their dependencies order them like the rest.
    if (inp.built.length > 0) await placeForDepmod(modulesDir, inp.built);
    if (inp.built.length > 0 || !(await exists(join(modulesDir, 'modules.dep')))) {
      // Debian's kernel package ships no modules.dep: its postinst runs depmod. Run it here on
      // the unpacked tree instead.
      inp.progress(`running depmod for ${release}`);
      await runTool('depmod', ['-b', work, release]);
    }
    const index = await readModuleIndex(modulesDir);
    const plan = resolveLoadOrder(inp.requested, index.dep, index.builtin, release, { skipAbsent: inp.skipAbsent });
    inp.progress(`modules in load order: ${plan.order.map((m) => m.name).join(' ')}`);
    if (plan.builtin.length > 0) inp.progress(`built into the kernel (skipped): ${plan.builtin.join(' ')}`);
    if (plan.absent.length > 0) inp.progress(`not in this kernel (skipped): ${plan.absent.join(' ')}`);

    const vmlinuzPath = join(work, 'boot', `vmlinuz-${release}`);
    const vmlinuz = await readFile(vmlinuzPath).catch((e: unknown) => {
      throw new ImageBuildError(`${inp.pkg.name} has no boot/vmlinuz-${release}`, { cause: e });
    });
    const moduleData = await Promise.all(plan.order.map((m) => readModuleFile(join(modulesDir, m.path))));

    const builtPrograms = inp.fio === undefined ? [] : [{ path: FIO_GUEST_PATH, data: await readFile(inp.fio.file) }];
    const tools = inp.tools.length === 0 && builtPrograms.length === 0 ? [] : await toolEntries(inp.tools, inp.toolPkgs, inp.debDir, inp.tmpRoot, inp.progress, builtPrograms);
    inp.progress('packing the initramfs');
    const entries = imageEntries({
      tools,
      busybox: inp.busybox.data,
      modules: plan.order.map((m, i) => ({ name: m.name, data: moduleData[i] as Buffer })), // one datum per module
      script: inp.script,
    });
    const initramfs = await gzipAsync(packNewc(entries), { level: 9 });

    const manifest: Manifest = {
      kernelVersion: release,
      kernelPackage: inp.pkg,
      busybox: inp.busybox.source,
      modules: plan.order.map((m) => m.name),
      toolPackages: inp.toolPkgs.map((p) => `${p.name}=${p.version}`),
      ...(inp.fio === undefined ? {} : { fio: `${inp.fio.version}, from Debian source ${inp.fio.source.name} ${inp.fio.source.version}` }),
      builtinModules: plan.builtin,
      absentModules: plan.absent,
      extraModules: inp.built.map((m) => m.name),
      cmdlineLimit: bzImageCmdlineLimit(vmlinuz) ?? X86_CMDLINE_MAX_BYTES,
      kernelBytes: vmlinuz.length,
      initramfsBytes: initramfs.length,
      hasBakedScript: inp.script !== undefined,
      cacheKey: inp.key,
    };
    await publish(imageDir, inp.tmpRoot, async (dir) => {
      await writeFile(join(dir, KERNEL_FILE), vmlinuz);
      await writeFile(join(dir, INITRAMFS_FILE), initramfs);
      await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    });
    return { ...manifest, kernel: join(imageDir, KERNEL_FILE), initramfs: join(imageDir, INITRAMFS_FILE), fromCache: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Finds lib/modules/<release> in an unpacked kernel package (usr/lib/modules on a merged-/usr
 * package; then lib is linked to usr/lib so that `depmod -b` finds it where it looks).
 */
async function findModules(root: string, expected: string): Promise<{ modulesDir: string; release: string }> {
  let base = join(root, 'lib', 'modules');
  if (!(await exists(base))) {
    const merged = join(root, 'usr', 'lib', 'modules');
    if (!(await exists(merged))) throw new ImageBuildError('the kernel package has no lib/modules folder');
    if (!(await exists(join(root, 'lib')))) await symlink('usr/lib', join(root, 'lib'));
    base = merged;
  }
  const releases = await readdir(base);
  const release = releases.includes(expected) ? expected : releases.length === 1 ? releases[0] : undefined;
  if (release === undefined) throw new ImageBuildError(`cannot tell the kernel release among lib/modules/{${releases.join(',')}}`);
  return { modulesDir: join(base, release), release };
}

interface ImageContent {
  busybox: Uint8Array;
  modules: ReadonlyArray<{ name: string; data: Uint8Array }>;
  script: string | undefined;
  /** Guest tools' entries (guest-tools.ts); folders the image already has are skipped. */
  tools?: readonly CpioEntry[];
}

/** The initramfs entries, parents before children. */
export function imageEntries(c: ImageContent): CpioEntry[] {
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  const dirs = ['bin', 'dev', 'etc', 'etc/avp', 'lib', MODULES_DIR, 'mnt', 'proc', 'root', 'run', 'sbin', 'sys', 'usr', 'usr/bin', 'usr/sbin'];
  const entries: CpioEntry[] = dirs.map((path) => ({ type: 'dir', path }));
  entries.push(
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'file', path: 'bin/busybox', data: c.busybox, mode: 0o755 },
    // /init's "#!/bin/sh" needs sh before `busybox --install` has run.
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'init', data: text(renderInit()), mode: 0o755 },
  );
  for (const [path, body] of renderHelpers()) entries.push({ type: 'file', path, data: text(body), mode: 0o755 });
  entries.push({ type: 'file', path: MODULES_ORDER_PATH, data: text(renderModulesOrder(c.modules.map((m) => m.name))) });
  for (const m of c.modules) entries.push({ type: 'file', path: `${MODULES_DIR}/${m.name}.ko`, data: m.data });
  const have = new Set(entries.map((e) => e.path));
  for (const e of c.tools ?? []) if (!(e.type === 'dir' && have.has(e.path))) entries.push(e);
  if (c.script !== undefined) entries.push({ type: 'file', path: BAKED_SCRIPT_PATH, data: text(c.script), mode: 0o755 });
  return entries;
}

/**
 * Writes an image folder under a scratch name and renames it into place, so that readers see a
 * whole image or none. A concurrent build of the same key that won the rename is kept.
 */
async function publish(imageDir: string, tmpRoot: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const staging = await mkdtemp(join(tmpRoot, 'image-'));
  try {
    await fill(staging);
    await chmod(staging, 0o755); // mkdtemp makes it 0700; the image is for any user to boot
    await rm(imageDir, { recursive: true, force: true });
    await rename(staging, imageDir);
  } catch (e: unknown) {
    const code = (e as NodeJS.ErrnoException).code; // fs errors carry an errno code
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Scratch folders older than this are left over from a build that was killed. */
const STALE_SCRATCH_MS = 60 * 60 * 1000;

/**
 * Removes scratch folders of builds that died (an unpacked kernel is about 400 MB). A running
 * build's folder is younger than an hour: unpacking and packing take seconds.
 */
async function removeStaleScratch(tmpRoot: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(tmpRoot)) {
    const path = join(tmpRoot, name);
    const info = await stat(path).catch(() => undefined);
    // ctime, not mtime: unpacking a .deb into the folder sets its mtime to the package's (years
    // old), which made a concurrent build remove a running build's kernel (depmod: ENOENT).
    if (info !== undefined && now - info.ctimeMs > STALE_SCRATCH_MS) await rm(path, { recursive: true, force: true });
  }
}

async function copyOut(image: GuestImage, outDir: string): Promise<GuestImage> {
  await mkdir(outDir, { recursive: true });
  const kernel = join(resolve(outDir), KERNEL_FILE);
  const initramfs = join(resolve(outDir), INITRAMFS_FILE);
  await copyFile(image.kernel, kernel);
  await copyFile(image.initramfs, initramfs);
  return { ...image, kernel, initramfs };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
