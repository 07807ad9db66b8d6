// SPDX-License-Identifier: Apache-2.0
/**
 * The manifest checks the schema cannot express, and the normalized platform model they guard.
 *
 * Owns: cross-entry rules (unique VM, device and switch names; unique vsock CIDs and MACs; one
 * vsock device per VM; switches and peers that exist), per-VM rules (enough memory for the
 * built-in image, a boot section that is one of its two forms, a kernel command line that fits,
 * a `ready` pattern that compiles), file checks (kernel, initrd, blk images), and `toModel`, which
 * turns a checked manifest into values with defaults resolved (MiB, bytes, absolute paths, MACs).
 * Does not own: the key/type/range rules (schema.ts), positions in the file (load.ts), nor socket
 * paths and QEMU arguments (plan.ts).
 *
 * Issues carry the manifest path as segments; load.ts finds their line and column.
 */
import { createHash } from 'node:crypto';
import { findKind } from '../../devices/registry.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { GuestCmdlineTooLongError, VmSpecError } from '../errors.js';
import { X86_CMDLINE_MAX_BYTES, checkCmdlineLength, cmdParam, kernelCmdline, scriptParam, watchdogParam } from '../image/cmdline.js';
import { READY_LINE } from '../image/markers.js';
import { DEFAULT_GUEST_KERNEL, type GuestKernel } from '../image/kernels.js';
import {
  BUILTIN_MIN_MEMORY_MIB,
  type WatchdogAction,
  type ManifestBoot,
  type ManifestDevice,
  type ManifestVm,
  type PlatformManifest,
} from './schema.js';
import { formatBytes, memoryMiB } from './units.js';
import { type BusModel, type CanPortModel, checkBuses, toBusModel, toCanPortModel } from './buses.js';
import { errorText } from '../../errors.js';

/** A path into the manifest, as segments: `['vms', 1, 'devices', 2, 'image']`. */
export type IssuePath = ReadonlyArray<string | number>;

/** A problem before positions are known. `at: 'key'` points at the key itself rather than its value. */
export interface RawIssue {
  path: IssuePath;
  message: string;
  at?: 'key' | 'value';
}

/** The least and most memory QEMU takes for a VM (qemuArgs' limits), MiB. */
const MIN_MEMORY_MIB = 16;
const MAX_MEMORY_MIB = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Model: the manifest with every default resolved

/** A device of a VM, defaults resolved. Its kind's own fields stay in `entry` (read through the kind). */
export interface DeviceModel {
  kind: string;
  /** The device's name (the kind when the manifest gives none). */
  name: string;
  /** Its manifest path, `vms[i].devices[j]`. */
  path: string;
  /** For net ports: their switch's. */
  isolation: 'shared' | 'thread' | 'process';
  restart: 'no' | 'on-failure';
  /** The manifest entry as parsed (the kind's schema applied its defaults). */
  entry: ManifestDevice;
}

/** A net port's entry (cross-VM rules: switches and MACs), as the net kind's manifest fields define it. */
export interface NetEntry {
  switch: string;
  mac?: string;
  mtu?: number;
  priority: number;
}

/** A vsock entry (cross-VM rules: CIDs and peers), as the vsock kind's manifest fields define it. */
export interface VsockEntry {
  cid: number;
  socket?: string;
  allowedPeers: string[];
  isolation: 'shared' | 'thread' | 'process';
  restart: 'no' | 'on-failure';
}

/** The entry of a net device. Safe: the net kind's schema parsed it (manifest/schema.ts). */
export const netEntry = (d: ManifestDevice): NetEntry => d as unknown as NetEntry;
/** The entry of a vsock device. Safe: the vsock kind's schema parsed it. */
export const vsockEntry = (d: ManifestDevice): VsockEntry => d as unknown as VsockEntry;

export type BootModel =
  | { kind: 'builtin'; linux: GuestKernel; script?: string; command?: string; cmdline: string[]; ready: string }
  | { kind: 'kernel'; kernel: string; initrd: string; cmdline: string[]; ready?: string };

export interface VmModel {
  name: string;
  path: string;
  memoryMiB: number;
  cpus: number;
  boot: BootModel;
  console: { log?: string; echo: boolean };
  devices: DeviceModel[];
  /** CAN buses it joins over slcan, in order (/dev/hvc0, hvc1, ...). */
  can: CanPortModel[];
  /** Its i6300esb watchdog, if the manifest gives one. */
  watchdog?: { timeoutSeconds: number; action: WatchdogAction };
  /** Its virtio-balloon device, if the manifest gives one. */
  balloon?: { deflateOnOom: boolean; freePageReporting: boolean };
}

export interface SwitchModel {
  name: string;
  path: string;
  mtu: number;
  uplinkTap?: string;
  isolation: 'shared' | 'thread' | 'process';
  restart: 'no' | 'on-failure';
}

/** A checked platform with defaults resolved: what plan.ts lays out and `avp run` starts. */
export interface PlatformModel {
  name: string;
  /** The manifest's folder: relative paths in device entries start there. */
  baseDir: string;
  switches: SwitchModel[];
  buses: BusModel[];
  vms: VmModel[];
}

/** Where relative paths of the manifest start (its folder), and how to look at files. */
export interface CheckContext {
  baseDir: string;
  /** Default: node:fs existsSync (injected so that tests need no files). */
  fileExists?: (path: string) => boolean;
}

/** Manifest path segments → `vms[1].devices[2].image`. */
export function formatPath(path: IssuePath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out === '' ? '(root)' : out;
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Every cross-entry and per-VM rule; returns all issues found (none: the manifest is sound). */
export function checkManifest(m: PlatformManifest): RawIssue[] {
  const issues: RawIssue[] = [];
  const add = (path: IssuePath, message: string, at?: 'key'): void => {
    issues.push(at === undefined ? { path, message } : { path, message, at });
  };
  checkUnique(
    m.switches.map((s, i) => ({ value: s.name, path: ['switches', i, 'name'] })),
    (v, first) => `duplicate switch name '${v}' (also ${formatPath(first)})`,
    add,
  );
  checkUnique(
    m.vms.map((v, i) => ({ value: v.name, path: ['vms', i, 'name'] })),
    (v, first) => `duplicate VM name '${v}' (also ${formatPath(first)})`,
    add,
  );
  const switches = new Map(m.switches.map((s) => [s.name, s]));
  const vmNames = new Set(m.vms.map((v) => v.name));
  const vsockVms = new Map<string, number>();
  m.vms.forEach((vm, i) => {
    if (vm.devices.some((d) => d.kind === 'vsock')) vsockVms.set(vm.name, i);
  });
  m.vms.forEach((vm, i) => {
    checkVm(vm, ['vms', i], add);
    checkUnique(
      vm.devices.map((d, j) => ({ value: deviceName(d), path: d.name === undefined ? ['vms', i, 'devices', j] : ['vms', i, 'devices', j, 'name'] })),
      (v, first) => `duplicate device name '${v}' in VM '${vm.name}' (also ${formatPath(first)}); give each device of a kind a distinct name`,
      add,
    );
    const vsocks = vm.devices.map((d, j) => ({ d, j })).filter(({ d }) => d.kind === 'vsock');
    for (const { j } of vsocks.slice(1)) {
      add(['vms', i, 'devices', j, 'kind'], `VM '${vm.name}' already has a vsock device (devices[${vsocks[0]?.j ?? 0}]); a guest has one context ID`);
    }
    vm.devices.forEach((d, j) => checkDevice(d, ['vms', i, 'devices', j], vm.name, { switches, vmNames, vsockVms }, add));
  });
  checkVsockPeers(m, add);
  checkBuses(m, add);
  checkUnique(
    m.vms.flatMap((vm, i) => vm.devices.flatMap((d, j) => (d.kind === 'vsock' ? [{ value: String(vsockEntry(d).cid), path: ['vms', i, 'devices', j, 'cid'] }] : []))),
    (v, first) => `duplicate vsock cid ${v} (also ${formatPath(first)}); each guest needs its own context ID`,
    add,
  );
  checkUnique(
    m.vms.flatMap((vm, i) =>
      vm.devices.flatMap((d, j) =>
        d.kind === 'net'
          ? [{ value: (netEntry(d).mac ?? derivedMac(m.name, vm.name, deviceName(d))).toLowerCase(), path: netEntry(d).mac === undefined ? ['vms', i, 'devices', j] : ['vms', i, 'devices', j, 'mac'] }]
          : [],
      ),
    ),
    (v, first) => `duplicate MAC address ${v} (also ${formatPath(first)})`,
    add,
  );
  return issues;
}

/** File checks: the kernel and initrd exist, and each device kind's own (a blk image exists or has a `size`). */
export function checkFiles(m: PlatformManifest, ctx: CheckContext): RawIssue[] {
  const exists = ctx.fileExists ?? existsSync;
  const issues: RawIssue[] = [];
  m.buses.forEach((b, i) => {
    if (b.replay !== undefined && !exists(resolve(ctx.baseDir, b.replay.file))) issues.push({ path: ['buses', i, 'replay', 'file'], message: `file not found: ${resolve(ctx.baseDir, b.replay.file)}` });
  });
  m.vms.forEach((vm, i) => {
    for (const key of ['kernel', 'initrd'] as const) {
      const p = vm.boot[key];
      if (p !== undefined && !exists(resolve(ctx.baseDir, p))) {
        issues.push({ path: ['vms', i, 'boot', key], message: `file not found: ${resolve(ctx.baseDir, p)}` });
      }
    }
    vm.devices.forEach((d, j) => {
      const at: IssuePath = ['vms', i, 'devices', j];
      findKind(d.kind)?.manifest.checkFiles?.(d, { resolve: (p) => resolve(ctx.baseDir, p), exists }, (path, message, key) =>
        issues.push({ path: [...at, ...path], message, ...(key === undefined ? {} : { at: key }) }),
      );
    });
  });
  return issues;
}

type Add = (path: IssuePath, message: string, at?: 'key') => void;

function checkUnique(entries: ReadonlyArray<{ value: string; path: IssuePath }>, message: (value: string, first: IssuePath) => string, add: Add): void {
  const seen = new Map<string, IssuePath>();
  for (const e of entries) {
    const first = seen.get(e.value);
    if (first === undefined) seen.set(e.value, e.path);
    else add(e.path, message(e.value, first));
  }
}

function checkVm(vm: ManifestVm, at: IssuePath, add: Add): void {
  const mib = memoryMiB(vm.memory);
  const builtin = vm.boot.kernel === undefined && vm.boot.initrd === undefined;
  if (mib === undefined) add([...at, 'memory'], `expected a whole number of MiB; got ${JSON.stringify(vm.memory)}`);
  else if (mib < MIN_MEMORY_MIB || mib > MAX_MEMORY_MIB) add([...at, 'memory'], `expected ${MIN_MEMORY_MIB} MiB to 1 TiB; got ${formatBytes(mib * 2 ** 20)}`);
  else if (builtin && mib < BUILTIN_MIN_MEMORY_MIB) {
    add([...at, 'memory'], `${formatBytes(mib * 2 ** 20)} is too small: the built-in guest image needs at least ${BUILTIN_MIN_MEMORY_MIB} MiB`);
  }
  checkBoot(vm.boot, [...at, 'boot'], add, vm.watchdog === undefined ? [] : [watchdogParam(vm.watchdog.timeout)]);
}

/** `initParams`: what the VM's own settings add to the built-in image's command line (watchdog). */
function checkBoot(boot: ManifestBoot, at: IssuePath, add: Add, initParams: readonly string[]): void {
  const custom = boot.kernel !== undefined || boot.initrd !== undefined;
  if (custom) {
    if (boot.image !== undefined) add([...at, 'image'], 'give either image: builtin or kernel and initrd, not both', 'key');
    if (boot.kernel === undefined) add([...at], 'missing kernel: an initrd needs the kernel it boots with');
    if (boot.initrd === undefined) add([...at], 'missing initrd: give the initramfs for kernel (AVP boots without a disk root)');
    for (const key of ['script', 'command', 'linux'] as const) {
      if (boot[key] !== undefined) add([...at, key], `${key} runs in the built-in image only; with your own kernel, put the work in its initrd`, 'key');
    }
  }
  if (boot.script !== undefined && boot.command !== undefined) add([...at, 'command'], 'give either script or command, not both', 'key');
  const params = splitCmdline(boot.cmdline ?? '');
  if (params === undefined) add([...at, 'cmdline'], 'expected kernel parameters; a double quote is not closed');
  if (boot.ready !== undefined) {
    try {
      new RegExp(boot.ready);
    } catch (e: unknown) {
      add([...at, 'ready'], `expected a regular expression: ${errorText(e)}`);
    }
  }
  if (custom || params === undefined) return;
  // The built-in image takes its test on the kernel command line, which has a hard limit.
  const extra: string[] = [...params, ...initParams];
  try {
    if (boot.command !== undefined) extra.push(cmdParam(boot.command));
  } catch (e: unknown) {
    if (!(e instanceof VmSpecError)) throw e;
    add([...at, 'command'], 'expected one shell command without double quotes or line breaks (use script: for more)');
    return;
  }
  if (boot.script !== undefined) extra.push(scriptParam(boot.script));
  try {
    checkCmdlineLength(kernelCmdline(extra), X86_CMDLINE_MAX_BYTES);
  } catch (e: unknown) {
    if (!(e instanceof GuestCmdlineTooLongError)) throw e;
    const field = boot.script !== undefined ? 'script' : boot.command !== undefined ? 'command' : 'cmdline';
    const over = field === 'script' ? Math.ceil(((e.length - e.limit) * 3) / 4) : e.length - e.limit;
    const how = field === 'script' ? 'the script travels on it base64-encoded, 4 bytes for every 3' : `${field} travels on it`;
    add([...at, field], `the kernel command line would be ${e.length} bytes, over the kernel's limit of ${e.limit} (${how}); shorten it by at least ${over} bytes`);
  }
}

interface DeviceContext {
  switches: ReadonlyMap<string, { mtu: number }>;
  vmNames: ReadonlySet<string>;
  /** VMs with a vsock device → their index. */
  vsockVms: ReadonlyMap<string, number>;
}

function checkDevice(d: ManifestDevice, at: IssuePath, vmName: string, ctx: DeviceContext, add: Add): void {
  // The schema accepted only kinds of the registry.
  const kind = findKind(d.kind);
  if (kind === undefined) return;
  if (d.restart === 'on-failure' && kind.frontend.reconnect !== true) {
    add(
      [...at, 'restart'],
      `on-failure needs QEMU to reconnect to the restarted back-end, which ${kind.frontend.qemuDevice} cannot${typeof kind.frontend.reconnect === 'string' ? ` before QEMU ${kind.frontend.reconnect}` : ''} (with a reconnecting socket it fails at start-up); use restart: no`,
    );
  }
  kind.manifest.check?.(d, (path, message, key) => add([...at, ...path], message, key));
  // Cross-VM rules: a net port's switch, a vsock device's peers.
  if (d.kind === 'net') checkNetPort(netEntry(d), at, ctx, add);
  if (d.kind === 'vsock') checkPeers(vsockEntry(d), at, vmName, ctx, add);
}

function checkNetPort(d: NetEntry, at: IssuePath, ctx: DeviceContext, add: Add): void {
  const sw = ctx.switches.get(d.switch);
  if (sw === undefined) {
    const known = [...ctx.switches.keys()];
    add([...at, 'switch'], known.length === 0 ? `unknown switch '${d.switch}': no switches are defined (add it under switches:)` : `unknown switch '${d.switch}'; switches: ${known.join(', ')}`);
  } else if (d.mtu !== undefined && d.mtu > sw.mtu) {
    add([...at, 'mtu'], `${d.mtu} is larger than switch '${d.switch}' forwards (mtu ${sw.mtu})`);
  }
}

function checkPeers(d: VsockEntry, at: IssuePath, vmName: string, ctx: DeviceContext, add: Add): void {
  d.allowedPeers.forEach((peer, k) => {
    const p = [...at, 'allowedPeers', k];
    if (peer === vmName) add(p, `'${peer}' is this VM; list the other VMs it may talk to`);
    else if (!ctx.vmNames.has(peer)) add(p, `unknown VM '${peer}'; VMs with a vsock device: ${[...ctx.vsockVms.keys()].join(', ')}`);
    else if (!ctx.vsockVms.has(peer)) add(p, `VM '${peer}' has no vsock device to talk to`);
  });
  checkUnique(
    d.allowedPeers.map((p, k) => ({ value: p, path: [...at, 'allowedPeers', k] })),
    (v, first) => `'${v}' is listed twice (also ${formatPath(first)})`,
    add,
  );
}

/**
 * vsock peers must allow each other (the back-end passes a connection only when both
 * allow-lists agree), and peers share one back-end, so their isolation and restart must agree.
 */
function checkVsockPeers(m: PlatformManifest, add: Add): void {
  const byVm = new Map<string, { d: VsockEntry; at: IssuePath }>();
  m.vms.forEach((vm, i) =>
    vm.devices.forEach((d, j) => {
      if (d.kind === 'vsock' && !byVm.has(vm.name)) byVm.set(vm.name, { d: vsockEntry(d), at: ['vms', i, 'devices', j] });
    }),
  );
  for (const [name, { d, at }] of byVm) {
    d.allowedPeers.forEach((peer, k) => {
      const other = byVm.get(peer);
      if (other === undefined || peer === name) return; // reported by checkDevice
      if (!other.d.allowedPeers.includes(name)) {
        add([...at, 'allowedPeers', k], `'${peer}' does not allow '${name}' back (add it to ${formatPath([...other.at, 'allowedPeers'])}); vsock needs both sides to allow`);
      }
      for (const key of ['isolation', 'restart'] as const) {
        if (d[key] !== other.d[key] && formatPath(at) > formatPath(other.at)) {
          add([...at, key], `${key} must match its peer's (${formatPath([...other.at, key])} is '${other.d[key]}'): vsock peers share one back-end`, 'key');
        }
      }
    });
  }
}

/** The name a device goes by: its `name`, else its kind. */
export function deviceName(d: ManifestDevice): string {
  return d.name ?? d.kind;
}

/**
 * The MAC a net device gets when the manifest gives none: QEMU's 52:54:00 prefix (locally
 * administered, unicast) and three bytes of a hash of platform/vm/device, so that it is stable
 * across runs and distinct between devices (a collision is reported as a duplicate).
 */
export function derivedMac(platform: string, vm: string, device: string): string {
  const h = createHash('sha256').update(`${platform}/${vm}/${device}`).digest();
  return ['52', '54', '00', ...[...h.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Kernel parameters → words, keeping `name="value with spaces"` as one (the form the kernel
 * parses). Undefined when a double quote is not closed.
 */
export function splitCmdline(text: string): string[] | undefined {
  const words: string[] = [];
  let last = 0;
  for (const m of text.matchAll(/(?:[^\s"]+|"[^"]*")+/g)) {
    // Anything between words other than white space is a quote the pattern could not close.
    if (text.slice(last, m.index).trim() !== '') return undefined;
    words.push(m[0]);
    last = m.index + m[0].length;
  }
  return text.slice(last).trim() === '' ? words : undefined;
}

// ---------------------------------------------------------------------------------------------
// Model

/** The checked manifest with defaults resolved. Call only when checkManifest found nothing. */
export function toModel(m: PlatformManifest, ctx: CheckContext): PlatformModel {
  const switches = m.switches.map((s, i): SwitchModel => ({
    name: s.name,
    path: formatPath(['switches', i]),
    mtu: s.mtu,
    ...(s.uplink === undefined ? {} : { uplinkTap: s.uplink.tap }),
    isolation: s.isolation,
    restart: s.restart,
  }));
  const vms = m.vms.map((vm, i): VmModel => {
    const at = (rest: IssuePath) => formatPath(['vms', i, ...rest]);
    const cmdline = splitCmdline(vm.boot.cmdline ?? '') ?? [];
    const boot: BootModel =
      vm.boot.kernel !== undefined && vm.boot.initrd !== undefined
        ? {
            kind: 'kernel',
            kernel: resolve(ctx.baseDir, vm.boot.kernel),
            initrd: resolve(ctx.baseDir, vm.boot.initrd),
            cmdline,
            ...(vm.boot.ready === undefined ? {} : { ready: vm.boot.ready }),
          }
        : {
            kind: 'builtin',
            // 6.12 and 6.1 may come as YAML numbers; String() gives the series' spelling.
            linux: vm.boot.linux === undefined ? DEFAULT_GUEST_KERNEL : (String(vm.boot.linux) as GuestKernel),
            ...(vm.boot.script === undefined ? {} : { script: vm.boot.script }),
            ...(vm.boot.command === undefined ? {} : { command: vm.boot.command }),
            cmdline,
            ready: vm.boot.ready ?? READY_LINE.source,
          };
    const devices = vm.devices.map((d, j): DeviceModel => {
      // A port of a shared back-end (a net port: its switch's) runs where that back-end runs.
      const sw = d.kind === 'net' ? switches.find((x) => x.name === netEntry(d).switch) : undefined;
      return {
        kind: d.kind,
        name: deviceName(d),
        path: at(['devices', j]),
        isolation: d.isolation ?? sw?.isolation ?? 'shared',
        restart: d.restart ?? sw?.restart ?? 'no',
        entry: d,
      };
    });
    return {
      name: vm.name,
      path: at([]),
      // checkManifest refused memory values memoryMiB cannot convert.
      memoryMiB: memoryMiB(vm.memory) as number,
      cpus: vm.cpus,
      boot,
      console: { ...(vm.console.log === undefined ? {} : { log: vm.console.log }), echo: vm.console.echo },
      devices,
      can: vm.can.map((p, j) => toCanPortModel(p, at(['can', j]))),
      ...(vm.watchdog === undefined ? {} : { watchdog: { timeoutSeconds: vm.watchdog.timeout, action: vm.watchdog.action } }),
      ...(vm.balloon === undefined ? {} : { balloon: { deflateOnOom: vm.balloon.deflateOnOom, freePageReporting: vm.balloon.freePageReporting } }),
    };
  });
  return { name: m.name, baseDir: ctx.baseDir, switches, buses: m.buses.map(toBusModel), vms };
}
