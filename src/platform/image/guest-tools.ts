// SPDX-License-Identifier: Apache-2.0
/**
 * Dynamically linked Debian programs for the guest (busybox's applets cannot do everything: its nc
 * has no AF_VSOCK), with exactly the shared libraries they load, taken from Debian packages.
 *
 * How: resolve the program's package and, recursively, its Depends (the packages that can hold its
 * libraries), download and unpack them into a scratch folder, then follow the ELF dependencies
 * (PT_INTERP, DT_NEEDED, recursively) from the program and copy only those files: the program to
 * /usr/bin, every library to /lib/x86_64-linux-gnu under its soname (the dynamic loader's default
 * search path), and the loader where PT_INTERP names it. Nothing is executed on the host.
 *
 * Owns: the tool list, the dependency walks, the files' places in the image. Does not own: apt and
 * dpkg (apt.ts), ELF parsing (elf.ts), packing (build.ts).
 *
 * socat (Debian 12: 1.7.4.4) speaks AF_VSOCK (`VSOCK-LISTEN:port`, `VSOCK-CONNECT:cid:port`) and is
 * what vsock tests in the guest use. It links libssl/libcrypto and, through libwrap, libnsl,
 * libtirpc and the Kerberos libraries: about 10 MB unpacked, 4 MB of the gzipped initramfs.
 * The device tests of sound, CAN, GPIO and I2C use alsa-utils (aplay/arecord/amixer, with ALSA's
 * configuration from libasound2-data: aplay opens /usr/share/alsa/alsa.conf), can-utils, gpiod
 * and i2c-tools. Input events are read with busybox hexdump (no evtest needed).
 * fio is built from Debian's source (fio.ts) and comes in as a BuiltProgram; its libraries
 * (libc6, and zlib1g or libaio1 if it links them) come through this same ELF walk.
 */
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ImageBuildError } from '../errors.js';
import type { CpioEntry } from './cpio.js';
import { debDepends, ensureDeb, extractDeb, newestCachedDeb, resolveManyDepends, resolvePackageDepends, type DebPackage, type Progress } from './apt.js';
import { elfDeps } from './elf.js';

/** A program to put in the guest: its Debian package and where the program is inside it. */
export interface GuestTool {
  package: string;
  /** Paths inside the package, e.g. `usr/bin/socat`; installed at the same path in the image. */
  programs: readonly string[];
  /** Data files or folders the programs read at run time, from any package of the closure, copied as they are. */
  files?: readonly string[];
}

export const DEFAULT_GUEST_TOOLS: readonly GuestTool[] = [
  { package: 'socat', programs: ['usr/bin/socat'] },
  { package: 'alsa-utils', programs: ['usr/bin/aplay', 'usr/bin/arecord', 'usr/bin/amixer'], files: ['usr/share/alsa'] },
  { package: 'can-utils', programs: ['usr/bin/candump', 'usr/bin/cansend', 'usr/bin/cangen', 'usr/bin/slcand', 'usr/bin/slcan_attach'] },
  { package: 'gpiod', programs: ['usr/bin/gpiodetect', 'usr/bin/gpioinfo', 'usr/bin/gpioget', 'usr/bin/gpioset', 'usr/bin/gpiomon'] },
  { package: 'i2c-tools', programs: ['usr/sbin/i2cdetect', 'usr/sbin/i2cget', 'usr/sbin/i2cset', 'usr/sbin/i2ctransfer', 'usr/sbin/i2cdump'] },
];

/**
 * A program built here rather than taken from a package (fio.ts), installed at `path`; its
 * libraries come from the packages of the closure like any tool's (list them as tools with no
 * programs).
 */
export interface BuiltProgram {
  path: string;
  data: Uint8Array;
}

/**
 * Depends that are not libraries of the programs copied: i2c-tools' perl scripts, adduser and udev
 * rules, alsa-utils' kmod and init scripts. Following them would pull in perl and systemd (over
 * 64 packages). Safe to skip: the ELF walk fails the build if a needed library is missing.
 */
const NOT_LIBRARY_DEPENDS: ReadonlySet<string> = new Set(['perl', 'adduser', 'udev', 'kmod', 'lsb-base']);

/** Where libraries are looked for in the unpacked packages, in order (merged-/usr or not). */
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'usr/lib64', 'lib', 'usr/lib'];
/** Where they go in the image: on the loader's default path, so no ld.so.cache is needed. */
export const GUEST_LIB_DIR = 'lib/x86_64-linux-gnu';
/** More packages than this in one closure means something is wrong (a loop, a meta package). */
const MAX_PACKAGES = 64;

/**
 * The packages `tools` need: theirs and, recursively, their Depends, each at its candidate version
 * (or, offline, the newest cached .deb), sorted by name.
 */
export async function resolveToolPackages(tools: readonly GuestTool[], debDir: string, progress: Progress): Promise<Array<DebPackage & { deb?: string }>> {
  const out = new Map<string, DebPackage & { deb?: string }>();
  // Breadth first, one apt-cache call per level of the dependency tree (not one per package).
  let level = [...new Set(tools.map((t) => t.package))];
  while (level.length > 0) {
    const todo = level.filter((n) => !out.has(n));
    const batch = await resolveManyDepends(todo);
    const next = new Set<string>();
    for (const name of todo) {
      if (out.has(name)) continue;
      if (out.size >= MAX_PACKAGES) throw new ImageBuildError(`guest tools need more than ${MAX_PACKAGES} packages (at ${name}); refusing`);
      const hit = batch.get(name);
      const { entry, depends } = hit !== undefined ? { entry: hit.pkg, depends: hit.depends } : await resolveOne(name, debDir, progress);
      out.set(name, entry);
      for (const d of depends) if (!out.has(d) && !NOT_LIBRARY_DEPENDS.has(d)) next.add(d);
    }
    level = [...next];
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** One package apt could not resolve in a batch: apt (with an update retry), else the newest cached .deb. */
async function resolveOne(name: string, debDir: string, progress: Progress): Promise<{ entry: DebPackage & { deb?: string }; depends: string[] }> {
  try {
    const r = await resolvePackageDepends(name, progress);
    return { entry: r.pkg, depends: r.depends };
  } catch (e: unknown) {
    const cached = await newestCachedDeb(debDir, (n) => n === name);
    if (cached === undefined) throw e;
    return { entry: { ...cached.pkg, deb: cached.path }, depends: await debDepends(cached.path) };
  }
}

/**
 * Unpacks `packages` into a scratch folder and returns the image entries for `tools`: programs,
 * their libraries (ELF closure), the loader and its PT_INTERP link, parents before children.
 */
export async function toolEntries(
  tools: readonly GuestTool[],
  packages: ReadonlyArray<DebPackage & { deb?: string }>,
  debDir: string,
  tmpRoot: string,
  progress: Progress,
  built: readonly BuiltProgram[] = [],
): Promise<CpioEntry[]> {
  const root = await mkdtemp(join(tmpRoot, 'tools-'));
  try {
    for (const p of packages) await extractDeb(p.deb ?? (await ensureDeb(debDir, p, progress)), root);
    const files = new Map<string, Uint8Array>();
    const links = new Map<string, string>();
    const wanted: string[] = [];
    const interps = new Set<string>();
    const programs: BuiltProgram[] = [...built];
    for (const t of tools) for (const prog of t.programs) programs.push({ path: prog, data: await readInRoot(root, prog) });
    for (const { path, data } of programs) {
      files.set(path, data);
      const deps = elfDeps(data, path);
      if (deps.interp !== undefined) interps.add(deps.interp);
      wanted.push(...deps.needed);
    }
    const data = new Map<string, Uint8Array>();
    for (const t of tools) for (const f of t.files ?? []) await collectFiles(root, f, data);
    const done = new Set<string>();
    while (wanted.length > 0) {
      // Safe: the loop condition says the list is not empty.
      const soname = wanted.shift()!;
      if (done.has(soname)) continue;
      done.add(soname);
      const data = await findLibrary(root, soname);
      files.set(`${GUEST_LIB_DIR}/${soname}`, data);
      const deps = elfDeps(data, soname);
      wanted.push(...deps.needed.filter((n) => !done.has(n)));
    }
    for (const interp of interps) {
      // PT_INTERP is absolute (/lib64/ld-linux-x86-64.so.2); the loader itself lives with the libraries.
      const base = posix.basename(interp);
      if (!files.has(`${GUEST_LIB_DIR}/${base}`)) files.set(`${GUEST_LIB_DIR}/${base}`, await findLibrary(root, base));
      const at = interp.replace(/^\/+/, '');
      if (at !== `${GUEST_LIB_DIR}/${base}`) links.set(at, posix.relative(posix.dirname(at), `${GUEST_LIB_DIR}/${base}`));
    }
    progress(`guest tools: ${[...files.keys()].join(' ')}${data.size > 0 ? ` and ${data.size} data files` : ''}`);
    return layout(files, links, data);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Entries for the files and links, with every parent folder first (existing image folders included: the packer takes duplicates of folders in order). */
function layout(files: ReadonlyMap<string, Uint8Array>, links: ReadonlyMap<string, string>, data: ReadonlyMap<string, Uint8Array> = new Map()): CpioEntry[] {
  const dirs = new Set<string>();
  for (const p of [...files.keys(), ...links.keys(), ...data.keys()]) {
    for (let d = posix.dirname(p); d !== '.' && d !== ''; d = posix.dirname(d)) dirs.add(d);
  }
  const entries: CpioEntry[] = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b)).map((path) => ({ type: 'dir', path }));
  for (const [path, data] of [...files].sort(([a], [b]) => a.localeCompare(b))) entries.push({ type: 'file', path, data, mode: 0o755 });
  for (const [path, bytes] of [...data].sort(([a], [b]) => a.localeCompare(b))) entries.push({ type: 'file', path, data: bytes, mode: 0o644 });
  for (const [path, target] of links) entries.push({ type: 'symlink', path, target });
  return entries;
}

/** Adds the file at `path` in `root`, or every file below it if it is a folder (links followed inside `root`). */
async function collectFiles(root: string, path: string, out: Map<string, Uint8Array>): Promise<void> {
  const rel = path.replace(/^\/+/, '');
  const st = await lstat(join(root, rel)).catch(() => undefined);
  if (st === undefined) throw new ImageBuildError(`guest tools: no package in the closure has ${rel}`);
  if (st.isDirectory()) {
    for (const name of (await readdir(join(root, rel))).sort()) await collectFiles(root, posix.join(rel, name), out);
  } else out.set(rel, await readInRoot(root, rel));
}

async function findLibrary(root: string, soname: string): Promise<Uint8Array> {
  for (const dir of LIB_DIRS) {
    const data = await readInRoot(root, `${dir}/${soname}`).catch(() => undefined);
    if (data !== undefined) return data;
  }
  throw new ImageBuildError(`guest tools: no package in the closure provides ${soname}`);
}

/**
 * Reads `path` inside `root`, following symlinks inside `root` (an absolute link target is taken
 * relative to `root`, never to the host's /). At most 16 links, as the kernel's limit (40) is generous.
 */
async function readInRoot(root: string, path: string): Promise<Uint8Array> {
  let rel = path.replace(/^\/+/, '');
  for (let hops = 0; hops < 16; hops++) {
    const full = join(root, rel);
    const st = await lstat(full);
    if (!st.isSymbolicLink()) return readFile(full);
    const target = await readlink(full);
    rel = target.startsWith('/') ? target.replace(/^\/+/, '') : posix.normalize(posix.join(posix.dirname(rel), target));
    if (rel.startsWith('..')) throw new ImageBuildError(`guest tools: ${path} links outside the package root`);
  }
  throw new ImageBuildError(`guest tools: too many symlinks at ${path}`);
}
