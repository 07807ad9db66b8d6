// SPDX-License-Identifier: Apache-2.0
/**
 * The device registry: every device AVP can serve, by name. A new device is a new folder plus one
 * entry here; the CLI, the back-end worker and the platform runner find devices through it.
 *
 * Owns: names, the vhost-user `type` each device announces (QEMU's vhost-user.json enum), the
 * capability names printed by `--print-capabilities`, and building a device from a plain,
 * structured-cloneable description (it crosses into the back-end's worker thread).
 * Does not own: parsing command lines (cli), transports.
 */
import type { VirtioDevice } from '../device/contract.js';
import { BLK_CAPABILITIES, createBlkFromOptions } from './blk/options.js';
import type { OpenUplink } from './net/host.js';
import { NET_CAPABILITIES, createNetGroup } from './net/options.js';
import { RngDevice } from './rng/model.js';
import type { UnixStreamOps } from './vsock/host.js';
import { VSOCK_CAPABILITIES, createVsockGroup, splitVsockPorts } from './vsock/options.js';

/** Host capabilities that only lower-level layers can provide, injected by the caller. */
export interface HostCapabilities {
  /** fallocate(2), for hole punching (virtio-blk DISCARD / WRITE_ZEROES). */
  fallocate?: (fd: number, mode: number, offset: number, length: number) => void;
  /** Opens a host TAP device (sys/tap.ts), for a virtio-net switch's uplink. */
  openTap?: OpenUplink;
  /** Non-blocking AF_UNIX stream sockets (vsock's hybrid host side). */
  unixStreams?: UnixStreamOps;
}

/** A device to build: its registry name and its options (plain data). */
export interface DeviceSpec {
  kind: string;
  options: Record<string, unknown>;
}

export interface DeviceKind {
  readonly name: string;
  /** `type` in QEMU's vhost-user JSON descriptors (docs/interop/vhost-user.json). */
  readonly vhostUserType: string;
  readonly description: string;
  /** Option names reported by `--print-capabilities`. */
  readonly capabilities: readonly string[];
  /** Command-line options of this device for `avp serve` (commander flag syntax, description). */
  readonly cliOptions: ReadonlyArray<readonly [flags: string, description: string]>;
  /** @throws Error with a message naming the bad option. */
  create(options: Record<string, unknown>, host: HostCapabilities): VirtioDevice;
  /**
   * Builds several devices of this kind that share state (the ports of one switch). When absent,
   * each is built alone with `create`.
   */
  createGroup?(options: ReadonlyArray<Record<string, unknown>>, host: HostCapabilities): VirtioDevice[];
  /**
   * For kinds one `avp serve` process can serve to several front-ends (vsock's `--vm`): splits the
   * command-line options into the main port's options (served on --socket-path/--fd; undefined when
   * the options name only extra ports) and extra ports, each with its own socket path. The ports
   * run in one back-end thread, so `createGroup` builds them together. Absent: one port.
   * @throws Error naming the bad option
   */
  splitPorts?(options: Record<string, unknown>): {
    main: Record<string, unknown> | undefined;
    extra: Array<{ name: string; socketPath: string; options: Record<string, unknown> }>;
  };
}

/** Reads an optional positive integer option. */
export function intOption(options: Record<string, unknown>, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const v = options[name];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return n;
}

export const DEVICE_KINDS: Readonly<Record<string, DeviceKind>> = {
  rng: {
    name: 'rng',
    vhostUserType: 'rng',
    description: 'virtio-entropy (VIRTIO 1.3 §5.4): random bytes from the host CSPRNG',
    capabilities: ['max-bytes'],
    cliOptions: [['--max-bytes <n>', 'cap on random bytes per request (default 65536)']],
    create: (options) => new RngDevice({ maxBytesPerRequest: intOption(options, 'maxBytes', 64 * 1024, 1, 1 << 30) }),
  },
  blk: {
    name: 'blk',
    vhostUserType: 'block',
    description: 'virtio-blk (VIRTIO 1.3 §5.2): a raw image file as a disk, with flush, discard and write-zeroes',
    capabilities: BLK_CAPABILITIES,
    cliOptions: [
      ['--image <file>', 'the raw image file to serve (required)'],
      ['--blk-file <file>', 'alias of --image (the vhost-user capability name)'],
      ['--read-only', 'offer VIRTIO_BLK_F_RO, open the image read-only, fail every write'],
      ['--serial <id>', 'serial number returned by GET_ID (at most 20 bytes)'],
      ['--num-queues <n>', 'number of request queues (VIRTIO_BLK_F_MQ when > 1; default 1)'],
      ['--queue-size <n>', 'largest queue the driver may set up (default 256)'],
      ['--blk-size <n>', 'logical block size reported to the guest (default 512)'],
      ['--writethrough', 'start in writethrough mode (the guest can switch it with CONFIG_WCE)'],
      ['--no-discard', 'do not offer DISCARD and WRITE_ZEROES'],
    ],
    create: (options, host) => createBlkFromOptions(options, host.fallocate),
  },
  net: {
    name: 'net',
    vhostUserType: 'net',
    description: 'virtio-net (VIRTIO 1.3 §5.1): a port of a learning Ethernet switch with MTU, rate limits, priorities and an optional TAP uplink',
    capabilities: NET_CAPABILITIES,
    cliOptions: [
      ['--mac <mac>', "the VM's MAC address, served in config space (default 02:00:00:00:00:01)"],
      ['--mtu <n>', 'MTU of the switch, 68-65535 (default 1500); give QEMU host_mtu=N too'],
      ['--rate <bytes[:pkts]>', 'ingress limit in bytes/s and optionally frames/s, k/M/G suffixes allowed (default none)'],
      ['--burst <bytes[:pkts]>', 'token bucket sizes (default 10 ms of the rate, at least one frame)'],
      ['--rate-policy <policy>', "'backpressure' (frames wait in the guest's ring, default) or 'drop'"],
      ['--link <state>', "admin link state, 'up' (default) or 'down'"],
      ['--mac-ageing <s>', 'seconds before a learned MAC is forgotten (default 300)'],
      ['--uplink-tap <name>', 'bridge to this host TAP interface (created if missing, which needs CAP_NET_ADMIN; bring it up with ip link set NAME up)'],
    ],
    create: (options, host) => {
      // Safe: createNetGroup returns one port per options object.
      return createNetGroup([options], host)[0]!;
    },
    createGroup: (options, host) => createNetGroup(options, host),
  },
  vsock: {
    name: 'vsock',
    vhostUserType: 'vsock',
    description: 'virtio-vsock (VIRTIO 1.3 §5.10): guest sockets to host Unix sockets (hybrid vsock) and to other guests of the group',
    capabilities: VSOCK_CAPABILITIES,
    cliOptions: [
      ['--guest-cid <n>', "the guest's CID, 3 or more (QEMU reads it from the config space)"],
      ['--uds-path <path>', 'hybrid vsock: host clients connect here and send "CONNECT <port>"; guest connections to host port X go to <path>_X'],
      ['--allow-peer <cid...>', 'another guest of this process this guest may reach (both sides must allow); repeatable, or "4,5"'],
      ['--vm <spec...>', "serve another VM from this process: 'socket=PATH,cid=N[,uds=PATH][,allow=CID+CID]'; repeatable"],
      ['--conn-buffer <bytes>', 'buf_alloc advertised per host connection (default 262144)'],
      ['--max-connections <n>', 'connections per guest, at most (default 1024)'],
    ],
    create: (options, host) => {
      // Safe: createVsockGroup returns one device per options object.
      return createVsockGroup([options], host.unixStreams)[0]!;
    },
    createGroup: (options, host) => createVsockGroup(options, host.unixStreams),
    splitPorts: (options) => splitVsockPorts(options),
  },
};

/**
 * Builds a device from its description.
 * @throws Error for an unknown kind or a bad option.
 */
export function createDevice(spec: DeviceSpec, host: HostCapabilities = {}): VirtioDevice {
  const kind = DEVICE_KINDS[spec.kind];
  if (kind === undefined) throw new Error(`unknown device '${spec.kind}'; known: ${Object.keys(DEVICE_KINDS).join(', ')}`);
  return kind.create(spec.options, host);
}

/**
 * Builds the devices of one back-end thread, in order. Devices of a kind with `createGroup` are
 * built together (they may share state, e.g. a switch fabric).
 * @throws Error for an unknown kind or a bad option.
 */
export function createDevices(specs: readonly DeviceSpec[], host: HostCapabilities = {}): VirtioDevice[] {
  const out: VirtioDevice[] = new Array<VirtioDevice>(specs.length);
  const groups = new Map<string, number[]>();
  specs.forEach((spec, i) => {
    const kind = DEVICE_KINDS[spec.kind];
    if (kind?.createGroup === undefined) out[i] = createDevice(spec, host);
    else groups.set(spec.kind, [...(groups.get(spec.kind) ?? []), i]);
  });
  for (const [name, indexes] of groups) {
    // Safe: only kinds with createGroup were grouped.
    const devices = DEVICE_KINDS[name]!.createGroup!(indexes.map((i) => specs[i]!.options), host);
    indexes.forEach((i, j) => {
      const d = devices[j];
      if (d === undefined) throw new Error(`${name}: createGroup returned ${devices.length} devices for ${indexes.length}`);
      out[i] = d;
    });
  }
  return out;
}
