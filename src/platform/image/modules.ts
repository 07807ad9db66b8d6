// SPDX-License-Identifier: Apache-2.0
/**
 * Kernel modules for the guest image: the load order computed from the kernel's own `modules.dep`
 * and `modules.builtin`, and reading (decompressing) `.ko`, `.ko.xz`, `.ko.zst` and `.ko.gz` files.
 *
 * Owns: parsing those two files, the dependency walk, module naming rules. Does not own: where the
 * files come from (apt.ts extracts the kernel package and runs depmod) nor the image layout.
 *
 * The guest has no modprobe database, so `/init` loads plain files with insmod in the order
 * computed here: every module after all the modules it depends on.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DEVICE_KINDS } from '../../devices/registry.js';
import { KernelModuleError } from '../errors.js';
import { runTool } from './tools.js';

/** The virtio transport every guest needs: virtio over PCI. */
export const VIRTIO_TRANSPORT_MODULES: readonly string[] = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci'];

/**
 * Drivers of AVPS devices the image carries besides the device kinds' own: those of devices whose
 * kinds have not landed yet (console, input with evdev, gpu, fs, sound), the
 * CAN socket layer with vcan and slcan, QEMU's emulated i6300esb watchdog and virtio-balloon. A kind that lands
 * lists its driver in `guestModules`; the union below loads each once.
 */
export const AVPS_GUEST_MODULES: readonly string[] = [
  // console, input (+ evdev for /dev/input/event*), gpu, fs, sound
  'virtio_console',
  'virtio_input',
  'evdev',
  'virtio-gpu',
  'virtiofs',
  'virtio_snd',
  // CAN: the socket layer, a virtual bus and serial-line CAN for tests
  'can',
  'can-raw',
  'vcan',
  'slcan',
  // watchdog: QEMU's emulated i6300esb (AVPS names a watchdog; there is no virtio one)
  'i6300esb',
  // memory the platform can reclaim (manifest balloon:)
  'virtio_balloon',
];

/**
 * The drivers of every AVPS device AVP's guests use: virtio over PCI first, then each device
 * kind's (DeviceKind.guestModules), then the other AVPS drivers. Modules a kernel has built in are
 * skipped (6.12 has virtio, virtio_pci, virtio_console and virtiofs built in); with the default
 * list, a module a kernel lacks is reported, not an error (6.1 has no virtio_snd; gpio-virtio and
 * i2c-virtio are built for 6.12 only, extra-modules.ts).
 */
export const DEFAULT_GUEST_MODULES: readonly string[] = [...new Set([...VIRTIO_TRANSPORT_MODULES, ...DEVICE_KINDS.flatMap((k) => k.guestModules), ...AVPS_GUEST_MODULES])];

/** modules.dep as a map: module path (relative to lib/modules/<version>) → its dependencies' paths. */
export type ModulesDep = ReadonlyMap<string, readonly string[]>;

export interface ModuleFile {
  /** The module's name as insmod and lsmod spell it from its file (`virtio-rng`, `virtio_blk`). */
  name: string;
  /** Path relative to lib/modules/<version>, as modules.dep spells it. */
  path: string;
}

export interface LoadPlan {
  /** Modules to insmod, in order: each after everything it depends on. */
  order: ModuleFile[];
  /** Requested modules that the kernel has built in, so there is nothing to load. */
  builtin: string[];
  /** Requested modules this kernel has neither as a file nor built in (only with `skipAbsent`). */
  absent: string[];
}

/** Kernel module names treat '-' and '_' as the same character (kmod does the same). */
export function normalizeModuleName(name: string): string {
  return name.replaceAll('-', '_');
}

/** `kernel/drivers/char/hw_random/virtio-rng.ko.xz` → `virtio-rng`. */
export function moduleNameFromPath(path: string): string {
  return basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, '');
}

/**
 * Parses modules.dep: one line per module, `path: dep dep …`. Blank lines are ignored; a line
 * without the colon is a malformed file, reported with its line number.
 */
export function parseModulesDep(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SyntaxError(`modules.dep line ${i + 1} has no 'path:' prefix: ${JSON.stringify(line)}`);
    const deps = line
      .slice(colon + 1)
      .split(/\s+/)
      .filter((d) => d !== '');
    out.set(line.slice(0, colon), deps);
  }
  return out;
}

/** Parses modules.builtin (one path per line) into the set of normalized module names. */
export function parseModulesBuiltin(text: string): Set<string> {
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line !== '') out.add(normalizeModuleName(moduleNameFromPath(line)));
  }
  return out;
}

/**
 * Orders the requested modules and all their dependencies for insmod. Requested modules that are
 * built in are reported, not loaded; a module that is in neither file is an error, as is a cycle.
 * The walk is depth-first in request order, and visits a module's dependencies from the end of
 * its modules.dep list, as modprobe does, so the result is deterministic.
 */
export function resolveLoadOrder(
  requested: readonly string[],
  dep: ModulesDep,
  builtin: ReadonlySet<string>,
  kernelVersion: string,
  options: { skipAbsent?: boolean } = {},
): LoadPlan {
  const byName = new Map<string, string>();
  for (const path of dep.keys()) byName.set(normalizeModuleName(moduleNameFromPath(path)), path);

  const order: ModuleFile[] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const builtinHits: string[] = [];
  const absent: string[] = [];

  const visit = (path: string): void => {
    if (done.has(path)) return;
    if (onPath.includes(path)) throw KernelModuleError.cycle([...onPath.slice(onPath.indexOf(path)), path].map(moduleNameFromPath));
    const deps = dep.get(path);
    // A dependency named in modules.dep without a line of its own means a broken depmod run.
    if (deps === undefined) throw KernelModuleError.notFound(moduleNameFromPath(path), kernelVersion);
    onPath.push(path);
    for (let i = deps.length - 1; i >= 0; i--) visit(deps[i] as string); // i is within deps
    onPath.pop();
    done.add(path);
    order.push({ name: moduleNameFromPath(path), path });
  };

  for (const name of requested) {
    const key = normalizeModuleName(name);
    const path = byName.get(key);
    if (path !== undefined) visit(path);
    else if (builtin.has(key)) {
      if (!builtinHits.includes(name)) builtinHits.push(name);
    } else if (options.skipAbsent === true) {
      if (!absent.includes(name)) absent.push(name);
    } else throw KernelModuleError.notFound(name, kernelVersion);
  }
  return { order, builtin: builtinHits, absent };
}

export type ModuleCompression = 'none' | 'xz' | 'zst' | 'gz';

export function compressionOf(path: string): ModuleCompression {
  if (path.endsWith('.ko.xz')) return 'xz';
  if (path.endsWith('.ko.zst')) return 'zst';
  if (path.endsWith('.ko.gz')) return 'gz';
  return 'none';
}

/**
 * Reads a module file and returns the plain ELF object that insmod needs. The guest's busybox
 * insmod hands the bytes to init_module(2), which does not decompress, so it happens here.
 * xz and zstd go through the host tools (Node has no xz, and zstd only from Node 22.15).
 */
export async function readModuleFile(file: string): Promise<Buffer> {
  const data = await readFile(file);
  switch (compressionOf(file)) {
    case 'none':
      return data;
    case 'gz':
      return gunzipSync(data);
    case 'xz':
      return (await runTool('xz', ['-dc'], { input: data })).stdout;
    case 'zst':
      return (await runTool('zstd', ['-dc'], { input: data })).stdout;
  }
}

/** Reads modules.dep and modules.builtin from `<modulesDir>` (that is, lib/modules/<version>). */
export async function readModuleIndex(modulesDir: string): Promise<{ dep: Map<string, string[]>; builtin: Set<string> }> {
  const dep = parseModulesDep(await readFile(join(modulesDir, 'modules.dep'), 'utf8'));
  let builtinText = '';
  try {
    builtinText = await readFile(join(modulesDir, 'modules.builtin'), 'utf8');
  } catch (e: unknown) {
    // modules.builtin is optional: kmod reads its absence as "nothing built in". fs errors are
    // ErrnoExceptions, whose code is all that is read here.
    if (!(e instanceof Error && (e as NodeJS.ErrnoException).code === 'ENOENT')) throw e;
  }
  return { dep, builtin: parseModulesBuiltin(builtinText) };
}
