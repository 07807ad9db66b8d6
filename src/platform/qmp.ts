// SPDX-License-Identifier: Apache-2.0
/**
 * QMP (QEMU Machine Protocol, QEMU's docs/interop/qmp-spec.rst) for `avp run`: a listener on a
 * Unix socket that QEMU connects to as a client (`-chardev socket,path=...` + `-mon
 * mode=control`, qemu.ts), and the session on each connection: the greeting, capability
 * negotiation, commands with their answers, and asynchronous events (WATCHDOG, BALLOON_CHANGE,
 * SHUTDOWN, RESET, ...).
 *
 * Listening first and letting QEMU connect means no event is lost between QEMU's start and a
 * connect, and there is no socket to poll for.
 *
 * Owns: the framing (JSON objects, one per line; QEMU ends each with "\r\n"), command ids, error
 * mapping (QmpError). Does not own: what the runner does with events (run/supervisor.ts).
 * QEMU is trusted no more than any peer: lines over MAX_QMP_LINE_BYTES or not JSON end the session.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';
import { errorText } from '../errors.js';
import { QmpError } from './errors.js';

/** The longest line read from QEMU (answers and events are small; query-* answers a few KiB). */
export const MAX_QMP_LINE_BYTES = 1 << 20;

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** QEMU's timestamp, in ms since the epoch. */
  at: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  execute: string;
}

/** One QMP connection from QEMU. `ready` resolves once capabilities are negotiated. */
export class QmpSession {
  readonly ready: Promise<void>;
  /** Resolves when the connection ends (QEMU exited, or close()). */
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(e: QmpEvent) => void>();
  #nextId = 1;
  #buffer = '';
  #greeted = false;
  #ended: string | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    let onReady: () => void = () => {};
    let onFail: (e: Error) => void = () => {};
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.ready.catch(() => {}); // a session that ends before the greeting is reported by execute()
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      if (this.#buffer.length > MAX_QMP_LINE_BYTES && !this.#buffer.includes('\n')) return this.#end(`QMP sent a line of over ${MAX_QMP_LINE_BYTES} bytes`);
      for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line !== '') this.#onLine(line, onReady);
      }
    });
    socket.on('error', (e) => this.#end(`QMP connection failed: ${errorText(e)}`));
    socket.on('close', () => {
      this.#end('QEMU closed its QMP connection');
      onFail(new QmpError(this.#ended ?? 'closed'));
    });
  }

  /** Calls `listener` with every event from now on, until the returned function is called. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs a QMP command; resolves with its `return`. @throws QmpError (QEMU's error, or the session ended) */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    await this.ready;
    return this.#send(command, args);
  }

  close(): void {
    this.#end('closed');
  }

  #send(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#ended !== undefined) return Promise.reject(new QmpError(`QMP ${command}: ${this.#ended}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, execute: command });
      this.#socket.write(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`);
    });
  }

  #onLine(line: string, onReady: () => void): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return this.#end(`QMP sent a line that is not JSON: ${line.slice(0, 80)}`);
    }
    if (typeof msg !== 'object' || msg === null) return this.#end(`QMP sent a value that is not an object: ${line.slice(0, 80)}`);
    const m = msg as Record<string, unknown>; // an object: its fields are checked one by one
    if (!this.#greeted) {
      if (!('QMP' in m)) return this.#end(`QMP did not greet first: ${line.slice(0, 80)}`);
      this.#greeted = true;
      this.#send('qmp_capabilities').then(onReady, (e: unknown) => this.#end(`QMP capability negotiation failed: ${errorText(e)}`));
      return;
    }
    if (typeof m['event'] === 'string') {
      const ts = m['timestamp'] as { seconds?: unknown; microseconds?: unknown } | undefined; // checked below
      const at = typeof ts?.seconds === 'number' && typeof ts.microseconds === 'number' ? ts.seconds * 1000 + Math.floor(ts.microseconds / 1000) : Date.now();
      const data = typeof m['data'] === 'object' && m['data'] !== null ? (m['data'] as Record<string, unknown>) : {};
      const event: QmpEvent = { event: m['event'], data, at };
      for (const l of this.#listeners) {
        try {
          l(event);
        } catch {
          // a listener's failure must not end the session
        }
      }
      return;
    }
    const id = m['id'];
    const waiter = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (waiter === undefined) return; // an answer to nothing we asked: ignored
    this.#pending.delete(id as number); // a number: it found a waiter
    if ('return' in m) return waiter.resolve(m['return']);
    const err = m['error'] as { class?: unknown; desc?: unknown } | undefined; // checked below
    waiter.reject(new QmpError(`QMP ${waiter.execute}: ${typeof err?.desc === 'string' ? err.desc : 'error'}${typeof err?.class === 'string' ? ` (${err.class})` : ''}`));
  }

  #end(reason: string): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    for (const p of this.#pending.values()) p.reject(new QmpError(`QMP ${p.execute}: ${reason}`));
    this.#pending.clear();
    this.#socket.destroy();
  }
}

/**
 * Listens at `path` for QEMU's QMP connection (one QEMU at a time: a VM started again connects
 * anew, and the newest session is `current`).
 */
export class QmpListener {
  readonly path: string;
  readonly #server: Server;
  #current: QmpSession | undefined;
  readonly #onSession: (s: QmpSession) => void;

  private constructor(path: string, server: Server, onSession: (s: QmpSession) => void) {
    this.path = path;
    this.#server = server;
    this.#onSession = onSession;
    server.on('connection', (socket) => {
      this.#current?.close();
      const session = new QmpSession(socket);
      this.#current = session;
      this.#onSession(session);
    });
  }

  /** Listens at `path` (a stale socket file there is replaced). @throws QmpError */
  static async listen(path: string, onSession: (s: QmpSession) => void): Promise<QmpListener> {
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      // nothing there
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new QmpError(`cannot listen for QMP on ${path}: ${errorText(e)}`, { cause: e })));
      server.listen(path, () => resolve());
    });
    return new QmpListener(path, server, onSession);
  }

  /** The session of the QEMU connected now, if any. */
  get current(): QmpSession | undefined {
    return this.#current;
  }

  /** Ends the session, stops listening and removes the socket file. */
  async close(): Promise<void> {
    this.#current?.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
