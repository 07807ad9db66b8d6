// SPDX-License-Identifier: Apache-2.0
/**
 * The GPIO control socket: how a host program drives a device's lines and watches the guest.
 *
 * Protocol (AF_UNIX stream, UTF-8 lines ending in `\n`, each at most 256 bytes). Requests are
 * words; every answer and every event is one JSON object on one line:
 *
 * | request | answer |
 * |---|---|
 * | `list` | `{"ok":true,"lines":[LINE, ...]}` |
 * | `get <line>` | `{"ok":true,"line":LINE}` |
 * | `set <line> <0\|1>` | `{"ok":true,"line":LINE}`: drives the line's external level, which the guest reads while the line is an input |
 * | anything else | `{"ok":false,"error":"..."}` |
 *
 * `<line>` is a line name or number. LINE is `{"line":0,"name":"door","direction":"in",
 * "value":1,"level":1,"irq":"edge-both"}`: `value` is what the guest reads (its own output value
 * for an output), `level` the external level, `irq` the trigger type the guest enabled.
 * Every client also gets every event, as it happens, with an `"event"` key:
 * `{"event":"direction","line":2,"name":"led","direction":"out"}` (the guest changed it),
 * `{"event":"output","line":2,"name":"led","value":1}` (a line the guest drives changed level),
 * `{"event":"level","line":0,"name":"door","value":1,"by":"host"|"trace"|"script"}`,
 * `{"event":"irq-type","line":0,"name":"door","type":"edge-both"}` (the guest enabled or disabled
 * an interrupt) and `{"event":"interrupt","line":0,"name":"door"}` (one was delivered).
 *
 * Owns: the listening socket (created at construction, so it exists before any guest), clients
 * (at most 16), line framing and caps, fan-out. A client that sends an over-long line, or reads so
 * slowly that 256 KiB of output piles up, is disconnected. Does not own: line semantics (the
 * handler, model.ts), any OS call (UnixStreamOps, injected).
 */
import type { HostReactor, HostWatch } from '../../device/contract.js';
import { errorText } from '../../errors.js';
import { PendingOutput, acceptPending, drainReadable } from '../stream-io.js';
import type { UnixStreamOps } from '../vsock/host.js';
import { GpioConfigError } from './errors.js';

export const CONTROL_MAX_LINE = 256;
export const CONTROL_MAX_CLIENTS = 16;
export const CONTROL_MAX_PENDING = 256 * 1024;

/** A line as the control socket shows it. */
export interface LineInfo {
  readonly line: number;
  readonly name: string;
  readonly direction: 'none' | 'out' | 'in';
  readonly value: 0 | 1;
  readonly level: 0 | 1;
  readonly irq: string;
}

/** What the device answers the control socket with. */
export interface GpioControlHandler {
  lines(): LineInfo[];
  /** The line `ref` (a name or number), or an error message. */
  line(ref: string): LineInfo | string;
  /** Drives line `ref`'s external level; the line after, or an error message. */
  setLevel(ref: string, value: 0 | 1): LineInfo | string;
}

interface Client {
  readonly fd: number;
  watch: HostWatch | undefined;
  input: string;
  readonly out: PendingOutput;
}

const encoder = new TextEncoder();

export class GpioControlServer {
  readonly path: string;
  readonly #ops: UnixStreamOps;
  readonly #handler: GpioControlHandler;
  readonly #listenFd: number;
  readonly #clients = new Set<Client>();
  #reactor: HostReactor | undefined;
  #listenWatch: HostWatch | undefined;
  #closed = false;
  /** Clients dropped for over-long lines, slow reading or over the cap. */
  dropped = 0;

  /** @throws GpioConfigError GPIO_CONTROL_SOCKET when the socket cannot be created */
  constructor(path: string, ops: UnixStreamOps, handler: GpioControlHandler) {
    this.path = path;
    this.#ops = ops;
    this.#handler = handler;
    try {
      this.#listenFd = ops.listen(path);
    } catch (e: unknown) {
      throw new GpioConfigError('GPIO_CONTROL_SOCKET', `--control: cannot listen on ${path}: ${errorText(e)}`, { cause: e });
    }
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Starts serving on `reactor` (the device's first activation); later calls do nothing. */
  start(reactor: HostReactor): void {
    if (this.#reactor !== undefined || this.#closed) return;
    this.#reactor = reactor;
    this.#listenWatch = reactor.watch(this.#listenFd, () => this.#accept());
  }

  /** Sends `event` to every client. */
  broadcast(event: Readonly<Record<string, unknown>>): void {
    if (this.#clients.size === 0) return;
    const bytes = encoder.encode(`${JSON.stringify(event)}\n`);
    for (const c of [...this.#clients]) this.#send(c, bytes);
  }

  /** Closes every client and the listener, and removes the socket file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#clients]) this.#drop(c, false);
    this.#listenWatch?.close();
    this.#ops.close(this.#listenFd);
    this.#ops.unlink(this.path);
  }

  #accept(): void {
    acceptPending(this.#ops, this.#listenFd, (fd) => {
      const c: Client = { fd, watch: undefined, input: '', out: new PendingOutput() };
      if (this.#clients.size >= CONTROL_MAX_CLIENTS) {
        this.dropped++;
        this.#write(c, encoder.encode(`${JSON.stringify({ ok: false, error: `too many clients (at most ${CONTROL_MAX_CLIENTS})` })}\n`));
        this.#ops.close(fd);
        return;
      }
      this.#clients.add(c);
      // Safe: #accept only runs from the listen watch, which start() created with the reactor.
      c.watch = this.#reactor!.watch(fd, (ready) => this.#ready(c, ready));
    });
  }

  #ready(c: Client, ready: { readable: boolean; writable: boolean; hangup: boolean }): void {
    if (ready.writable) this.#flush(c);
    if (ready.readable || ready.hangup) this.#read(c);
  }

  #read(c: Client): void {
    const end = drainReadable(this.#ops, c.fd, new Uint8Array(4096), (chunk) => {
      c.input += new TextDecoder().decode(chunk);
      for (let nl = c.input.indexOf('\n'); nl >= 0; nl = c.input.indexOf('\n')) {
        const line = c.input.slice(0, nl).replace(/\r$/, '');
        c.input = c.input.slice(nl + 1);
        if (!this.#clients.has(c)) return false;
        this.#send(c, encoder.encode(`${JSON.stringify(this.#answer(line))}\n`));
      }
      if (c.input.length > CONTROL_MAX_LINE) {
        this.#send(c, encoder.encode(`${JSON.stringify({ ok: false, error: `line longer than ${CONTROL_MAX_LINE} bytes` })}\n`));
        this.#drop(c, true);
        return false;
      }
      // A reply that overflowed the client's buffer dropped it: its fd is closed, read no more.
      return this.#clients.has(c);
    });
    if (end === 'closed' || end === 'failed') this.#drop(c, false);
  }

  #answer(line: string): Record<string, unknown> {
    if (line.length > CONTROL_MAX_LINE) return { ok: false, error: `line longer than ${CONTROL_MAX_LINE} bytes` };
    const words = line.trim().split(/\s+/);
    const [cmd, ref, value] = words;
    const result = (r: LineInfo | string) => (typeof r === 'string' ? { ok: false, error: r } : { ok: true, line: r });
    if (cmd === 'list' && words.length === 1) return { ok: true, lines: this.#handler.lines() };
    if (cmd === 'get' && words.length === 2 && ref !== undefined) return result(this.#handler.line(ref));
    if (cmd === 'set' && words.length === 3 && ref !== undefined && (value === '0' || value === '1')) return result(this.#handler.setLevel(ref, value === '1' ? 1 : 0));
    return { ok: false, error: `unknown request '${line.slice(0, 64)}': expected 'list', 'get <line>' or 'set <line> <0|1>'` };
  }

  #send(c: Client, bytes: Uint8Array): void {
    if (!this.#clients.has(c)) return;
    if (c.out.bytes + bytes.length > CONTROL_MAX_PENDING) {
      this.dropped++;
      this.#drop(c, false);
      return;
    }
    c.out.push(bytes);
    this.#flush(c);
  }

  #flush(c: Client): void {
    if (!c.out.flush(this.#ops, c.fd)) {
      this.#drop(c, false);
      return;
    }
    c.watch?.setWritable(!c.out.empty);
  }

  /** Best effort, for a client about to be closed. */
  #write(c: Client, bytes: Uint8Array): void {
    try {
      this.#ops.write(c.fd, bytes);
    } catch {
      // the client is being dropped anyway
    }
  }

  #drop(c: Client, flush: boolean): void {
    if (!this.#clients.delete(c)) return;
    if (flush) for (const b of c.out.chunks()) this.#write(c, b);
    if (flush) this.dropped++;
    c.watch?.close();
    this.#ops.close(c.fd);
  }
}
