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
  /** @throws Error with a message naming the bad option. */
  create(options: Record<string, unknown>, host: HostCapabilities): VirtioDevice;
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
    create: (options) => new RngDevice({ maxBytesPerRequest: intOption(options, 'maxBytes', 64 * 1024, 1, 1 << 30) }),
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
