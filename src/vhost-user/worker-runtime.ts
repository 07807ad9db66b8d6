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
import { runBackendLoop, type LoopPort, type LoopTuning } from './loop.js';

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
  /** Busy polling and sealed-memory settings of the loop. */
  tuning: LoopTuning;
}

export type WorkerCommand =
  | { cmd: 'stop' }
  | { cmd: 'metrics'; id: number }
  /** Serve more ports (their devices built together, as one group: a switch, a vsock group). */
  | { cmd: 'add'; id: number; ports: WorkerPort[] }
  /** Stop serving these ports and dispose their devices (their listening fds stay the caller's). */
  | { cmd: 'remove'; id: number; names: string[] };

export type WorkerMessage =
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; port: string }
  | { type: 'event'; event: { kind: string; [k: string]: unknown }; port: string }
  | { type: 'metrics'; id: number; value: Record<string, Record<string, unknown>> }
  /** The answer to add or remove: `error` says why nothing was added. */
  | { type: 'done'; id: number; error?: string }
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
  /** Builds the devices of `specs` (one group) as loop ports. @throws what the factory throws */
  const build = (specs: readonly WorkerPort[]): LoopPort[] => {
    const devices = createDevices(specs.map((p) => p.device));
    return specs.map((p, i) => {
      const device = devices[i];
      if (device === undefined) throw new Error(`device factory returned ${devices.length} devices for ${specs.length} ports`);
      return { name: p.name, listenFd: p.listenFd, device };
    });
  };
  let initial: LoopPort[];
  try {
    initial = build(data.ports);
  } catch (e: unknown) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const sessions = new Map<string, () => Record<string, unknown>>();
  /** Host resources devices opened themselves (vsock's listening socket and its file) go with them. */
  const dispose = (gone: readonly LoopPort[]): void => {
    for (const p of gone) {
      try {
        p.device.dispose?.();
      } catch (e: unknown) {
        logFor(p.name).error(`dispose failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  post({ type: 'ready' });
  const served = runBackendLoop({
    ports: initial,
    wakeFd: data.wakeFd,
    ...data.tuning,
    log: (port) => logFor(port.name),
    onEvent: (port, event) => post({ type: 'event', event, port: port.name }),
    onSession: (port, metrics) => {
      if (metrics === undefined) sessions.delete(port.name);
      else sessions.set(port.name, metrics);
    },
    onWake: (control) => {
      for (let m = receiveMessageOnPort(data.port); m !== undefined; m = receiveMessageOnPort(data.port)) {
        // Safe: only server.ts writes to this port, with WorkerCommand values.
        const cmd = m.message as WorkerCommand;
        if (cmd.cmd === 'stop') return 'stop';
        if (cmd.cmd === 'add') {
          let added: LoopPort[] = [];
          try {
            added = build(cmd.ports);
            control.addPorts(added);
            post({ type: 'done', id: cmd.id });
          } catch (e: unknown) {
            dispose(added);
            post({ type: 'done', id: cmd.id, error: e instanceof Error ? e.message : String(e) });
          }
          continue;
        }
        if (cmd.cmd === 'remove') {
          const gone = control.removePorts(cmd.names);
          for (const p of gone) sessions.delete(p.name);
          dispose(gone);
          post({ type: 'done', id: cmd.id });
          continue;
        }
        const value: Record<string, Record<string, unknown>> = {};
        for (const p of control.ports) value[p.name] = sessions.get(p.name)?.() ?? { ...p.device.metrics(), connected: false };
        post({ type: 'metrics', id: cmd.id, value });
      }
      return 'continue';
    },
  });
  // A failing dispose is an AVP bug worth a log line, not a reason to skip the others.
  dispose(served);
  data.port.close();
}
