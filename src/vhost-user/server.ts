// SPDX-License-Identifier: Apache-2.0
/**
 * The controlling-thread side of a back-end: starts the worker that serves a listening socket,
 * forwards its logs and events, asks it for metrics, and stops it. Node's main thread stays free
 * (signals, status display, other back-ends) because the blocking loop lives in the worker.
 * Does not own: creating or removing the socket file (the caller passes a listening fd and keeps
 * ownership of it), or which device runs (the worker entry module decides).
 */
import { lstatSync, unlinkSync, type Stats } from 'node:fs';
import { MessageChannel, Worker } from 'node:worker_threads';
import { closeQuiet, connectUnix, eventfdCreate, eventfdWrite, fdTarget, listenUnix } from '../sys/index.js';
import type { BackendWorkerData, WorkerCommand, WorkerMessage, WorkerPort } from './worker-runtime.js';
import type { LoopTuning } from './loop.js';

export type { LoopTuning } from './loop.js';

export interface BackendThreadOptions {
  /** Worker entry module: calls `runBackendWorker` with a device factory. */
  entry: URL;
  /** One device: its description (structured-cloneable) ... */
  device?: unknown;
  /** ... and its listening AF_UNIX socket (stays owned by the caller). */
  listenFd?: number;
  /** Or several ports served by one thread (a switch); listening fds stay owned by the caller. */
  ports?: WorkerPort[];
  /** `port` is the port name (the device kind for a single device). */
  onLog?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, port: string) => void;
  onEvent?: (event: { kind: string; [k: string]: unknown }, port: string) => void;
  /** Busy polling and sealed-memory settings of the loop (default: neither). */
  tuning?: LoopTuning;
}

export class BackendThread {
  readonly #worker: Worker;
  readonly #port: MessageChannel['port1'];
  readonly #wakeFd: number;
  readonly #exited: Promise<number>;
  #nextId = 0;
  #done = false;
  readonly #pending: Map<number, (v: Record<string, Record<string, unknown>>) => void>;

  readonly #pendingDone: Map<number, { resolve: () => void; reject: (e: Error) => void }>;

  private constructor(
    worker: Worker,
    port: MessageChannel['port1'],
    wakeFd: number,
    exited: Promise<number>,
    pending: Map<number, (v: Record<string, Record<string, unknown>>) => void>,
    pendingDone: Map<number, { resolve: () => void; reject: (e: Error) => void }>,
  ) {
    this.#pendingDone = pendingDone;
    this.#worker = worker;
    this.#port = port;
    this.#wakeFd = wakeFd;
    this.#exited = exited;
    this.#pending = pending;
    void exited.then(() => {
      this.#done = true;
    });
  }

  /** The worker thread (for resource accounting in tests). */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /** Starts the worker and resolves once the device is built and the loop is about to run. */
  static start(opts: BackendThreadOptions): Promise<BackendThread> {
    const ports = opts.ports ?? (opts.listenFd === undefined ? [] : [{ name: portName(opts.device), listenFd: opts.listenFd, device: opts.device }]);
    // An explicitly empty list is a loop that ports join later (addPorts): one thread for many back-ends.
    if (ports.length === 0 && opts.ports === undefined) return Promise.reject(new Error('BackendThread.start: give `ports`, or `device` and `listenFd`'));
    const wakeFd = eventfdCreate();
    const { port1, port2 } = new MessageChannel();
    const data: BackendWorkerData = { ports, wakeFd, port: port2, tuning: opts.tuning ?? {} };
    const worker = new Worker(opts.entry, { workerData: data, transferList: [port2] });
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve)).finally(() => closeQuiet(wakeFd));
    const pending = new Map<number, (v: Record<string, Record<string, unknown>>) => void>();
    const pendingDone = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
    void exited.then((code) => {
      for (const p of pendingDone.values()) p.reject(new Error(`back-end worker exited with code ${code}`));
      pendingDone.clear();
    });
    return new Promise((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'ready':
            resolve(new BackendThread(worker, port1, wakeFd, exited, pending, pendingDone));
            break;
          case 'failed':
            reject(new Error(m.message));
            break;
          case 'log':
            opts.onLog?.(m.level, m.msg, m.port);
            break;
          case 'event':
            opts.onEvent?.(m.event, m.port);
            break;
          case 'metrics':
            pending.get(m.id)?.(m.value);
            pending.delete(m.id);
            break;
          case 'done': {
            const p = pendingDone.get(m.id);
            pendingDone.delete(m.id);
            if (m.error === undefined) p?.resolve();
            else p?.reject(new Error(m.error));
            break;
          }
        }
      });
      worker.once('error', reject);
      void exited.then((code) => reject(new Error(`back-end worker exited with code ${code} before it was ready`)));
    });
  }

  /** Resolves with the worker's exit code when it ends. */
  get exited(): Promise<number> {
    return this.#exited;
  }

  #send(cmd: WorkerCommand): void {
    if (this.#done) return;
    this.#port.postMessage(cmd);
    eventfdWrite(this.#wakeFd);
  }

  /** Current device and session metrics, per port name. */
  metrics(): Promise<Record<string, Record<string, unknown>>> {
    if (this.#done) return Promise.resolve({});
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#send({ cmd: 'metrics', id });
    });
  }

  /**
   * Serves more ports in this thread; their devices are built together (one switch, one vsock
   * group). @throws Error when a device cannot be built, a name is taken, or the worker is gone
   */
  addPorts(ports: WorkerPort[]): Promise<void> {
    return this.#ask((id) => ({ cmd: 'add', id, ports }));
  }

  /** Stops serving these ports: front-ends disconnected, devices disposed; the listening fds stay the caller's. */
  removePorts(names: string[]): Promise<void> {
    return this.#ask((id) => ({ cmd: 'remove', id, names }));
  }

  #ask(cmd: (id: number) => WorkerCommand): Promise<void> {
    if (this.#done) return Promise.reject(new Error('the back-end worker has ended'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pendingDone.set(id, { resolve, reject });
      this.#send(cmd(id));
    });
  }

  /**
   * Ends the worker abruptly, as a crash would: no front-end is told, nothing is disposed in the
   * thread (its fds close with the isolate's handles only where Node owns them). For fault
   * drills and tests of what a crashed back-end thread does to its supervisor.
   * @returns the exit code (1)
   */
  async terminate(): Promise<number> {
    if (this.#done) return this.#exited;
    // Termination takes effect when the isolate next runs JavaScript; the loop may be waiting in
    // epoll_wait, a native call it cannot interrupt. So ask first, then wake the loop until the
    // worker has ended (a single wake can be consumed just before the request lands). #done is
    // set in the microtask right after the wake fd is closed, before any timer can fire again.
    const ended = this.#worker.terminate();
    const wake = setInterval(() => {
      if (!this.#done) eventfdWrite(this.#wakeFd);
    }, 20);
    eventfdWrite(this.#wakeFd);
    try {
      await ended;
      return await this.#exited;
    } finally {
      clearInterval(wake);
    }
  }

  /** Stops serving (the current front-end is disconnected) and waits for the worker to end. */
  async stop(): Promise<void> {
    this.#send({ cmd: 'stop' });
    await this.#exited;
    this.#port.close();
  }
}

/**
 * Opens the listening socket of a back-end at `path` (mode 0600). A stale socket file left by a
 * crashed back-end is replaced; a socket some process still listens on, or a path that is not a
 * socket, is refused and left untouched.
 * @throws Error naming the path and the reason.
 */
export function listenAt(path: string): number {
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch {
    st = undefined;
  }
  if (st !== undefined) {
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    let inUse = false;
    try {
      closeQuiet(connectUnix(path));
      inUse = true;
    } catch {
      inUse = false;
    }
    if (inUse) throw new Error(`socket ${path} is in use by another process`);
    unlinkSync(path);
  }
  return listenUnix(path);
}

/**
 * Checks that an inherited fd (`--fd N`) is a socket.
 * @throws Error naming the fd and what it is.
 */
export function checkInheritedSocket(fd: number): number {
  const target = Number.isSafeInteger(fd) && fd >= 0 ? fdTarget(fd) : null;
  if (target === null || !target.startsWith('socket:')) throw new Error(`--fd ${fd} is not an open socket (${target ?? 'not open'})`);
  return fd;
}

/** Port name for a single device: its registry kind when the description has one. */
function portName(device: unknown): string {
  if (typeof device === 'object' && device !== null && 'kind' in device && typeof device.kind === 'string') return device.kind;
  return 'device';
}
