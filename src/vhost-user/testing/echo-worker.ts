// SPDX-License-Identifier: Apache-2.0
/**
 * Worker-thread entry for back-end loop tests: serves `EchoDevice`s (device description 'echo'),
 * or a linked pair on two ports (descriptions 'a' and 'b', see echo-device.ts). Start it with
 * `BackendThread.start({ entry: ECHO_WORKER_ENTRY, ports })`.
 */
import { runBackendWorker } from '../worker-runtime.js';
import { EchoDevice, linkedEchoPair } from './echo-device.js';

runBackendWorker((specs) => {
  if (specs.length === 2 && specs[0] === 'a' && specs[1] === 'b') return linkedEchoPair();
  return specs.map(() => new EchoDevice());
});
