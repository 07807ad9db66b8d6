// SPDX-License-Identifier: Apache-2.0
/** AVP public API: the layers a library user builds on. Re-exports only. */
export * from './errors.js';
export * from './spec/index.js';
export * from './memory/index.js';
export * from './queue/index.js';
export * from './device/index.js';
export * as rng from './devices/rng/index.js';
export * as blk from './devices/blk/index.js';
export * as net from './devices/net/index.js';
export * as vsock from './devices/vsock/index.js';
export { DEVICE_KINDS, createDevice, createDevices, findKind, kindOf, type DeviceKind, type DeviceSpec, type HostCapabilities } from './devices/registry.js';
export { cliFlags, parseOptions, toServeFlags } from './devices/options.js';
