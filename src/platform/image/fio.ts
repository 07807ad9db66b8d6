// SPDX-License-Identifier: Apache-2.0
/**
 * fio for the guest, built at image-build time from Debian's own fio source. Debian 12's fio
 * package links librbd, librados, libgfapi, libibverbs, libpmem and more (87 packages in its
 * closure, over the guest tools' limit of 64); the same source configured without those engines
 * needs only libc6 (libc, libm, libmvec) and, when the build host has their headers, zlib1g and
 * libaio1. Its io_uring engine talks to the kernel directly (no liburing), so the guest gets
 * QD 16 direct I/O with crc32c verify from one 1.7 MB binary. No C is in this repository.
 *
 * Where the source comes from, with no host named here and no deb-src entry needed: apt resolves
 * the `fio` binary package and prints the URI it would download it from (the machine's own
 * mirror); the source package's `.dsc` and its upstream tarball (`fio_<upstream>.orig.tar.*`) sit
 * in the same pool folder. The tarball is checked against the size and SHA-256 the .dsc lists,
 * and the .dsc against the source name and version apt gave. Limit: the .dsc's own PGP signature
 * is not checked (that needs debian-keyring, which a fresh machine lacks), so the trust anchor is
 * the mirror the machine already installs its packages from, over the same transport. Debian's
 * three patches (man page path, config.log, hardening flags) touch only the build and are not applied.
 *
 * Build: `./configure --disable-native` plus every `--disable-…` the source offers for an optional
 * engine or library, `make -j2 fio`, `strip`. On a loaded 2-core machine: about 20 s of configure
 * and 60-90 s of make, once per fio version: the binary is cached as
 * `<cache>/fio/<version>-<key>/fio` (key: source version + recipe). A failing step fails the image
 * build with the step's name and the last lines of its output (HostToolFailedError), never an
 * image without fio.
 *
 * Owns: the source lookup, download checks, configure flags, the build and its cache. Does not own:
 * apt (apt.ts), the library closure and the file's place in the image (guest-tools.ts, build.ts).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostToolFailedError, HostToolMissingError, ImageBuildError } from '../errors.js';
import type { DebPackage, Progress } from './apt.js';
import { publish, runTool, withSbin } from './tools.js';

/** The Debian binary package whose source is built. */
export const FIO_PACKAGE = 'fio';
/** Where fio goes in the image (on PATH). */
export const FIO_GUEST_PATH = 'usr/bin/fio';
/**
 * Debian packages that hold every library a fio built here can link: libc6 always; zlib1g and
 * libaio1 when the build host has zlib1g-dev or libaio-dev (fio's configure has no switch to turn
 * them off). Only the libraries the binary names (DT_NEEDED) are copied into the image.
 */
export const FIO_LIBRARY_PACKAGES: readonly string[] = ['libc6', 'zlib1g', 'libaio1'];

/**
 * fio 3.33's configure switches: no host-CPU-specific code (the guest runs on QEMU's CPU model),
 * and every optional engine or library that can be switched off, off, so that the binary does not
 * depend on which -dev packages the build host happens to have.
 */
export const FIO_CONFIGURE_ARGS: readonly string[] = [
  '--disable-native',
  '--disable-numa',
  '--disable-rdma',
  '--disable-rados',
  '--disable-rbd',
  '--disable-http',
  '--disable-gfapi',
  '--disable-pmem',
  '--disable-lex',
  '--disable-xnvme',
  '--disable-libzbc',
  '--disable-tcmalloc',
  '--disable-dfs',
  '--disable-libnfs',
];

/** Bumped when the recipe changes in a way the key does not show. */
const RECIPE = 1;

/** The source to build: Debian's source package and the pool folder (URL, ending in /) it sits in. */
export interface FioSource {
  source: DebPackage;
  poolDir: string;
}

export interface BuiltFio {
  /** The stripped binary in the cache. */
  file: string;
  /** `fio-3.33`, as `fio --version` prints it (from the source tree). */
  version: string;
  source: DebPackage;
  key: string;
}

/** The folder of a .deb URI: `http://…/pool/main/f/fio/fio_3.33-3_amd64.deb` → `http://…/pool/main/f/fio/`. */
export function poolDirOf(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (e: unknown) {
    throw new ImageBuildError(`apt printed an URI that is not a URL: ${uri}`, { cause: e });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ImageBuildError(`apt downloads ${FIO_PACKAGE} over ${url.protocol} (${uri}); fetching its source needs an http or https mirror`);
  }
  if (!url.pathname.endsWith('.deb')) throw new ImageBuildError(`apt printed an URI that is not a .deb: ${uri}`);
  return new URL('.', url).href;
}

/** A Debian version without its epoch: `1:2.3-4` → `2.3-4` (file names in the pool leave it out). */
function withoutEpoch(version: string): string {
  return version.replace(/^\d+:/, '');
}

/** The upstream part of a Debian version: `3.33-3` → `3.33`, `1:2.3-4` → `2.3`; a native version is all upstream. */
export function upstreamVersion(version: string): string {
  const v = withoutEpoch(version);
  const dash = v.lastIndexOf('-');
  return dash < 0 ? v : v.slice(0, dash);
}

/** The .dsc file name of a source package: `fio_3.33-3.dsc`. */
export function dscFileName(source: DebPackage): string {
  return `${source.name}_${withoutEpoch(source.version)}.dsc`;
}

/** One file a .dsc lists under Checksums-Sha256. */
export interface DscFile {
  name: string;
  size: number;
  sha256: string;
}

/** What the build takes from a .dsc: its Source and Version fields and its SHA-256 file list. */
export interface Dsc {
  source: string | undefined;
  version: string | undefined;
  files: DscFile[];
}

/**
 * Parses a .dsc (clearsigned or not): the Source and Version fields and the lines of the
 * Checksums-Sha256 field (` <64 hex> <size> <name>`). Lines outside that field are not files.
 */
export function parseDsc(text: string): Dsc {
  const out: Dsc = { source: undefined, version: undefined, files: [] };
  let inSha256 = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^\s/.test(line) && line.trim() !== '') {
      if (!inSha256) continue;
      const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
      if (m === null) throw new ImageBuildError(`the .dsc has a malformed Checksums-Sha256 line: "${line.trim()}"`);
      // All three groups take part in every match.
      out.files.push({ sha256: m[1] as string, size: Number(m[2]), name: m[3] as string });
      continue;
    }
    inSha256 = /^Checksums-Sha256:\s*$/.test(line);
    const field = /^(Source|Version):\s*(\S+)\s*$/.exec(line);
    if (field?.[1] === 'Source') out.source = field[2];
    if (field?.[1] === 'Version') out.version = field[2];
  }
  return out;
}

/** The upstream tarball among a .dsc's files: `fio_3.33.orig.tar.gz` (or .xz, .bz2). */
export function origTarball(dsc: Dsc, source: DebPackage): DscFile {
  const want = `${source.name}_${upstreamVersion(source.version)}.orig.tar.`;
  const hit = dsc.files.find((f) => f.name.startsWith(want) && /^(gz|xz|bz2)$/.test(f.name.slice(want.length)));
  if (hit === undefined) {
    throw new ImageBuildError(`the .dsc of ${source.name} ${source.version} lists no ${want}{gz,xz,bz2} under Checksums-Sha256 (it lists: ${dsc.files.map((f) => f.name).join(', ') || 'nothing'})`);
  }
  return hit;
}

/** Throws unless `data` has the size and SHA-256 the .dsc lists for `file`. */
export function checkDownload(file: DscFile, data: Uint8Array, url: string): void {
  if (data.length !== file.size) throw new ImageBuildError(`${url}: ${data.length} bytes, the .dsc says ${file.size}; refusing it`);
  const got = createHash('sha256').update(data).digest('hex');
  if (got !== file.sha256) throw new ImageBuildError(`${url}: SHA-256 ${got}, the .dsc says ${file.sha256}; refusing it`);
}

/** The key of a build: the source package and the recipe (configure switches included). */
export function fioBuildKey(source: DebPackage): string {
  return createHash('sha256').update(JSON.stringify({ RECIPE, source, configure: FIO_CONFIGURE_ARGS })).digest('hex').slice(0, 16);
}

/** The cache folder of one build: `<cache>/fio/<version>-<key>`. */
export function fioCacheDir(cacheDir: string, source: DebPackage): string {
  return join(cacheDir, 'fio', `${source.version.replaceAll(':', '%3a')}-${fioBuildKey(source)}`);
}

const BINARY = 'fio';
const RECORD = 'build.json';

interface BuildRecord {
  version: string;
  source: DebPackage;
  key: string;
  buildSeconds: number;
}

/** The cached build of `source`, if any. */
async function readCached(dir: string): Promise<BuiltFio | undefined> {
  try {
    const rec = JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as BuildRecord; // written by this module only, last
    await stat(join(dir, BINARY));
    return { file: join(dir, BINARY), version: rec.version, source: rec.source, key: rec.key };
  } catch {
    return undefined; // absent or damaged: build it
  }
}

/** The newest cached build whose record matches its folder's key (building offline when apt cannot resolve fio). */
export async function newestCachedFio(cacheDir: string): Promise<BuiltFio | undefined> {
  const base = join(cacheDir, 'fio');
  let best: { fio: BuiltFio; mtime: number } | undefined;
  for (const name of await readdir(base).catch((): string[] => [])) {
    const fio = await readCached(join(base, name));
    if (fio === undefined || fio.key !== fioBuildKey(fio.source) || join(base, name) !== fioCacheDir(cacheDir, fio.source)) continue;
    const mtime = (await stat(fio.file)).mtimeMs;
    if (best === undefined || mtime > best.mtime) best = { fio, mtime };
  }
  return best?.fio;
}

/** Returns fio built from `src`, building it when the cache lacks it. */
export async function ensureFio(src: FioSource, dirs: { cacheDir: string; tmpRoot: string }, progress: Progress): Promise<BuiltFio> {
  const outDir = fioCacheDir(dirs.cacheDir, src.source);
  const cached = await readCached(outDir);
  if (cached !== undefined) return cached;

  const started = Date.now();
  progress(`building fio from Debian's source ${src.source.name} ${src.source.version} (${src.poolDir})`);
  const work = await mkdtemp(join(dirs.tmpRoot, 'fio-'));
  try {
    const tree = await fetchSource(src, work);
    const configured = Date.now();
    await buildStep('configure', './configure', [...FIO_CONFIGURE_ARGS], tree);
    progress(`fio: configure took ${((Date.now() - configured) / 1000).toFixed(1)} s; make -j2 fio`);
    await buildStep('make', 'make', ['-j2', BINARY], tree);
    await runTool('strip', [join(tree, BINARY)]);
    const version = (await readFile(join(tree, 'FIO-VERSION-FILE'), 'utf8').catch(() => '')).replace(/^FIO_VERSION\s*=\s*/, '').trim() || `fio-${upstreamVersion(src.source.version)}`;
    const record: BuildRecord = { version, source: src.source, key: fioBuildKey(src.source), buildSeconds: Math.round((Date.now() - started) / 1000) };
    await publish(outDir, work, async (dir) => {
      await rename(join(tree, BINARY), join(dir, BINARY));
      await writeFile(join(dir, RECORD), `${JSON.stringify(record, null, 2)}\n`);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const built = await readCached(outDir);
  if (built === undefined) throw new ImageBuildError(`fio missing from ${outDir} after the build`);
  progress(`built ${built.version} in ${((Date.now() - started) / 1000).toFixed(1)} s (${outDir})`);
  return built;
}

/** Downloads the .dsc and the upstream tarball, checks them, unpacks the tarball; returns the source tree. */
async function fetchSource(src: FioSource, work: string): Promise<string> {
  const dscUrl = new URL(dscFileName(src.source), src.poolDir).href;
  const dsc = parseDsc(Buffer.from(await download(dscUrl)).toString('utf8'));
  if (dsc.source !== src.source.name || dsc.version !== src.source.version) {
    throw new ImageBuildError(`${dscUrl} is source ${dsc.source ?? '?'} ${dsc.version ?? '?'}, apt says ${src.source.name} ${src.source.version}; refusing it`);
  }
  const orig = origTarball(dsc, src.source);
  const origUrl = new URL(orig.name, src.poolDir).href;
  const data = await download(origUrl);
  checkDownload(orig, data, origUrl);
  const tarball = join(work, orig.name);
  await writeFile(tarball, data);
  const tree = join(work, 'src');
  await mkdir(tree);
  // Every upstream tarball has one top folder (fio-3.33/); tar picks the decompressor.
  await runTool('tar', ['-xf', tarball, '-C', tree, '--strip-components', '1', '--no-same-owner']);
  return tree;
}

async function download(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e: unknown) {
    throw new ImageBuildError(`downloading ${url} failed (network?): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!res.ok) throw new ImageBuildError(`downloading ${url} failed: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Runs one build step in the source tree with stdout and stderr together (configure explains its
 * failures on stdout); a failure names the step and carries the output's tail.
 */
export function buildStep(step: string, cmd: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, [...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: withSbin(process.env['PATH']) } });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new HostToolMissingError(cmd, cmd === 'make' ? 'make' : 'fio source tree', { cause: e }) : e);
    });
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const detail = signal === null ? `exit status ${String(code)}` : `killed by ${signal}`;
      const log = Buffer.concat(out).toString('utf8');
      const hint = /gcc: (not found|No such file)|no working compiler|C compiler cannot/i.test(log) ? ' (install gcc: bash scripts/setup.sh)' : '';
      reject(new HostToolFailedError(cmd, args, `${detail}: building fio from Debian's source, step ${step}${hint}`, log));
    });
  });
}

