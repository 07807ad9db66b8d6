// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard's web server (`avp run --ui`, `avp ui RUNDIR`): a page that shows a running
 * platform live and asks it to start, stop and restart VMs and back-ends, over a RunControl (the
 * run in this process, or a control-socket client; platform/run/control.ts).
 *
 * Access: it listens on 127.0.0.1 by default, and every URL starts with a random token
 * (`http://127.0.0.1:PORT/TOKEN/`): a request without it, or with another, gets 403, so other
 * users of the machine and web pages in the browser cannot reach it. On a loopback address the
 * Host header must name it too (DNS rebinding); POSTs must be JSON and, from a browser, of the
 * page's own origin. Responses forbid framing, caching and referrers; reports are served
 * sandboxed (their scripts cannot reach the API).
 *
 * Routes under /TOKEN/: `` the page, `style.css` and the page's scripts (assets.ts), `ws` the
 * WebSocket (wire.ts ServerMessage/ClientMessage: snapshots every second, console and bus lines,
 * the run's messages; input to screens), `api/snapshot` (GET, PageSnapshot), `api/action` (POST
 * ActionRequest → ActionResponse), `api/screens/VM/DISPLAY.png` (GET), `reports/I/NAME.html`.
 *
 * Owns: HTTP and WebSocket handling (ws, the WebSocket library), access checks, pacing of
 * snapshots. Does not own: what the page shows (view.ts, page/), the rules (the supervisor).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { errorText } from '../errors.js';
import { controlRequestSchema, inputEventSchema, type ControlEvent, type RunControl } from '../platform/run/index.js';
import { PAGE_FILES, listReports, reportPath } from './assets.js';
import { pageSnapshot } from './view.js';
import type { ActionResponse, ServerMessage } from './wire.js';

export interface DashboardOptions {
  control: RunControl;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default: 32 random bytes, base64url. */
  token?: string;
  /** Folders whose *.html files the page links (conformance and benchmark reports). */
  reportDirs?: readonly string[];
  /** Shown on the page: the run is in this process, or attached through its control socket. */
  mode: 'in-process' | 'attached';
  /** How often snapshots are taken while a page is open. Default 1000 ms. */
  intervalMs?: number;
}

/** The largest POST body read (an action request is under 1 KiB). */
const MAX_BODY_BYTES = 16 * 1024;
/** The largest WebSocket message taken from a page (an input event). */
const MAX_WS_MESSAGE_BYTES = 16 * 1024;
/** Run messages kept for pages that connect later. */
const LOG_HISTORY = 200;
/** Console and bus lines are sent in batches this often. */
const FLUSH_MS = 100;

const clientMessageSchema = z.object({ type: z.literal('input'), vm: z.string().min(1).max(256), display: z.string().min(1).max(256), event: inputEventSchema }).strict();

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'";

export class Dashboard {
  /** `http://HOST:PORT/TOKEN/`: the page's address, token included. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly #opts: DashboardOptions;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<WebSocket>();
  readonly #allowedHosts: Set<string> | undefined;
  readonly #reportDirs: readonly string[];
  readonly #log: Array<{ level: 'info' | 'error'; message: string; at: number }> = [];
  #pendingConsole = new Map<string, string[]>();
  #pendingBus = new Map<string, string[]>();
  #pendingLog: Array<{ level: 'info' | 'error'; message: string; at: number }> = [];
  #unsubscribe: () => void;
  #ticker: NodeJS.Timeout | undefined;
  #flusher: NodeJS.Timeout | undefined;
  #polling = false;
  #ended: string | undefined;

  private constructor(opts: DashboardOptions, server: Server, port: number, token: string) {
    this.#opts = opts;
    this.#server = server;
    this.port = port;
    this.token = token;
    const host = opts.host ?? '127.0.0.1';
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/${token}/`;
    this.#allowedHosts = isLoopback(host) ? new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`]) : undefined;
    this.#reportDirs = opts.reportDirs ?? [];
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
    this.#unsubscribe = opts.control.subscribe((e) => this.#onEvent(e));
    server.on('request', (req, res) => void this.#onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      if (this.#refusal(req) !== undefined || (req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host ?? ''}`)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onClient(ws));
    });
    this.#ticker = setInterval(() => void this.#poll(), opts.intervalMs ?? 1000);
    this.#flusher = setInterval(() => this.#flush(), FLUSH_MS);
  }

  /** Starts serving. @throws the listen error (EADDRINUSE, EACCES) */
  static async start(opts: DashboardOptions): Promise<Dashboard> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port; // a TCP server's address
    return new Dashboard(opts, server, port, opts.token ?? randomBytes(32).toString('base64url'));
  }

  /** Tells open pages the run has ended (why), and stops asking it for snapshots. */
  end(reason: string): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    clearInterval(this.#ticker);
    this.#flush();
    this.#broadcast({ type: 'ended', reason });
  }

  /** Closes every page's connection and the server. */
  async close(): Promise<void> {
    clearInterval(this.#ticker);
    clearInterval(this.#flusher);
    this.#unsubscribe();
    for (const ws of this.#clients) ws.close(1001, 'the dashboard is closing');
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------------
  // Access

  /** Why `req` is refused (status and text), or undefined. */
  #refusal(req: IncomingMessage): { status: number; text: string } | undefined {
    if (this.#allowedHosts !== undefined && !this.#allowedHosts.has(req.headers.host ?? '')) {
      return { status: 403, text: 'forbidden: this dashboard answers only to its own loopback address\n' };
    }
    const first = (req.url ?? '/').split('?')[0]?.split('/')[1] ?? '';
    if (!this.#tokenMatches(first)) return { status: 403, text: 'forbidden: open the dashboard with the address avp printed, token included\n' };
    return undefined;
  }

  #tokenMatches(given: string): boolean {
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const refused = this.#refusal(req);
      if (refused !== undefined) return send(res, refused.status, 'text/plain; charset=utf-8', refused.text);
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const parts = path.split('/').slice(2).map((p) => safeDecode(p));
      // `/TOKEN` without the slash: the page's relative URLs need it.
      if (parts.length === 0) return redirect(res, `/${this.token}/`);
      const route = parts.join('/');
      const method = req.method ?? 'GET';
      if (route === 'api/action') return await this.#action(req, res);
      const page = parts.length === 1 ? PAGE_FILES.get(route) : undefined;
      const screen = parts[0] === 'api' && parts[1] === 'screens' && parts.length === 4 && parts[3]?.endsWith('.png') === true;
      const report = parts[0] === 'reports' && parts.length === 3;
      if (page === undefined && route !== 'api/snapshot' && !screen && !report) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'GET only\n');
      if (page !== undefined) send(res, 200, page.type, await readFile(page.path), route === '' ? PAGE_CSP : undefined);
      else if (route === 'api/snapshot') await this.#snapshotJson(res);
      else if (screen) await this.#screenshot(res, parts[2] ?? '', (parts[3] ?? '').slice(0, -'.png'.length));
      else await this.#report(res, parts[1] ?? '', parts[2] ?? '');
    } catch (e: unknown) {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${errorText(e)}\n`);
      else res.destroy();
    }
  }

  async #snapshotJson(res: ServerResponse): Promise<void> {
    const snap = pageSnapshot(await this.#opts.control.snapshot(), listReports(this.#reportDirs));
    send(res, 200, 'application/json', JSON.stringify(snap));
  }

  async #action(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: ActionResponse): void => send(res, status, 'application/json', JSON.stringify(body));
    if (req.method !== 'POST') return reply(405, { ok: false, code: 'METHOD', message: 'POST an action request' });
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return reply(415, { ok: false, code: 'CONTENT_TYPE', message: 'send application/json' });
    if (req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host ?? ''}`) return reply(403, { ok: false, code: 'ORIGIN', message: 'forbidden: another origin' });
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) return reply(413, { ok: false, code: 'TOO_LARGE', message: `a body over ${MAX_BODY_BYTES} bytes` });
    let parsed;
    try {
      parsed = controlRequestSchema.safeParse(JSON.parse(body));
    } catch {
      return reply(400, { ok: false, code: 'BAD_REQUEST', message: 'not JSON' });
    }
    if (!parsed.success) return reply(400, { ok: false, code: 'BAD_REQUEST', message: `expected {target: vm|backend, name, action: start|stop|restart}: ${parsed.error.issues[0]?.message ?? ''}` });
    try {
      const message = await this.#opts.control.act(parsed.data);
      reply(200, { ok: true, message });
      void this.#poll(); // show the new state at once
    } catch (e: unknown) {
      const code = codeOf(e);
      reply(code === 'CONTROL_REFUSED' ? 409 : code === 'CONTROL_UNKNOWN_TARGET' ? 404 : 500, { ok: false, code, message: errorText(e) });
    }
  }

  async #screenshot(res: ServerResponse, vm: string, display: string): Promise<void> {
    try {
      send(res, 200, 'image/png', await this.#opts.control.screenshot(vm, display));
    } catch (e: unknown) {
      send(res, codeOf(e) === 'CONTROL_UNKNOWN_TARGET' ? 404 : 500, 'text/plain; charset=utf-8', `${errorText(e)}\n`);
    }
  }

  async #report(res: ServerResponse, index: string, name: string): Promise<void> {
    const file = reportPath(this.#reportDirs, index, name);
    const data = file === undefined ? undefined : await readFile(file).catch(() => undefined);
    if (data === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'no such report\n');
    send(res, 200, 'text/html; charset=utf-8', data, REPORT_CSP);
  }

  // -------------------------------------------------------------------------------------------
  // WebSocket

  #onClient(ws: WebSocket): void {
    this.#clients.add(ws);
    ws.on('close', () => this.#clients.delete(ws));
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => void this.#onClientMessage(ws, isBinary ? undefined : data.toString()));
    sendWs(ws, { type: 'hello', mode: this.#opts.mode, reportDirs: [...this.#reportDirs] });
    void this.#greet(ws);
  }

  /** A page that connects gets a snapshot, every console's and bus's tail, and the recent messages. */
  async #greet(ws: WebSocket): Promise<void> {
    const control = this.#opts.control;
    try {
      const snap = await control.snapshot();
      sendWs(ws, { type: 'snapshot', snapshot: pageSnapshot(snap, listReports(this.#reportDirs)) });
      for (const vm of snap.vms) sendWs(ws, { type: 'console-line', vm: vm.name, lines: await control.consoleTail(vm.name).catch(() => []), reset: true });
      for (const bus of snap.buses) sendWs(ws, { type: 'bus', bus: bus.name, lines: await control.busTail(bus.name).catch(() => []), reset: true });
    } catch {
      // the run is going away; 'ended' follows
    }
    if (this.#log.length > 0) sendWs(ws, { type: 'log', entries: [...this.#log] });
    if (this.#ended !== undefined) sendWs(ws, { type: 'ended', reason: this.#ended });
  }

  async #onClientMessage(ws: WebSocket, text: string | undefined): Promise<void> {
    let msg;
    try {
      msg = clientMessageSchema.parse(JSON.parse(text ?? ''));
    } catch {
      return sendWs(ws, { type: 'input-error', message: 'not an input message' });
    }
    try {
      await this.#opts.control.input(msg.vm, msg.display, msg.event);
    } catch (e: unknown) {
      sendWs(ws, { type: 'input-error', message: errorText(e) });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Live data

  async #poll(): Promise<void> {
    if (this.#clients.size === 0 || this.#polling || this.#ended !== undefined) return;
    this.#polling = true;
    try {
      const snap = await this.#opts.control.snapshot();
      this.#broadcast({ type: 'snapshot', snapshot: pageSnapshot(snap, listReports(this.#reportDirs)) });
    } catch {
      // the run is going away (the CLI ends the dashboard), or one snapshot failed: try next time
    } finally {
      this.#polling = false;
    }
  }

  #onEvent(e: ControlEvent): void {
    if (e.type === 'console-line') appendTo(this.#pendingConsole, e.vm, e.line);
    else if (e.type === 'bus') appendTo(this.#pendingBus, e.bus, e.line);
    else {
      const entry = { level: e.level, message: e.message, at: e.at };
      this.#log.push(entry);
      if (this.#log.length > LOG_HISTORY) this.#log.shift();
      this.#pendingLog.push(entry);
    }
  }

  #flush(): void {
    for (const [vm, lines] of this.#pendingConsole) this.#broadcast({ type: 'console-line', vm, lines });
    for (const [bus, lines] of this.#pendingBus) this.#broadcast({ type: 'bus', bus, lines });
    if (this.#pendingLog.length > 0) this.#broadcast({ type: 'log', entries: this.#pendingLog });
    this.#pendingConsole = new Map();
    this.#pendingBus = new Map();
    this.#pendingLog = [];
  }

  #broadcast(msg: ServerMessage): void {
    const text = JSON.stringify(msg);
    for (const ws of this.#clients) if (ws.readyState === ws.OPEN) ws.send(text);
  }
}

/** Appends `line` to `key`'s list in `pending` (in place: a burst of lines is not copied per line). */
function appendTo(pending: Map<string, string[]>, key: string, line: string): void {
  const lines = pending.get(key);
  if (lines === undefined) pending.set(key, [line]);
  else lines.push(line);
}

function sendWs(ws: WebSocket, msg: ServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, csp?: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Content-Security-Policy': csp ?? "default-src 'none'; frame-ancestors 'none'" });
  res.end(body);
}

function redirect(res: ServerResponse, to: string): void {
  res.writeHead(308, { ...SECURITY_HEADERS, Location: to, 'Content-Length': 0 });
  res.end();
}

/** The body as text, or undefined when it is longer than `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length; // an IncomingMessage without setEncoding yields Buffers
    if (size > max) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a bad escape matches no route
  }
}

function codeOf(e: unknown): string {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined; // checked below
  return typeof code === 'string' ? code : 'INTERNAL';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
