// SPDX-License-Identifier: Apache-2.0
/**
 * The worker-thread side of a back-end: builds the device, runs the blocking event loop, and
 * talks to the controlling thread. Commands arrive on a MessagePort and are read synchronously
 * (`receiveMessageOnPort`) when the wake eventfd fires, because the loop never returns to the
 * worker's own event loop while it serves.
 * Does not own: which device to build (the worker entry passes a factory), the socket file.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { DeviceLog, VirtioDevice } from '../device/contract.js';
import { runBackendLoop } from './loop.js';

/** What the controlling thread passes in `workerData`. */
export interface BackendWorkerData {
  listenFd: number;
  wakeFd: number;
  port: MessagePort;
  /** The device description the factory understands (structured-cloneable). */
  device: unknown;
}

export type WorkerCommand = { cmd: 'stop' } | { cmd: 'metrics'; id: number };

export type WorkerMessage =
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string }
  | { type: 'event'; event: { kind: string; [k: string]: unknown } }
  | { type: 'metrics'; id: number; value: Record<string, unknown> }
  | { type: 'ready' }
  | { type: 'failed'; message: string };

/** Runs the back-end in this worker thread until told to stop. Call from a worker entry module. */
export function runBackendWorker(createDevice: (spec: unknown) => VirtioDevice): void {
  // Safe: the controlling thread (server.ts) always starts the worker with BackendWorkerData.
  const data = workerData as BackendWorkerData;
  const post = (m: WorkerMessage) => parentPort?.postMessage(m);
  const log: DeviceLog = {
    debug: (msg) => post({ type: 'log', level: 'debug', msg }),
    info: (msg) => post({ type: 'log', level: 'info', msg }),
    warn: (msg) => post({ type: 'log', level: 'warn', msg }),
    error: (msg) => post({ type: 'log', level: 'error', msg }),
  };
  let device: VirtioDevice;
  try {
    device = createDevice(data.device);
  } catch (e: unknown) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  let current: (() => Record<string, unknown>) | undefined;
  post({ type: 'ready' });
  runBackendLoop({
    device,
    listenFd: data.listenFd,
    wakeFd: data.wakeFd,
    log,
    onEvent: (event) => post({ type: 'event', event }),
    onSession: (metrics) => {
      current = metrics;
    },
    onWake: () => {
      for (let m = receiveMessageOnPort(data.port); m !== undefined; m = receiveMessageOnPort(data.port)) {
        // Safe: only server.ts writes to this port, with WorkerCommand values.
        const cmd = m.message as WorkerCommand;
        if (cmd.cmd === 'stop') return 'stop';
        post({ type: 'metrics', id: cmd.id, value: current?.() ?? device.metrics() });
      }
      return 'continue';
    },
  });
  data.port.close();
}
