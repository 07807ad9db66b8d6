// SPDX-License-Identifier: Apache-2.0
/**
 * Debian packages for the guest image, fetched without installing them: resolve a package to its
 * candidate version with apt-cache, `apt-get download` the .deb into a cache folder, and unpack
 * it with `dpkg-deb -x` into a scratch folder.
 *
 * Owns: talking to apt and dpkg, the .deb cache layout (`<debDir>/<name>_<version>_<arch>.deb`),
 * the "run apt-get update only when the lists are missing or stale" rule, and the offline fallback
 * to a cached kernel. Does not own: what is done with the unpacked files (build.ts).
 */
import { mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HostToolFailedError, ImageBuildError } from '../errors.js';
import { runTool } from './tools.js';

export interface DebPackage {
  name: string;
  version: string;
}

export type Progress = (message: string) => void;

/** The fields of one `apt-cache show` stanza that the build uses. */
interface Stanza {
  Package?: string;
  Version?: string;
  Depends?: string;
  /** The source package, `name` or `name (version)`; absent when it is the binary's name and version. */
  Source?: string;
}

/** Parses the first stanza of `apt-cache show` output (RFC 822 style, continuation lines indented). */
export function parseStanza(text: string): Stanza {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') {
      if (Object.keys(out).length > 0) break;
      continue;
    }
    if (/^\s/.test(line) && last !== undefined) {
      out[last] = `${out[last] ?? ''} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    out[last] = line.slice(colon + 1).trim();
  }
  return { ...pick(out, 'Package'), ...pick(out, 'Version'), ...pick(out, 'Depends'), ...pick(out, 'Source') };
}

/** Every stanza of `apt-cache show` output for several packages, in order. */
export function parseStanzas(text: string): Stanza[] {
  return text
    .split(/\n[ \t]*\n/)
    .map((chunk) => parseStanza(chunk))
    .filter((st) => st.Package !== undefined);
}

function pick<K extends keyof Stanza>(o: Record<string, string>, k: K): Pick<Stanza, K> {
  // exactOptionalPropertyTypes: leave the key out rather than set it to undefined.
  const v = o[k];
  return (v === undefined ? {} : { [k]: v }) as Pick<Stanza, K>; // the literal has exactly key K
}

/**
 * The concrete kernel package a meta package such as `linux-image-amd64` depends on, from its
 * Depends field: `linux-image-6.1.0-56-amd64 (= 6.1.192-2)`. A concrete name resolves to itself.
 */
export function kernelDependency(stanza: Stanza): DebPackage | undefined {
  // Concrete: linux-image-6.1.0-56-amd64, linux-image-6.12.117+deb12-amd64; not the meta package
  // linux-image-6.12-amd64, which also starts with a digit.
  if (stanza.Package !== undefined && /^linux-image-\d+\.\d+\.\d+/.test(stanza.Package) && stanza.Version !== undefined) {
    return { name: stanza.Package, version: stanza.Version };
  }
  const m = /(linux-image-\d+\.\d+\.\d[^\s,(|]*)\s*\(=\s*([^)\s]+)\)/.exec(stanza.Depends ?? '');
  // Both groups take part in every match of this pattern.
  return m ? { name: m[1] as string, version: m[2] as string } : undefined;
}

/**
 * The source package of a binary package's stanza: its Source field (`fio` or `linux-signed-amd64
 * (6.1.192+2)`), else the binary's own name; the version is the field's, else the binary's without
 * a binNMU suffix (`+b1`: a rebuild of the same source).
 */
export function sourceOfStanza(stanza: Stanza): DebPackage | undefined {
  if (stanza.Package === undefined || stanza.Version === undefined) return undefined;
  const m = /^([a-z0-9][a-z0-9+.-]*)(?:\s*\(\s*([^)\s]+)\s*\))?$/.exec((stanza.Source ?? stanza.Package).trim());
  if (m === null) return undefined;
  // Group 1 takes part in every match; group 2 only when the field names a version.
  return { name: m[1] as string, version: m[2] ?? stanza.Version.replace(/\+b\d+$/, '') };
}

/**
 * The URI apt would download a .deb from, from `apt-get download --print-uris` output:
 * `'http://deb.debian.org/debian/pool/main/f/fio/fio_3.33-3_amd64.deb' fio_3.33-3_amd64.deb 537684 SHA256:dc79…`.
 */
export function parsePrintUri(text: string): string | undefined {
  const m = /^'([a-z][a-z0-9+.-]*:\/\/[^']+)'\s+\S+\.deb\s+\d+\s/m.exec(text);
  return m === null ? undefined : (m[1] as string); // group 1 takes part in every match
}

/**
 * A package's candidate version, its source package, and the URI of its .deb on the mirror apt
 * uses for it (the machine's own sources: no host is named here). For fetching the source from
 * the same pool folder.
 */
export async function resolveWithSource(name: string, progress: Progress): Promise<{ pkg: DebPackage; source: DebPackage; uri: string }> {
  return withAptUpdateRetry(
    `resolving ${name}`,
    async () => {
      const stanza = await showCandidate(name);
      // showCandidate guarantees Version.
      const pkg = { name, version: stanza.Version as string };
      const source = sourceOfStanza(stanza);
      if (source === undefined) throw new ImageBuildError(`cannot tell the source package of ${name} ${pkg.version} from its Source field "${stanza.Source ?? ''}"`);
      const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
      const { stdout } = await runTool('apt-get', ['download', '--print-uris', '-qq', ...sandbox, `${name}=${pkg.version}`]);
      const uri = parsePrintUri(stdout.toString('utf8'));
      if (uri === undefined) throw new ImageBuildError(`apt-get download --print-uris ${name}=${pkg.version} printed no URI`);
      return { pkg, source, uri };
    },
    progress,
  );
}

/** The candidate version of `name` according to the local apt lists; throws if apt knows no such package. */
async function showCandidate(name: string): Promise<Stanza> {
  const { stdout } = await runTool('apt-cache', ['show', '--no-all-versions', name]);
  const stanza = parseStanza(stdout.toString('utf8'));
  if (stanza.Version === undefined) throw new ImageBuildError(`apt-cache knows no version of ${name}`);
  return stanza;
}

/**
 * Runs `fn`; when it fails in a way that up-to-date apt lists could fix (unknown package, or a
 * download of a version the mirror no longer has), runs `apt-get update` once and tries again.
 */
async function withAptUpdateRetry<T>(what: string, fn: () => Promise<T>, progress: Progress): Promise<T> {
  try {
    return await fn();
  } catch (first: unknown) {
    if (!(first instanceof HostToolFailedError || first instanceof ImageBuildError)) throw first;
    progress(`${what} failed; the apt lists may be missing or stale: running apt-get update`);
    try {
      await runTool('apt-get', ['update', '-qq']);
    } catch (e: unknown) {
      throw new ImageBuildError(`${what} failed, and so did apt-get update (run it as root, with network access)`, {
        cause: e,
      });
    }
    return fn();
  }
}

/** Resolves the kernel package to download: `linux-image-amd64` → `linux-image-6.1.0-56-amd64 6.1.192-2`. */
export async function resolveKernelPackage(metaPackage: string, progress: Progress): Promise<DebPackage> {
  return withAptUpdateRetry(
    `resolving ${metaPackage}`,
    async () => {
      const stanza = await showCandidate(metaPackage);
      const pkg = kernelDependency(stanza);
      if (pkg === undefined) {
        throw new ImageBuildError(`${metaPackage} ${stanza.Version ?? ''} does not depend on a linux-image-<version> package`);
      }
      return pkg;
    },
    progress,
  );
}

/** Resolves any package to its candidate version. */
export async function resolvePackage(name: string, progress: Progress): Promise<DebPackage> {
  return withAptUpdateRetry(
    `resolving ${name}`,
    async () => {
      const stanza = await showCandidate(name);
      // showCandidate guarantees Version.
      return { name, version: stanza.Version as string };
    },
    progress,
  );
}

/**
 * The candidate versions and Depends of several packages with one `apt-cache show` (each call
 * loads apt's whole package cache: seconds on a loaded machine, and an image needs dozens of
 * packages). Packages apt does not know, or a failing call, are simply absent from the map; the
 * caller resolves those one by one (with the apt-get update retry and the offline fallback).
 */
export async function resolveManyDepends(names: readonly string[]): Promise<Map<string, { pkg: DebPackage; depends: string[] }>> {
  const out = new Map<string, { pkg: DebPackage; depends: string[] }>();
  if (names.length === 0) return out;
  let text: string;
  try {
    text = (await runTool('apt-cache', ['show', '--no-all-versions', ...names])).stdout.toString('utf8');
  } catch {
    return out;
  }
  const wanted = new Set(names);
  for (const st of parseStanzas(text)) {
    // parseStanzas keeps only stanzas with a Package field.
    const name = st.Package as string;
    if (!wanted.has(name) || out.has(name) || st.Version === undefined) continue;
    out.set(name, { pkg: { name, version: st.Version }, depends: dependencyNames(st.Depends ?? '') });
  }
  return out;
}

/** A package's candidate version and the package names of its Depends (first alternative of each). */
export async function resolvePackageDepends(name: string, progress: Progress): Promise<{ pkg: DebPackage; depends: string[] }> {
  return withAptUpdateRetry(
    `resolving ${name}`,
    async () => {
      const stanza = await showCandidate(name);
      // showCandidate guarantees Version.
      return { pkg: { name, version: stanza.Version as string }, depends: dependencyNames(stanza.Depends ?? '') };
    },
    progress,
  );
}

/** The Depends field of a .deb file (for building offline from cached packages). */
export async function debDepends(deb: string): Promise<string[]> {
  const { stdout } = await runTool('dpkg-deb', ['-f', deb, 'Depends']);
  return dependencyNames(stdout.toString('utf8'));
}

/**
 * Package names from a Depends field: `libc6 (>= 2.34), libssl3 (>= 3.0.0), a | b` → libc6,
 * libssl3, a. The first alternative is taken; version constraints and `:any` qualifiers dropped.
 */
export function dependencyNames(depends: string): string[] {
  return depends
    .split(',')
    .map((d) => (d.split('|')[0] ?? '').trim().split(/[\s(]/)[0] ?? '')
    .map((n) => n.replace(/:[a-z0-9]+$/, ''))
    .filter((n) => n !== '');
}

/** apt-get download names files `name_version_arch.deb` with ':' (an epoch) written as %3a. */
function debPrefix(pkg: DebPackage): string {
  return `${pkg.name}_${pkg.version.replaceAll(':', '%3a')}_`;
}

/** The cached .deb of exactly this package version, if present. */
export async function findCachedDeb(debDir: string, pkg: DebPackage): Promise<string | undefined> {
  const prefix = debPrefix(pkg);
  const names = await readdir(debDir).catch((): string[] => []); // no folder yet: nothing cached
  const hit = names.find((n) => n.startsWith(prefix) && n.endsWith('.deb'));
  return hit === undefined ? undefined : join(debDir, hit);
}

/**
 * The newest (by modification time) cached .deb whose package name `accept`s, for
 * building offline when apt cannot resolve the package.
 */
export async function newestCachedDeb(debDir: string, accept: (name: string) => boolean): Promise<{ path: string; pkg: DebPackage } | undefined> {
  const names = await readdir(debDir).catch((): string[] => []); // no folder yet: nothing cached
  let best: { path: string; pkg: DebPackage; mtime: number } | undefined;
  for (const n of names) {
    const m = /^([^_]+)_([^_]+)_[^_]+\.deb$/.exec(n);
    if (!m || !accept(m[1] as string)) continue; // groups 1 and 2 take part in every match
    const path = join(debDir, n);
    const mtime = (await stat(path)).mtimeMs;
    if (best === undefined || mtime > best.mtime) {
      best = { path, pkg: { name: m[1] as string, version: (m[2] as string).replaceAll('%3a', ':') }, mtime };
    }
  }
  return best && { path: best.path, pkg: best.pkg };
}

/**
 * Returns the path of `pkg`'s .deb in `debDir`, downloading it when absent. The download goes to
 * a scratch folder first and is renamed into place, so a concurrent build never sees half a file.
 */
export async function ensureDeb(debDir: string, pkg: DebPackage, progress: Progress): Promise<string> {
  const cached = await findCachedDeb(debDir, pkg);
  if (cached !== undefined) return cached;
  progress(`downloading ${pkg.name} ${pkg.version}`);
  const download = async (): Promise<string> => {
    const tmp = await mkdtemp(join(debDir, '.download-'));
    try {
      // As root, apt drops to the _apt user to download and warns that _apt cannot write the
      // scratch folder; running the download as root (as the warning's fallback does) silences it.
      const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
      await runTool('apt-get', ['download', '-qq', ...sandbox, `${pkg.name}=${pkg.version}`], { cwd: tmp });
      const [file] = (await readdir(tmp)).filter((n) => n.endsWith('.deb'));
      if (file === undefined) throw new ImageBuildError(`apt-get download ${pkg.name}=${pkg.version} produced no .deb`);
      const dest = join(debDir, file);
      await rename(join(tmp, file), dest);
      return dest;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  };
  return withAptUpdateRetry(`apt-get download ${pkg.name}=${pkg.version}`, download, progress);
}

/** Unpacks a .deb's files (not its scripts) into `dest` with `dpkg-deb -x`. */
export async function extractDeb(deb: string, dest: string): Promise<void> {
  await runTool('dpkg-deb', ['-x', deb, dest]);
}

/** The installed version of a package, or undefined when it is not installed. */
export async function installedVersion(name: string): Promise<string | undefined> {
  try {
    const { stdout } = await runTool('dpkg-query', ['-W', '-f=${db:Status-Abbrev} ${Version}', name]);
    const [status, version] = stdout.toString('utf8').trim().split(/\s+/);
    // "ii" = desired install, currently installed.
    return status === 'ii' && version !== undefined ? version : undefined;
  } catch (e: unknown) {
    if (e instanceof HostToolFailedError) return undefined; // dpkg-query exits 1 for unknown packages
    throw e;
  }
}
