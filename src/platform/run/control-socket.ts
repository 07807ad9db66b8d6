// SPDX-License-Identifier: Apache-2.0
/**
 * The control socket of a run (`<runDir>/control.sock`): serves a RunControl to other processes
 * (`ControlServer`), and `ControlClient`, a RunControl over such a socket (`avp ui RUNDIR`).
 *
 * Protocol (docs/control-protocol.md): a Unix stream socket, mode 0600, carrying JSON objects one
 * per line (UTF-8, `\n`-terminated). The client sends requests `{"id", "method", "params"?}`;
 * the server answers each with `{"id", "result"}` or `{"id", "error": {"code", "message"}}`, in
 * any order; after `subscribe` it also sends events `{"event": ControlEvent}` until
 * `unsubscribe` or the end of the connection. Methods: hello, snapshot, console-tail, bus, act,
 * screenshot (result `{png: base64}`), input, balloon (params `{vm, target?}` in bytes; result
 * BalloonInfo), subscribe, unsubscribe. Requests over
 * MAX_REQUEST_BYTES or that do not match the schemas get a CONTROL_PROTOCOL error (with `id`
 * null when there is none to quote); an over-long line also ends the connection.
 *
 * Owns: framing, validation of requests (zod), error codes on the wire, the socket file (a stale
 * one of a dead run is replaced; a live one is refused). Does not own: what requests do
 * (control.ts, supervisor.ts).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import { errorText } from '../../errors.js';
import { ControlProtocolError, ControlRefusedError, ControlRemoteError, ControlTargetError, ControlUnavailableError, RunDirError } from '../errors.js';
import { CONTROL_PROTOCOL_VERSION, type ControlEvent, type ControlSnapshot, type RunControl } from './control.js';
import type { ControlRequest } from './control-rules.js';
import type { InputEvent } from './extensions.js';
import type { BalloonInfo } from './supervisor.js';

/** The longest request line the server reads (requests are small; input events the most frequent). */
export const MAX_REQUEST_BYTES = 1 << 20;
/** The longest line the client reads (a screenshot: a PNG in base64). */
export const MAX_RESPONSE_BYTES = 64 << 20;
/** A subscriber that lets this much output pile up unread is disconnected. */
const MAX_BACKLOG_BYTES = 16 << 20;

const name = z.string().min(1).max(256);

/** An input event as it may arrive from outside (the dashboard, a control client). */
export const inputEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('touch'), action: z.enum(['down', 'move', 'up']), x: z.number().int().min(0).max(65_535), y: z.number().int().min(0).max(65_535) }).strict(),
  // KeyboardEvent.code values are ASCII words (`KeyA`, `ArrowUp`, `Numpad1`).
  z.object({ type: z.literal('key'), action: z.enum(['down', 'up']), code: z.string().regex(/^[A-Za-z0-9]{1,32}$/) }).strict(),
]);

/** A control request (`act`'s params) as it may arrive from outside. */
export const controlRequestSchema = z.object({ target: z.enum(['vm', 'backend']), name, action: z.enum(['start', 'stop', 'restart']) }).strict();

const id = z.union([z.number().int(), z.string().max(64)]);
const requestSchema = z.discriminatedUnion('method', [
  z.object({ id, method: z.literal('hello') }).strict(),
  z.object({ id, method: z.literal('snapshot') }).strict(),
  z.object({ id, method: z.literal('console-tail'), params: z.object({ vm: name }).strict() }).strict(),
  z.object({ id, method: z.literal('bus'), params: z.object({ bus: name }).strict() }).strict(),
  z.object({ id, method: z.literal('act'), params: controlRequestSchema }).strict(),
  z.object({ id, method: z.literal('screenshot'), params: z.object({ vm: name, display: name }).strict() }).strict(),
  z.object({ id, method: z.literal('input'), params: z.object({ vm: name, display: name, event: inputEventSchema }).strict() }).strict(),
  z.object({ id, method: z.literal('balloon'), params: z.object({ vm: name, target: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() }).strict() }).strict(),
  z.object({ id, method: z.literal('subscribe') }).strict(),
  z.object({ id, method: z.literal('unsubscribe') }).strict(),
]);
type Request = z.infer<typeof requestSchema>;

/** What `hello` answers. */
export interface ControlHello {
  protocol: number;
  /** The process that runs the platform. */
  pid: number;
}

/** Splits a byte stream into lines, refusing a line longer than `max` bytes. */
class LineReader {
  #parts: Buffer[] = [];
  #size = 0;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** The whole lines in `chunk` (with what came before); throws ControlProtocolError past `max`. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#add(chunk.subarray(start, nl));
      lines.push(Buffer.concat(this.#parts, this.#size).toString('utf8'));
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) this.#add(chunk.subarray(start));
    return lines;
  }

  #add(b: Buffer): void {
    this.#size += b.length;
    if (this.#size > this.#max) throw new ControlProtocolError(`a line of over ${this.#max} bytes`);
    this.#parts.push(b);
  }
}

/** Serves a RunControl on a Unix socket (see the file comment). */
export class ControlServer {
  readonly path: string;
  readonly #server: Server;
  readonly #connections = new Set<Socket>();

  private constructor(path: string, server: Server) {
    this.path = path;
    this.#server = server;
  }

  /**
   * Listens at `path` (mode 0600). A socket file left by a run that has died is replaced.
   * @throws RunDirError when a live run answers there, or the socket cannot be created.
   */
  static async listen(path: string, control: RunControl): Promise<ControlServer> {
    if (existsSync(path)) {
      if (await answers(path)) throw new RunDirError(`another avp run is using ${path}; give this run a run directory of its own`);
      if (lstatSync(path).isSocket()) unlinkSync(path);
    }
    const server = createServer();
    const out = new ControlServer(path, server);
    server.on('connection', (socket) => out.#serve(socket, control));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new RunDirError(`cannot create the control socket ${path}: ${errorText(e)}`, { cause: e })));
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600); // only the user who runs the platform may control it
    return out;
  }

  /** Stops listening, ends every connection and removes the socket file. */
  async close(): Promise<void> {
    for (const c of this.#connections) c.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  #serve(socket: Socket, control: RunControl): void {
    this.#connections.add(socket);
    const reader = new LineReader(MAX_REQUEST_BYTES);
    let unsubscribe: (() => void) | undefined;
    const send = (msg: unknown): void => {
      if (socket.destroyed) return;
      if (socket.writableLength > MAX_BACKLOG_BYTES) return void socket.destroy(); // a client that does not read
      socket.write(`${JSON.stringify(msg)}\n`);
    };
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (e: unknown) {
        send({ id: null, error: wireError(e) });
        socket.end();
        return;
      }
      for (const line of lines) {
        const req = parseRequest(line);
        if (req instanceof ControlProtocolError) {
          send({ id: idOf(line), error: wireError(req) });
          continue;
        }
        if (req.method === 'subscribe') {
          unsubscribe ??= control.subscribe((event) => send({ event }));
          send({ id: req.id, result: true });
        } else if (req.method === 'unsubscribe') {
          unsubscribe?.();
          unsubscribe = undefined;
          send({ id: req.id, result: true });
        } else {
          handle(control, req).then(
            (result) => send({ id: req.id, result }),
            (e: unknown) => send({ id: req.id, error: wireError(e) }),
          );
        }
      }
    });
    socket.on('error', () => {}); // a client that goes away mid-write; 'close' follows
    socket.on('close', () => {
      unsubscribe?.();
      this.#connections.delete(socket);
    });
  }
}

function parseRequest(line: string): Request | ControlProtocolError {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e: unknown) {
    return new ControlProtocolError(`not JSON: ${errorText(e)}`);
  }
  const parsed = requestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return new ControlProtocolError(`not a control request: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || '(request)'}: ${issue.message}`}`);
  }
  return parsed.data;
}

/** The request's id, quoted back with a protocol error when there is one. */
function idOf(line: string): number | string | null {
  try {
    const v = JSON.parse(line) as { id?: unknown }; // checked below
    return typeof v.id === 'number' || (typeof v.id === 'string' && v.id.length <= 64) ? v.id : null;
  } catch {
    return null;
  }
}

async function handle(control: RunControl, req: Exclude<Request, { method: 'subscribe' | 'unsubscribe' }>): Promise<unknown> {
  switch (req.method) {
    case 'hello':
      return { protocol: CONTROL_PROTOCOL_VERSION, pid: process.pid } satisfies ControlHello;
    case 'snapshot':
      return control.snapshot();
    case 'console-tail':
      return control.consoleTail(req.params.vm);
    case 'bus':
      return control.busTail(req.params.bus);
    case 'act':
      return control.act(req.params);
    case 'screenshot':
      return { png: (await control.screenshot(req.params.vm, req.params.display)).toString('base64') };
    case 'input':
      await control.input(req.params.vm, req.params.display, req.params.event);
      return true;
    case 'balloon':
      return control.balloon(req.params.vm, req.params.target);
  }
}

/** An error as the protocol sends it: the AVP error code, or CONTROL_INTERNAL for anything else. */
function wireError(e: unknown): { code: string; message: string } {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined; // checked below
  return { code: typeof code === 'string' ? code : 'CONTROL_INTERNAL', message: errorText(e) };
}

/** Whether something accepts connections at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A RunControl over a run's control socket. */
export class ControlClient implements RunControl {
  readonly #socket: Socket;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners = new Set<(e: ControlEvent) => void>();
  #nextId = 1;
  #closedReason: string | undefined;
  /** Resolves with why, when the connection has ended (the run ended, or close()). */
  readonly closed: Promise<string>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    const reader = new LineReader(MAX_RESPONSE_BYTES);
    let onClosed: (reason: string) => void = () => {};
    this.closed = new Promise((resolve) => (onClosed = resolve));
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (e: unknown) {
        this.#end(errorText(e));
        return;
      }
      for (const line of lines) this.#onLine(line);
    });
    socket.on('error', (e) => this.#end(errorText(e)));
    socket.on('close', () => {
      this.#end('the run ended (its control socket closed)');
      onClosed(this.#closedReason ?? 'closed');
    });
  }

  /**
   * Connects to the control socket at `path` and checks the protocol version.
   * @throws ControlUnavailableError when nothing answers there; ControlProtocolError on another version.
   */
  static async connect(path: string): Promise<ControlClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(s));
      s.once('error', (e: NodeJS.ErrnoException) => reject(new ControlUnavailableError(`no running platform answers on ${path} (${e.code ?? errorText(e)})`, { cause: e })));
    });
    const client = new ControlClient(socket);
    const hello = (await client.#call('hello')) as ControlHello; // the server's hello shape
    if (hello.protocol !== CONTROL_PROTOCOL_VERSION) {
      client.close();
      throw new ControlProtocolError(`the run at ${path} speaks control protocol ${String(hello.protocol)}; this avp speaks ${CONTROL_PROTOCOL_VERSION}`);
    }
    return client;
  }

  snapshot(): Promise<ControlSnapshot> {
    return this.#call('snapshot') as Promise<ControlSnapshot>; // the server sends a ControlSnapshot
  }

  consoleTail(vm: string): Promise<string[]> {
    return this.#call('console-tail', { vm }) as Promise<string[]>;
  }

  busTail(bus: string): Promise<string[]> {
    return this.#call('bus', { bus }) as Promise<string[]>;
  }

  act(req: ControlRequest): Promise<string> {
    return this.#call('act', req) as Promise<string>;
  }

  async screenshot(vm: string, display: string): Promise<Buffer> {
    const r = (await this.#call('screenshot', { vm, display })) as { png: string };
    return Buffer.from(r.png, 'base64');
  }

  async input(vm: string, display: string, event: InputEvent): Promise<void> {
    await this.#call('input', { vm, display, event });
  }

  balloon(vm: string, targetBytes?: number): Promise<BalloonInfo> {
    return this.#call('balloon', targetBytes === undefined ? { vm } : { vm, target: targetBytes }) as Promise<BalloonInfo>; // the server sends a BalloonInfo
  }

  subscribe(listener: (e: ControlEvent) => void): () => void {
    if (this.#listeners.size === 0) this.#call('subscribe').catch(() => {});
    this.#listeners.add(listener);
    return () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return;
      this.#call('unsubscribe').catch(() => {});
    };
  }

  /** Ends the connection. */
  close(): void {
    this.#socket.destroy();
  }

  #call(method: string, params?: unknown): Promise<unknown> {
    if (this.#closedReason !== undefined) return Promise.reject(new ControlUnavailableError(this.#closedReason));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.write(`${JSON.stringify(params === undefined ? { id, method } : { id, method, params })}\n`);
    });
  }

  #onLine(line: string): void {
    let msg: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown }; event?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg; // each field is checked before use
    } catch {
      return this.#end('the control socket sent a line that is not JSON');
    }
    if (msg.event !== undefined) {
      for (const l of this.#listeners) l(msg.event as ControlEvent); // the server sends ControlEvents
      return;
    }
    const waiter = typeof msg.id === 'number' ? this.#pending.get(msg.id) : undefined;
    if (waiter === undefined) return;
    this.#pending.delete(msg.id as number); // a number: it found a waiter
    if (msg.error === undefined) return waiter.resolve(msg.result);
    const code = typeof msg.error.code === 'string' ? msg.error.code : 'CONTROL_INTERNAL';
    const message = typeof msg.error.message === 'string' ? msg.error.message : code;
    waiter.reject(code === 'CONTROL_REFUSED' ? new ControlRefusedError(message) : code === 'CONTROL_UNKNOWN_TARGET' ? new ControlTargetError(message) : new ControlRemoteError(code, message));
  }

  #end(reason: string): void {
    this.#closedReason ??= reason;
    for (const w of this.#pending.values()) w.reject(new ControlUnavailableError(this.#closedReason));
    this.#pending.clear();
    this.#socket.destroy();
  }
}
