// SPDX-License-Identifier: Apache-2.0
/**
 * Worker-thread entry of every AVP back-end (`avp serve`, `avp switch`, `avp run`): builds the
 * device from the registry, with the host capabilities only `sys/` can provide, and runs the
 * vhost-user back-end loop. It lives in the platform layer, the composition root that may import
 * devices, vhost-user and sys together. Start it through `BackendThread` with
 * `BACKEND_WORKER_ENTRY` (platform/backends.ts).
 */
import { createDevices, type DeviceSpec } from '../devices/registry.js';
import { fallocate, fsSyscalls, openTap } from '../sys/index.js';
import { runBackendWorker } from '../vhost-user/worker-runtime.js';
import { unixStreamOps } from './unix-streams.js';

// Safe: AVP's callers always pass DeviceSpecs as the workers' device descriptions.
runBackendWorker((specs) => createDevices(specs as DeviceSpec[], { fallocate, fsSyscalls, openTap, unixStreams: unixStreamOps }));
