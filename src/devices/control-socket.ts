// SPDX-License-Identifier: Apache-2.0
/**
 * A device's control socket: a Unix stream socket on the host where tools (`avp screenshot`,
 * `avp input`, `socat`) talk to a running back-end, served in the back-end's own event loop.
 *
 * Protocol: one request per line (UTF-8, at most 4096 bytes, `\n`-terminated; a trailing `\r` is
 * dropped), one reply per request: a single line of JSON, `{"ok":true,...}` or
 * `{"ok":false,"error":"..."}`. Requests on one connection are answered in order; a client may
 * send several before reading. What the requests mean is the device's (`handle`), except one:
 * `capabilities` answers `{"ok":true,"device":KIND,"requests":[...]}` for every device, so tools
 * find the socket that takes a request (`avp screenshot` looks for `screenshot`) without knowing
 * device kinds.
 *
 * Owns: listening, accepting (at most `MAX_CLIENTS` at once), line framing with its length cap,
 * reply buffering (a client that does not read is dropped past `MAX_PENDING_BYTES`), closing.
 * Does not own: OS calls (the injected UnixStreamOps), the requests' meaning.
 */
import type { DeviceLog, HostReactor, HostWatch } from '../device/contract.js';
import { PendingOutput, acceptPending, drainReadable } from './stream-io.js';
import type { UnixStreamOps } from './vsock/host.js';

/** Longest request line accepted. */
export const MAX_LINE_BYTES = 4096;
/** Clients served at once; more are accepted and closed at once. */
export const MAX_CLIENTS = 16;
/** Reply bytes a client may leave unread before it is dropped. */
export const MAX_PENDING_BYTES = 1 << 20;

/** A reply: sent as one JSON line. */
export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

interface Client {
  fd: number;
  watch: HostWatch;
  input: string;
  readonly out: PendingOutput;
  /** The client sent its last request: close once the replies are out. */
  ended: boolean;
}

export class ControlSocket {
  readonly path: string;
  readonly #ops: UnixStreamOps;
  readonly #handle: (line: string) => ControlReply;
  readonly #about: { device: string; requests: readonly string[] };
  #log: DeviceLog | undefined;
  readonly #listenFd: number;
  #listenWatch: HostWatch | undefined;
  readonly #clients = new Set<Client>();
  #closed = false;
  /** Requests answered (metrics). */
  requests = 0;

  /**
   * Listens at `path` now (so a bad path fails at start-up); serving starts with `serve`.
   * @throws whatever `ops.listen` throws.
   */
  constructor(path: string, ops: UnixStreamOps, about: { device: string; requests: readonly string[] }, handle: (line: string) => ControlReply) {
    this.path = path;
    this.#ops = ops;
    this.#about = about;
    this.#handle = handle;
    this.#listenFd = ops.listen(path);
  }

  /** Starts accepting clients in `reactor`'s loop; problems with clients are logged to `log`. */
  serve(reactor: HostReactor, log: DeviceLog): void {
    if (this.#closed || this.#listenWatch !== undefined) return;
    this.#log = log;
    this.#listenWatch = reactor.watch(this.#listenFd, () => this.#accept(reactor));
  }

  /** Closes every client and the listening socket, and removes the socket file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#clients]) this.#drop(c);
    this.#listenWatch?.close();
    this.#ops.close(this.#listenFd);
    this.#ops.unlink(this.path);
  }

  #accept(reactor: HostReactor): void {
    const onClient = (fd: number): void => {
      if (this.#clients.size >= MAX_CLIENTS) {
        this.#ops.close(fd);
        return;
      }
      const c: Client = { fd, watch: undefined as unknown as HostWatch, input: '', out: new PendingOutput(), ended: false };
      // Safe: assigned before any callback can run (callbacks run from the loop, not from watch()).
      c.watch = reactor.watch(fd, (r) => this.#ready(c, r));
      this.#clients.add(c);
    };
    acceptPending(this.#ops, this.#listenFd, onClient, (e) => {
      this.#log?.warn(`control socket ${this.path}: accept failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  #ready(c: Client, r: { readable: boolean; writable: boolean; hangup: boolean }): void {
    if (r.writable) this.#flush(c);
    if (r.readable || r.hangup) this.#read(c);
  }

  #read(c: Client): void {
    if (!this.#clients.has(c)) return;
    const end = drainReadable(this.#ops, c.fd, new Uint8Array(4096), (chunk) => {
      c.input += Buffer.from(chunk).toString('utf8');
      this.#lines(c, false);
      return this.#clients.has(c);
    });
    if (end === 'failed') this.#drop(c);
    else if (end === 'closed') {
      // The client sent everything: answer what is left, then close once the replies are out.
      this.#lines(c, true);
      if (!this.#clients.has(c)) return;
      c.ended = true;
      c.watch.setReadable(false);
      if (c.out.empty) this.#drop(c);
    }
  }

  /** Answers each complete line; with `atEnd`, a last line without a newline too. */
  #lines(c: Client, atEnd: boolean): void {
    for (let nl = c.input.indexOf('\n'); nl >= 0; nl = c.input.indexOf('\n')) {
      const line = c.input.slice(0, nl).replace(/\r$/, '');
      c.input = c.input.slice(nl + 1);
      this.#answer(c, line);
    }
    if (Buffer.byteLength(c.input) > MAX_LINE_BYTES) {
      this.#reply(c, { ok: false, error: `request line longer than ${MAX_LINE_BYTES} bytes` });
      c.input = '';
      c.watch.setReadable(false);
      return;
    }
    if (atEnd && c.input.trim() !== '') {
      this.#answer(c, c.input.replace(/\r$/, ''));
      c.input = '';
    }
  }

  #answer(c: Client, line: string): void {
    if (line.trim() === '') return;
    let reply: ControlReply;
    try {
      reply = line.trim() === 'capabilities' ? { ok: true, device: this.#about.device, requests: [...this.#about.requests] } : this.#handle(line.trim());
    } catch (e: unknown) {
      reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    this.requests++;
    this.#reply(c, reply);
  }

  #reply(c: Client, reply: ControlReply): void {
    if (!this.#clients.has(c)) return;
    const bytes = new TextEncoder().encode(`${JSON.stringify(reply)}\n`);
    if (c.out.bytes + bytes.length > MAX_PENDING_BYTES) {
      this.#log?.warn(`control socket ${this.path}: a client does not read its replies; dropped`);
      this.#drop(c);
      return;
    }
    c.out.push(bytes);
    this.#flush(c);
  }

  #flush(c: Client): void {
    if (!c.out.flush(this.#ops, c.fd)) {
      this.#drop(c);
      return;
    }
    if (c.out.empty && c.ended) this.#drop(c);
    else c.watch.setWritable(!c.out.empty);
  }

  #drop(c: Client): void {
    if (!this.#clients.delete(c)) return;
    c.watch.close();
    this.#ops.close(c.fd);
  }
}
