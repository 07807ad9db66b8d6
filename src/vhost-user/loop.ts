// SPDX-License-Identifier: Apache-2.0
/**
 * The back-end event loop: one thread, one `poll()` over every port's listening socket or
 * connection, the kick eventfds of live rings, the host fds devices watch, and a wake eventfd,
 * with device timers as the poll timeout. Control plane and data plane run here together, like
 * libvhost-user's single thread; the loop blocks in poll, so it must run in a worker thread
 * (measured best on this kind of machine; shared/reference Node notes §7), never on Node's main
 * thread.
 *
 * Several ports (one listening socket and one device each) share the loop: the ports of a switch
 * forward frames to each other by plain function calls, with no locking, because everything runs
 * here.
 *
 * Owns: accepting one front-end at a time per port on a listening socket that stays open across
 * clients (a re-created socket leaves a window in which a reconnecting front-end finds nothing,
 * rust-vmm/vhost#321), reading messages (the 12-byte header with `recvmsg`, which carries the fds,
 * then the payload), feeding the parser, sending replies, dispatching kicks, running the
 * HostReactor (watched fds, timers), and resetting a device when its front-end goes away so the
 * next one starts clean (QEMU `reconnect=`).
 * Does not own: the protocol state (`session.ts`), process signals or socket files (the CLI).
 */
import type { DeviceLog, HostReactor, HostTimer, HostWatch, VirtioDevice } from '../device/contract.js';
import { TimerQueue } from '../device/timer-queue.js';
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, Poller, acceptUnix, closeQuiet, eventfdRead, recvExact, recvMsg, sendMsg, SysError, SysEofError } from '../sys/index.js';
import { VhostUserRequestParser } from './parser.js';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_FDS } from './protocol.js';
import { BackendSession } from './session.js';

/** One listening socket and the device behind it. */
export interface LoopPort {
  /** Name used in logs and events (e.g. the device name, or the switch port). */
  name: string;
  /** A listening AF_UNIX stream socket. */
  listenFd: number;
  device: VirtioDevice;
}

export interface LoopOptions {
  ports: readonly LoopPort[];
  /** An eventfd the controlling thread writes to; `onWake` then says what to do. */
  wakeFd: number;
  /** Called when the wake fd fires: return 'stop' to end the loop. */
  onWake: () => 'stop' | 'continue';
  /** Log of a port (messages are about that port's front-end and device). */
  log: (port: LoopPort) => DeviceLog;
  /** Connection events, for status displays and tests. */
  onEvent?: (port: LoopPort, event: LoopEvent) => void;
  /** Told the metrics source of each new session (undefined when it ends). */
  onSession?: (port: LoopPort, metrics: (() => Record<string, unknown>) | undefined) => void;
  /** The reactor devices get; created here when not given (tests pass their own clock). */
  reactor?: LoopReactor;
}

export type LoopEvent = { kind: 'connected' } | { kind: 'disconnected'; reason: string; requests: number };

const HUP = POLLHUP | POLLERR | POLLNVAL;

interface Watched {
  fd: number;
  onReady: (ready: { readable: boolean; writable: boolean; hangup: boolean }) => void;
  writable: boolean;
  readable: boolean;
  closed: boolean;
}

/** The loop's HostReactor: fds join the poll set; the earliest timer bounds the poll timeout. */
export class LoopReactor implements HostReactor {
  readonly #watches = new Set<Watched>();
  readonly #timers = new TimerQueue();
  /** Bumped whenever the watched set changes, so the loop rebuilds its poll set. */
  generation = 0;

  now(): number {
    return performance.now();
  }

  watch(fd: number, onReady: Watched['onReady']): HostWatch {
    const w: Watched = { fd, onReady, writable: false, readable: true, closed: false };
    this.#watches.add(w);
    this.generation++;
    return {
      close: () => {
        if (w.closed) return;
        w.closed = true;
        this.#watches.delete(w);
        this.generation++;
      },
      setWritable: (on) => {
        if (w.writable === on) return;
        w.writable = on;
        this.generation++;
      },
      setReadable: (on) => {
        if (w.readable === on) return;
        w.readable = on;
        this.generation++;
      },
    };
  }

  setTimer(ms: number, fn: () => void): HostTimer {
    return this.#timers.add(this.now() + Math.max(0, ms), fn);
  }

  watches(): Watched[] {
    return [...this.#watches];
  }

  /** Milliseconds until the next timer (0 if due), or -1 when none is pending. */
  timeout(): number {
    const next = this.#timers.next();
    return next === undefined ? -1 : Math.max(0, Math.ceil(next - this.now()));
  }

  /** Runs the timers that are due, in order; timers they set for "now" wait for the next turn. */
  runDue(): void {
    this.#timers.runDue(this.now());
  }
}

interface PortState {
  port: LoopPort;
  log: DeviceLog;
  conn: { fd: number; session: BackendSession; parser: VhostUserRequestParser } | undefined;
}

/** What a poll entry does when ready. */
type Handler = (revents: number) => void;

/** Runs until `onWake` returns 'stop'. Never throws for anything a front-end or guest sends. */
export function runBackendLoop(opts: LoopOptions): void {
  const reactor = opts.reactor ?? new LoopReactor();
  const poller = new Poller(16);
  const header = new Uint8Array(VHOST_USER_HDR_SIZE);
  const headerView = new DataView(header.buffer);
  const ports: PortState[] = opts.ports.map((port) => ({ port, log: opts.log(port), conn: undefined }));
  let handlers: Handler[] = [];
  let builtFor = '';
  let stop = false;

  const disconnect = (p: PortState, reason: string): void => {
    const c = p.conn;
    if (c === undefined) return;
    p.conn = undefined;
    const requests = c.session.stats.requests;
    c.session.close();
    closeQuiet(c.fd);
    opts.onSession?.(p.port, undefined);
    p.log.info(`front-end disconnected: ${reason}`);
    opts.onEvent?.(p.port, { kind: 'disconnected', reason, requests });
  };

  /**
   * The reason to drop a connection after an exception. Socket errors are the peer's doing; any
   * other exception is an AVP bug: it is logged with its stack, and only this connection pays for
   * it, because the device is reset on disconnect and the back-end keeps serving.
   */
  const failure = (p: PortState, e: unknown): string => {
    if (e instanceof SysError || e instanceof SysEofError) return e.message;
    p.log.error(`internal error, dropping the connection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return `internal error: ${e instanceof Error ? e.message : String(e)}`;
  };

  /** Reads and handles one message; returns a reason to disconnect, or null. */
  const serveMessage = (p: PortState): string | null => {
    // Safe: only called for a port with a connection.
    const c = p.conn!;
    const first = recvMsg(c.fd, header, VHOST_USER_MAX_FDS);
    if (first.bytes === 0) return 'end of stream';
    if (first.bytes < VHOST_USER_HDR_SIZE && !recvExact(c.fd, header.subarray(first.bytes))) return 'end of stream inside a header';
    const items = c.parser.push(header, first.fds);
    if (c.parser.failure === null) {
      const size = headerView.getUint32(8, true);
      // The parser has checked `size` against the cap (a fatal error otherwise), so this is bounded.
      if (size > 0) {
        const payload = new Uint8Array(size);
        if (!recvExact(c.fd, payload)) return 'end of stream inside a payload';
        items.push(...c.parser.push(payload));
      }
    }
    for (const item of items) {
      if (item.kind === 'error' && item.error.fatal) return `protocol error: ${item.error.message}`;
      const reply = item.kind === 'message' ? c.session.handle(item.message) : c.session.handleProtocolError(item.error);
      if (reply !== null) sendMsg(c.fd, reply.bytes, reply.fds);
    }
    return null;
  };

  const accept = (p: PortState): void => {
    try {
      const fd = acceptUnix(p.port.listenFd);
      const session = new BackendSession({ device: p.port.device, log: p.log, reactor });
      p.conn = { fd, session, parser: new VhostUserRequestParser({ closeFd: (f) => void closeQuiet(f) }) };
      opts.onSession?.(p.port, () => session.metrics());
      p.log.info('front-end connected');
      opts.onEvent?.(p.port, { kind: 'connected' });
    } catch (e: unknown) {
      if (!(e instanceof SysError)) throw e;
      p.log.warn(`accept failed: ${e.message}`);
    }
  };

  /** A key that changes whenever the poll set must change. */
  const setKey = (): string =>
    `${reactor.generation}|${ports.map((p) => (p.conn === undefined ? `L${p.port.listenFd}` : `C${p.conn.fd}:${p.conn.session.kickGeneration}`)).join(',')}`;

  const rebuild = (): void => {
    poller.clear();
    handlers = [];
    const add = (fd: number, events: number, h: Handler) => {
      poller.add(fd, events);
      handlers.push(h);
    };
    add(opts.wakeFd, POLLIN, () => {
      eventfdRead(opts.wakeFd);
      if (opts.onWake() === 'stop') stop = true;
    });
    for (const p of ports) {
      const c = p.conn;
      if (c === undefined) {
        add(p.port.listenFd, POLLIN, () => accept(p));
        continue;
      }
      add(c.fd, POLLIN, () => {
        if (p.conn !== c) return;
        let reason: string | null;
        try {
          reason = serveMessage(p);
        } catch (e: unknown) {
          reason = failure(p, e);
        }
        if (reason !== null) disconnect(p, reason);
      });
      for (const k of c.session.kickFds()) {
        add(k.fd, POLLIN, (ev) => {
          if (p.conn !== c) return;
          if (ev & POLLIN) {
            try {
              c.session.kick(k.index);
            } catch (e: unknown) {
              disconnect(p, failure(p, e));
            }
          } else p.log.warn(`vring ${k.index}: kick fd reported 0x${ev.toString(16)}`);
        });
      }
    }
    for (const w of reactor.watches()) {
      // With no interest at all the fd stays in the set: poll still reports hang-ups and errors.
      add(w.fd, (w.readable ? POLLIN : 0) | (w.writable ? POLLOUT : 0), (ev) => {
        if (w.closed) return;
        w.onReady({ readable: (ev & POLLIN) !== 0, writable: (ev & POLLOUT) !== 0, hangup: (ev & HUP) !== 0 });
      });
    }
    builtFor = setKey();
  };

  /** Runs a device callback; an exception (our bug) is logged and costs nothing else. */
  const guarded = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e: unknown) {
      const p = ports[0];
      p?.log.error(`internal error in ${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  };

  while (!stop) {
    if (builtFor !== setKey()) rebuild();
    const n = poller.wait(reactor.timeout());
    if (n > 0) {
      // Handlers may change the poll set; they check their own liveness, and the set is rebuilt
      // before the next wait.
      const snapshot = handlers;
      for (let i = 0; i < snapshot.length && !stop; i++) {
        const ev = poller.revents(i);
        if (ev !== 0) guarded('an I/O handler', () => snapshot[i]?.(ev));
      }
    }
    guarded('a timer', () => reactor.runDue());
  }
  for (const p of ports) disconnect(p, 'back-end stopping');
}
