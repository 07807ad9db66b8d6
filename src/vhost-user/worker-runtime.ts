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
import { runBackendLoop, type LoopPort } from './loop.js';

/** One port to serve: a listening socket and the description of its device. */
export interface WorkerPort {
  name: string;
  listenFd: number;
  /** The device description the factory understands (structured-cloneable). */
  device: unknown;
}

/** What the controlling thread passes in `workerData`. */
export interface BackendWorkerData {
  ports: WorkerPort[];
  wakeFd: number;
  port: MessagePort;
  /** Adaptive busy polling window in microseconds (`LoopOptions.busyPollUs`). */
  busyPollUs?: number;
}

export type WorkerCommand = { cmd: 'stop' } | { cmd: 'metrics'; id: number };

export type WorkerMessage =
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; port: string }
  | { type: 'event'; event: { kind: string; [k: string]: unknown }; port: string }
  | { type: 'metrics'; id: number; value: Record<string, Record<string, unknown>> }
  | { type: 'ready' }
  | { type: 'failed'; message: string };

/**
 * Runs the back-end in this worker thread until told to stop. Call from a worker entry module.
 * `createDevices` builds one device per port, in order; ports of one group (a switch) may share
 * state because they are built together.
 */
export function runBackendWorker(createDevices: (specs: unknown[]) => VirtioDevice[]): void {
  // Safe: the controlling thread (server.ts) always starts the worker with BackendWorkerData.
  const data = workerData as BackendWorkerData;
  const post = (m: WorkerMessage) => parentPort?.postMessage(m);
  const logFor = (port: string): DeviceLog => ({
    debug: (msg) => post({ type: 'log', level: 'debug', msg, port }),
    info: (msg) => post({ type: 'log', level: 'info', msg, port }),
    warn: (msg) => post({ type: 'log', level: 'warn', msg, port }),
    error: (msg) => post({ type: 'log', level: 'error', msg, port }),
  });
  let devices: VirtioDevice[];
  try {
    devices = createDevices(data.ports.map((p) => p.device));
  } catch (e: unknown) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const ports: LoopPort[] = data.ports.map((p, i) => {
    const device = devices[i];
    if (device === undefined) throw new Error(`device factory returned ${devices.length} devices for ${data.ports.length} ports`);
    return { name: p.name, listenFd: p.listenFd, device };
  });
  const sessions = new Map<string, () => Record<string, unknown>>();
  post({ type: 'ready' });
  runBackendLoop({
    ports,
    wakeFd: data.wakeFd,
    ...(data.busyPollUs === undefined ? {} : { busyPollUs: data.busyPollUs }),
    log: (port) => logFor(port.name),
    onEvent: (port, event) => post({ type: 'event', event, port: port.name }),
    onSession: (port, metrics) => {
      if (metrics === undefined) sessions.delete(port.name);
      else sessions.set(port.name, metrics);
    },
    onWake: () => {
      for (let m = receiveMessageOnPort(data.port); m !== undefined; m = receiveMessageOnPort(data.port)) {
        // Safe: only server.ts writes to this port, with WorkerCommand values.
        const cmd = m.message as WorkerCommand;
        if (cmd.cmd === 'stop') return 'stop';
        const value: Record<string, Record<string, unknown>> = {};
        for (const p of ports) value[p.name] = sessions.get(p.name)?.() ?? { ...p.device.metrics(), connected: false };
        post({ type: 'metrics', id: cmd.id, value });
      }
      return 'continue';
    },
  });
  // Host resources devices opened themselves (vsock's listening socket and its file) go with the
  // back-end; a failing dispose is an AVP bug worth a log line, not a reason to skip the others.
  for (const p of ports) {
    try {
      p.device.dispose?.();
    } catch (e: unknown) {
      logFor(p.name).error(`dispose failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  data.port.close();
}
