// SPDX-License-Identifier: Apache-2.0
/**
 * `planPlatform`: the layout of one run of a platform, as a pure function of the checked manifest
 * (PlatformModel), the run directory and the guest image. `avp qemu-args` prints it and `avp run`
 * carries it out, so the two cannot disagree.
 *
 * Owns: file and socket names in the run directory, which back-end serves which socket with
 * which options (the device descriptions the registry builds from), and each VM's VmSpec (whose
 * argv qemuArgs spells). Does not own: starting anything (run/), the QEMU option syntax (qemu.ts).
 *
 * Run directory layout:
 *   <runDir>/<vm>/<device>.sock    vhost-user socket of each device (net: served by the switch)
 *   <runDir>/<vm>/<device>.log     back-end log of each rng, blk and vsock device
 *   <runDir>/<vm>/<device>.img     scratch disk of a blk device that has a size and no image
 *   <runDir>/<vm>/<device>.vsock   host side of a vsock device (unless its `socket` says otherwise)
 *   <runDir>/<vm>/console.log      the VM's console (unless `console.log` says otherwise)
 *   <runDir>/<vm>/qmp.sock         QMP of a VM with a watchdog or a balloon (avp run listens, QEMU connects)
 *   <runDir>/_switch/<name>.log    back-end log of each switch
 *   <runDir>/<vm>/can-<bus>.sock   the CAN bus node a VM's virtio console port connects to
 *   <runDir>/_canbus/<name>.log    back-end log of each CAN bus; <name>.candump its frames;
 *                                  <name>.sock its host socket
 *   <runDir>/run.log               what avp run reported
 *   <runDir>/control.sock          the run's control socket (avp ui; docs/control-protocol.md)
 *   <runDir>/reports/*.html        reports the dashboard links (conformance, benchmarks), when present
 */
import { isAbsolute, join, resolve } from 'node:path';
import { kindOf, type DeviceSpec } from '../../devices/registry.js';
import { vhostUserDevice } from '../attach.js';
import { PlatformPlanError } from '../errors.js';
import { cmdParam, scriptParam, watchdogParam } from '../image/cmdline.js';
import { qemuArgs, type Accel, type VhostUserVmDevice, type VmDevice, type VmSpec } from '../qemu.js';
import { derivedMac, netEntry, vsockEntry, type PlatformModel, type VmModel } from './checks.js';
import type { QemuVersion } from '../qemu-caps.js';
import type { CanBusConfig } from '../canbus/index.js';
import { CANBUS_DIR, type PlannedCanNode, busConfig } from './buses.js';
import type { GuestKernel } from '../image/kernels.js';
import type { WatchdogAction } from './schema.js';

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
/** Seconds between QEMU's reconnect attempts to a back-end that is restarted on failure. */
export const RECONNECT_SECONDS = 1;

/** The built-in guest image, as buildGuestImage returns it. */
export interface GuestImageRef {
  kernel: string;
  initramfs: string;
  cmdlineLimit?: number;
}

export interface PlanOptions {
  /** Absolute path of the run directory. */
  runDir: string;
  /** Needed when a VM boots the built-in image. */
  image?: GuestImageRef;
  /** The built-in image per kernel series (`boot.linux`); a series not here boots `image`. */
  images?: Partial<Record<GuestKernel, GuestImageRef>>;
  /** Default 'tcg'. */
  accel?: Accel;
  /** The QEMU the VMs will run on (argv quirks); unknown: QEMU 7.2's. */
  qemuVersion?: QemuVersion;
}

/** One vhost-user socket a back-end serves. */
export interface PortPlan {
  /** `<vm>/<device>`: how logs, events and metrics name it. */
  name: string;
  vm: string;
  device: string;
  socket: string;
  /** What the back-end builds for this socket (DEVICE_KINDS name and plain options). */
  spec: DeviceSpec;
}

/**
 * One back-end: a thread or process of its own, serving one socket (a device) or several (the
 * ports of a switch; the vsock devices of VMs that talk to each other, which must share one
 * back-end because guest-to-guest vsock traffic is passed inside it).
 */
export interface BackendPlan {
  /** `<vm>/<device>` for a device, `switch/<name>` for a switch, `vsock/<vm>+<vm>...` for a vsock group, `canbus/<name>` for a CAN bus. */
  id: string;
  role: 'device' | 'switch' | 'vsock-group' | 'canbus';
  /** The device kind (`net` for a switch, `canbus` for a CAN bus, which is not a device). */
  kind: string;
  /** Its manifest path, for messages (`vms[0].devices[1]`, `switches[0]`; a group: its first device). */
  path: string;
  isolation: 'shared' | 'thread' | 'process';
  restart: 'no' | 'on-failure';
  log: string;
  ports: PortPlan[];
  /** VMs that use it: they are stopped when it fails for good. */
  vms: string[];
  /** role 'canbus': what the bus serves (its nodes are `ports`, in the same order). */
  canbus?: CanBusConfig;
}

export interface VmPlan {
  name: string;
  path: string;
  dir: string;
  spec: VmSpec;
  /** qemuArgs(spec): the argv without the program. */
  argv: string[];
  /** Regular expression (source) of the line that shows the VM is up, if the manifest has one. */
  ready?: string;
  /** Whether it boots the built-in image (its `AVP-GUEST: EXIT n` line gives the script status). */
  builtin: boolean;
  consoleLog: string;
  echo: boolean;
  /** Back-ends it connects to (BackendPlan ids). */
  backends: string[];
  /** The QMP socket avp run listens on and QEMU connects to (VMs with a watchdog or a balloon). */
  qmp?: string;
  /** Its watchdog: `restart-vm` is QEMU's poweroff followed by avp run starting the VM again. */
  watchdog?: { timeoutSeconds: number; action: WatchdogAction };
  /** Whether it has a balloon (the control socket's `balloon` method works on it). */
  balloon: boolean;
}

export interface PlatformPlan {
  name: string;
  runDir: string;
  vms: VmPlan[];
  backends: BackendPlan[];
  /** blk images to create (sparse, `sizeBytes`) when they do not exist. */
  disks: Array<{ path: string; sizeBytes: number; owner: string }>;
  /** Every vhost-user socket; avp run creates and removes them. */
  sockets: string[];
  /** Sockets back-ends create (vsock host sides); avp run removes them at the end. */
  hostSockets: string[];
  /** Folders to create, parents first. */
  dirs: string[];
  /** The run's own log. */
  runLog: string;
  /** The run's control socket (platform/run/control-socket.ts). */
  controlSocket: string;
}

/**
 * Lays out a run. Pure: no file-system access.
 * @throws PlatformPlanError when a socket path is too long for the run directory or a VM needs the
 *   built-in image and none was given; VmSpecError if a VM spec is refused (checks.ts should
 *   have caught it).
 */
export function planPlatform(model: PlatformModel, options: PlanOptions): PlatformPlan {
  const runDir = options.runDir;
  if (!isAbsolute(runDir)) throw new PlatformPlanError(`the run directory must be an absolute path; got ${runDir}`);
  const backends: BackendPlan[] = [];
  const disks: PlatformPlan['disks'] = [];
  const hostSockets: string[] = [];
  const switchPorts = new Map<string, PortPlan[]>();
  const switchVms = new Map<string, Set<string>>();
  const busNodes = new Map<string, PlannedCanNode[]>();
  const joinBus = (bus: string, node: PlannedCanNode): void => void busNodes.set(bus, [...(busNodes.get(bus) ?? []), node]);
  const busReconnect = (bus: string) => (model.buses.find((b) => b.name === bus)?.restart === 'on-failure' ? { reconnect: RECONNECT_SECONDS } : {});
  const socketOf = (vm: string, device: string): string => join(runDir, vm, `${device}.sock`);
  const vsockCid = new Map<string, number>();
  for (const vm of model.vms) for (const d of vm.devices) if (d.kind === 'vsock') vsockCid.set(vm.name, vsockEntry(d.entry).cid);
  const groupOf = vsockGroups(model);
  const groups = new Map<string, BackendPlan>();
  const attach = { ...(options.qemuVersion === undefined ? {} : { qemuVersion: `${options.qemuVersion.major}.${options.qemuVersion.minor}` }) };

  const vms = model.vms.map((vm): VmPlan => {
    const dir = join(runDir, vm.name);
    const vmBackends: string[] = [];
    const devices = vm.devices.map((d): VmDevice => {
      const kind = kindOf(d.kind);
      const socket = socketOf(vm.name, d.name);
      const port = (opts: Record<string, unknown>): PortPlan => ({ name: `${vm.name}/${d.name}`, vm: vm.name, device: d.name, socket, spec: { kind: d.kind, options: opts } });
      const reconnect = d.restart === 'on-failure' ? { reconnect: RECONNECT_SECONDS } : {};
      let planned = kind.manifest.plan(d.entry, {
        path: d.path,
        vm: vm.name,
        name: d.name,
        vmDir: dir,
        resolveManifestPath: (p) => (isAbsolute(p) ? p : resolve(model.baseDir, p)),
        resolveRunPath: (p) => resolve(runDir, p),
      });
      for (const f of planned.files ?? []) disks.push({ path: f.path, sizeBytes: f.sizeBytes, owner: d.path });
      hostSockets.push(...(planned.hostSockets ?? []));

      // Cross-VM: a net port is served by its switch's back-end, which gets the switch-wide options.
      if (d.kind === 'net') {
        const n = netEntry(d.entry);
        const sw = model.switches.find((x) => x.name === n.switch);
        const mac = (n.mac ?? derivedMac(model.name, vm.name, d.name)).toLowerCase();
        const opts = { ...defined(planned.options), mac, mtu: sw?.mtu ?? n.mtu ?? 1500, ...(sw?.uplinkTap === undefined ? {} : { uplinkTap: sw.uplinkTap }) };
        const id = `switch/${n.switch}`;
        switchPorts.set(n.switch, [...(switchPorts.get(n.switch) ?? []), port(opts)]);
        switchVms.set(n.switch, (switchVms.get(n.switch) ?? new Set()).add(vm.name));
        if (!vmBackends.includes(id)) vmBackends.push(id);
        // The guest's MTU is the port's own (at most the switch's), through QEMU's host_mtu.
        return ringLayout(vhostUserDevice('net', socket, { mac, mtu: n.mtu ?? sw?.mtu ?? 1500 }, { ...attach, ...reconnect }), d.entry);
      }
      // Cross-VM: a virtio-can device's back-end joins its bus through a node socket the bus serves.
      const bus = d.kind === 'can' && typeof d.entry['bus'] === 'string' ? d.entry['bus'] : undefined;
      if (bus !== undefined) {
        const busSocket = join(dir, `${d.name}.bus.sock`);
        joinBus(bus, { name: `${vm.name}-${d.name}`, socket: busSocket, vm: vm.name, portName: `${vm.name}/${d.name}.bus` });
        planned = { ...planned, options: { ...planned.options, busSocket } };
        if (!vmBackends.includes(`canbus/${bus}`)) vmBackends.push(`canbus/${bus}`);
      }
      const device = ringLayout(vhostUserDevice(d.kind, socket, planned.options, { ...attach, ...reconnect }), d.entry);
      const id = `${vm.name}/${d.name}`;
      vmBackends.push(id);
      // Cross-VM: vsock peers by CID (allowed both ways); peers share one back-end (a group).
      if (d.kind === 'vsock') {
        const v = vsockEntry(d.entry);
        const opts = { ...planned.options, ...(v.allowedPeers.length === 0 ? {} : { allowPeer: v.allowedPeers.map((p) => vsockCid.get(p) ?? 0) }) };
        const members = groupOf.get(vm.name) ?? [vm.name];
        if (members.length > 1) {
          const gid = `vsock/${members.join('+')}`;
          vmBackends[vmBackends.length - 1] = gid;
          const group: BackendPlan = groups.get(gid) ?? {
            id: gid,
            role: 'vsock-group',
            kind: 'vsock',
            path: d.path,
            isolation: d.isolation,
            restart: d.restart,
            log: join(runDir, '_vsock', `${members.join('+')}.log`),
            ports: [],
            vms: members,
          };
          if (!groups.has(gid)) {
            groups.set(gid, group);
            backends.push(group);
          }
          group.ports.push(port(opts));
          return device;
        }
        backends.push({ id, role: 'device', kind: d.kind, path: d.path, isolation: d.isolation, restart: d.restart, log: join(dir, `${d.name}.log`), ports: [port(opts)], vms: [vm.name] });
        return device;
      }
      backends.push({ id, role: 'device', kind: d.kind, path: d.path, isolation: d.isolation, restart: d.restart, log: join(dir, `${d.name}.log`), ports: [port(planned.options)], vms: [vm.name] });
      return device;
    });
    // CAN buses over slcan: one virtio-serial controller, a virtconsole port per bus (hvc0, hvc1, ...).
    if (vm.can.length > 0) {
      devices.push({
        kind: 'virtio-serial',
        ports: vm.can.map((p) => {
          const socket = join(dir, `can-${p.bus}.sock`);
          joinBus(p.bus, { name: vm.name, socket, vm: vm.name, portName: `${vm.name}/can-${p.bus}`, receive: p.receive, send: p.send, ...(p.rate === undefined ? {} : { rate: p.rate }) });
          if (!vmBackends.includes(`canbus/${p.bus}`)) vmBackends.push(`canbus/${p.bus}`);
          return { socket, name: `avp.can.${p.bus}`, console: true, ...busReconnect(p.bus) };
        }),
      });
    }
    const qmp = vm.watchdog !== undefined || vm.balloon !== undefined ? join(dir, 'qmp.sock') : undefined;
    const spec = vmSpec(vm, devices, options, qmp);
    return {
      name: vm.name,
      path: vm.path,
      dir,
      spec,
      argv: qemuArgs(spec),
      ...(vm.boot.ready === undefined ? {} : { ready: vm.boot.ready }),
      builtin: vm.boot.kind === 'builtin',
      consoleLog: vm.console.log === undefined ? join(dir, 'console.log') : resolve(runDir, vm.console.log),
      echo: vm.console.echo,
      backends: vmBackends,
      ...(qmp === undefined ? {} : { qmp }),
      ...(vm.watchdog === undefined ? {} : { watchdog: { ...vm.watchdog } }),
      balloon: vm.balloon !== undefined,
    };
  });

  for (const sw of model.switches) {
    const ports = switchPorts.get(sw.name);
    // A switch no VM uses still runs when it has an uplink (host traffic may cross it); otherwise
    // it has nothing to do.
    if (ports === undefined && sw.uplinkTap === undefined) continue;
    backends.push({
      id: `switch/${sw.name}`,
      role: 'switch',
      kind: 'net',
      path: sw.path,
      isolation: sw.isolation,
      restart: sw.restart,
      log: join(runDir, '_switch', `${sw.name}.log`),
      ports: ports ?? [],
      vms: [...(switchVms.get(sw.name) ?? [])],
    });
  }

  for (const b of model.buses) {
    const nodes = busNodes.get(b.name) ?? [];
    const canbus = busConfig(b, runDir, model.baseDir, nodes);
    if (canbus.hostSocket !== undefined) hostSockets.push(canbus.hostSocket);
    backends.push({
      id: `canbus/${b.name}`,
      role: 'canbus',
      kind: 'canbus',
      path: b.path,
      // A bus is served by this process itself (no vhost-user loop): 'shared' and 'thread' are alike.
      isolation: b.isolation === 'process' ? 'process' : 'thread',
      restart: b.restart,
      log: join(runDir, CANBUS_DIR, `${b.name}.log`),
      ports: nodes.map((n) => ({ name: n.portName, vm: n.vm, device: n.name, socket: n.socket, spec: { kind: 'canbus-node', options: { bus: b.name, node: n.name } } })),
      vms: [...new Set(nodes.map((n) => n.vm))],
      canbus,
    });
  }

  const sockets = backends.flatMap((b) => b.ports.map((p) => p.socket));
  const controlSocket = join(runDir, 'control.sock');
  const qmpSockets = vms.flatMap((v) => (v.qmp === undefined ? [] : [v.qmp]));
  for (const s of [...sockets, ...hostSockets, ...qmpSockets, controlSocket]) {
    const bytes = Buffer.byteLength(s);
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      throw new PlatformPlanError(
        `socket path ${s} is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket address holds; use a shorter run directory (--run-dir) or shorter VM and device names`,
      );
    }
  }
  const dirs = [runDir, ...model.vms.map((vm) => join(runDir, vm.name))];
  if (backends.some((b) => b.role === 'switch')) dirs.push(join(runDir, '_switch'));
  if (backends.some((b) => b.role === 'vsock-group')) dirs.push(join(runDir, '_vsock'));
  if (backends.some((b) => b.role === 'canbus')) dirs.push(join(runDir, CANBUS_DIR));
  return { name: model.name, runDir, vms, backends, disks, sockets, hostSockets, dirs, runLog: join(runDir, 'run.log'), controlSocket };
}

function vmSpec(vm: VmModel, devices: VmDevice[], options: PlanOptions, qmp: string | undefined): VmSpec {
  const base: Omit<VmSpec, 'kernel' | 'initrd'> = {
    name: vm.name,
    memoryMiB: vm.memoryMiB,
    cpus: vm.cpus,
    accel: options.accel ?? 'tcg',
    devices,
    ...(qmp === undefined ? {} : { qmp }),
    // restart-vm: QEMU powers off; avp run sees the WATCHDOG event and starts the VM again.
    ...(vm.watchdog === undefined ? {} : { watchdog: { action: vm.watchdog.action === 'reset' ? 'reset' : 'poweroff' } }),
    ...(vm.balloon === undefined ? {} : { balloon: { ...vm.balloon } }),
  };
  if (vm.boot.kind === 'kernel') return { ...base, kernel: vm.boot.kernel, initrd: vm.boot.initrd, append: vm.boot.cmdline };
  const image = options.images?.[vm.boot.linux] ?? options.image;
  if (image === undefined) throw new PlatformPlanError(`VM '${vm.name}' boots the built-in image, and no image was given to plan with`);
  const append = [...vm.boot.cmdline];
  if (vm.boot.command !== undefined) append.push(cmdParam(vm.boot.command));
  if (vm.watchdog !== undefined) append.push(watchdogParam(vm.watchdog.timeoutSeconds));
  if (vm.boot.script !== undefined) append.push(scriptParam(vm.boot.script));
  return { ...base, kernel: image.kernel, initrd: image.initramfs, append, ...(image.cmdlineLimit === undefined ? {} : { cmdlineLimit: image.cmdlineLimit }) };
}

/** The options without keys whose value is undefined (they cross into a worker as plain data). */
/** The device with the manifest's `ring: packed` as QEMU's `packed=on` (split, the default, adds nothing). */
function ringLayout(device: VhostUserVmDevice, entry: Readonly<Record<string, unknown>>): VhostUserVmDevice {
  return entry['ring'] === 'packed' ? { ...device, props: { ...device.props, packed: 'on' } } : device;
}

function defined(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * VMs whose vsock devices must share a back-end: the connected parts of the allowedPeers graph.
 * Maps each VM with a vsock device to its group's members, in manifest order.
 */
export function vsockGroups(model: PlatformModel): Map<string, string[]> {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r) ?? r;
    return r;
  };
  for (const vm of model.vms) if (vm.devices.some((d) => d.kind === 'vsock')) parent.set(vm.name, vm.name);
  for (const vm of model.vms) {
    for (const d of vm.devices) {
      if (d.kind !== 'vsock') continue;
      for (const peer of vsockEntry(d.entry).allowedPeers) if (parent.has(peer)) parent.set(find(peer), find(vm.name));
    }
  }
  const out = new Map<string, string[]>();
  const order = [...parent.keys()];
  for (const name of order) out.set(name, order.filter((other) => find(other) === find(name)));
  return out;
}

/** Whether any VM boots the built-in image (then avp run builds or fetches it first). */
export function needsBuiltinImage(model: PlatformModel): boolean {
  return model.vms.some((vm) => vm.boot.kind === 'builtin');
}

/** The kernel series the built-in VMs boot (`boot.linux`), each once, in VM order. */
export function builtinKernels(model: PlatformModel): GuestKernel[] {
  const out: GuestKernel[] = [];
  for (const vm of model.vms) if (vm.boot.kind === 'builtin' && !out.includes(vm.boot.linux)) out.push(vm.boot.linux);
  return out;
}

/** The default run directory: `<cwd>/.avp/runs/<platform>-<UTC time>`, e.g. `cockpit-20250102-030405`. */
export function defaultRunDir(platform: string, cwd: string, now: Date): string {
  const t = now.toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  return join(cwd, '.avp', 'runs', `${platform}-${t}`);
}

/** `binary argv...` as one shell command line (single quotes where a word needs them). */
export function commandLine(binary: string, argv: readonly string[]): string {
  return [binary, ...argv].map(shellWord).join(' ');
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_/.,:=+@%-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
