// SPDX-License-Identifier: Apache-2.0
/**
 * The device registry: the one list of device kinds. A new device is its folder (with a
 * `kind.ts`, devices/kind.ts) plus one line in `DEVICE_KINDS`; the CLI (`avp serve <name>`,
 * `avp conformance --device`), the manifest schema, `avp qemu-args`, the status board, the guest
 * image's module list, the bin/ programs and the QEMU descriptors in share/ all derive from it.
 *
 * Owns: the list, lookups by name, and building devices from plain descriptions (`DeviceSpec`s
 * cross into a back-end's worker thread), options parsed against the kind's schema first.
 * Does not own: any kind (devices/<name>/kind.ts), transports, command lines (cli).
 */
import type { VirtioDevice } from '../device/contract.js';
import { blkKind } from './blk/kind.js';
import { canKind } from './can/kind.js';
import { consoleKind } from './console/kind.js';
import { fsKind } from './fs/kind.js';
import { cryptoKind } from './crypto/kind.js';
import { UnknownDeviceKindError } from './errors.js';
import { gpioKind } from './gpio/kind.js';
import { i2cKind } from './i2c/kind.js';
import { gpuKind } from './gpu/kind.js';
import { inputKind } from './input/kind.js';
import type { DeviceKind, DeviceSpec, HostCapabilities } from './kind.js';
import { netKind } from './net/kind.js';
import { parseOptions } from './options.js';
import { rngKind } from './rng/kind.js';
import { rpmbKind } from './rpmb/kind.js';
import { soundKind } from './sound/kind.js';
import { vsockKind } from './vsock/kind.js';

export type { DeviceKind, DeviceSpec, HostCapabilities } from './kind.js';

/** Every device kind, in documentation order. */
export const DEVICE_KINDS: readonly DeviceKind[] = [rngKind, blkKind, netKind, vsockKind, fsKind, soundKind, consoleKind, rpmbKind, canKind, gpioKind, i2cKind, cryptoKind, gpuKind, inputKind];

/** The kind called `name`, or undefined. */
export function findKind(name: string): DeviceKind | undefined {
  return DEVICE_KINDS.find((k) => k.name === name);
}

/** The kind called `name`. @throws UnknownDeviceKindError listing the known kinds. */
export function kindOf(name: string): DeviceKind {
  const k = findKind(name);
  if (k === undefined) throw new UnknownDeviceKindError(`unknown device '${name}'; known: ${DEVICE_KINDS.map((x) => x.name).join(', ')}`);
  return k;
}

/**
 * Builds a device from its description.
 * @throws UnknownDeviceKindError; DeviceOptionError naming a bad option; the kind's own errors.
 */
export function createDevice(spec: DeviceSpec, host: HostCapabilities = {}): VirtioDevice {
  const kind = kindOf(spec.kind);
  return kind.create(parseOptions(kind, spec.options), host);
}

/**
 * Builds the devices of one back-end thread, in order. Devices of a kind with `createGroup` are
 * built together (they may share state, e.g. a switch fabric).
 * @throws as createDevice.
 */
export function createDevices(specs: readonly DeviceSpec[], host: HostCapabilities = {}): VirtioDevice[] {
  const out: VirtioDevice[] = new Array<VirtioDevice>(specs.length);
  const groups = new Map<DeviceKind, number[]>();
  specs.forEach((spec, i) => {
    const kind = kindOf(spec.kind);
    if (kind.createGroup === undefined) out[i] = createDevice(spec, host);
    else groups.set(kind, [...(groups.get(kind) ?? []), i]);
  });
  for (const [kind, indexes] of groups) {
    // Safe: only kinds with createGroup were grouped; indexes come from specs.forEach.
    const devices = kind.createGroup!(indexes.map((i) => parseOptions(kind, specs[i]!.options)), host);
    indexes.forEach((i, j) => {
      const d = devices[j];
      // Our own bug if it happens: createGroup must return one device per options object.
      if (d === undefined) throw new Error(`${kind.name}: createGroup returned ${devices.length} devices for ${indexes.length}`);
      out[i] = d;
    });
  }
  return out;
}
