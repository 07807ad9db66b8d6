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
import { RngDevice } from './rng/model.js';

/** Host capabilities that only lower-level layers can provide, injected by the caller. */
export interface HostCapabilities {
  /** fallocate(2), for hole punching (virtio-blk DISCARD / WRITE_ZEROES). */
  fallocate?: (fd: number, mode: number, offset: number, length: number) => void;
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
