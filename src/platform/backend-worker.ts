// SPDX-License-Identifier: Apache-2.0
/**
 * Worker-thread entry of `avp serve`: builds the device from the registry, with the host
 * capabilities only `sys/` can provide, and runs the vhost-user back-end loop.
 */
import { createDevice, type DeviceSpec } from '../devices/registry.js';
import { fallocate } from '../sys/index.js';
import { runBackendWorker } from '../vhost-user/worker-runtime.js';

// Safe: the CLI always passes a DeviceSpec as the worker's device description.
runBackendWorker((spec) => createDevice(spec as DeviceSpec, { fallocate }));
