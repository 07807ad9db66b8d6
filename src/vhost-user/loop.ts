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
 * rust-vmm/vhost#321), polling each connection (reading, parsing and replying are
 * `BackendConnection`'s), dispatching kicks, running the HostReactor (watched fds, timers), and
 * resetting a device when its front-end goes away so the next one starts clean (QEMU `reconnect=`).
 *
 * Nothing here waits except `poll` itself, which always includes the wake fd (issue #18,
 * docs/reliability.md): a front-end that sends half a message, stops reading replies or saturates
 * an eventfd cannot stall the other ports or a stop request. Before every turn that may touch
 * guest memory, the memory of each connection whose regions could not be sealed against
 * shrinking is checked (`BackendSession.checkMemory`); a shrunk region ends that connection only.
 * Does not own: the protocol state (`session.ts`), process signals or socket files (the CLI).
 */
import type { DeviceLog, HostReactor, HostTimer, HostWatch, VirtioDevice } from '../device/contract.js';
import { TimerQueue } from '../device/timer-queue.js';
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, Poller, acceptNonBlocking, eventfdRead, setNonBlocking, SysError, SysEofError } from '../sys/index.js';
import { VhostUserBackendError } from './backend-errors.js';
import { BackendConnection } from './connection.js';
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
  /** Called when the wake fd fires: return 'stop' to end the loop. `control` adds and removes ports. */
  onWake: (control: LoopControl) => 'stop' | 'continue';
  /** Log of a port (messages are about that port's front-end and device). */
  log: (port: LoopPort) => DeviceLog;
  /** Connection events, for status displays and tests. */
  onEvent?: (port: LoopPort, event: LoopEvent) => void;
  /** Told the metrics source of each new session (undefined when it ends). */
  onSession?: (port: LoopPort, metrics: (() => Record<string, unknown>) | undefined) => void;
  /** The reactor devices get; created here when not given (tests pass their own clock). */
  reactor?: LoopReactor;
  /** Refuse guest memory that cannot be sealed against shrinking (docs/reliability.md). */
  requireSealedMemory?: boolean;
  /**
   * Adaptive busy polling: after a turn that moved chains, keep checking the rings (and the fds,
   * without sleeping) for this many microseconds before blocking in poll again; every turn that
   * moves chains starts the window again. 0 or absent: off (sleep in poll whenever idle). The
   * CPU cost is bounded: an idle back-end sleeps at most this long after its last work.
   */
  busyPollUs?: number;
}

/** The loop settings a back-end program or the runner chooses (the rest of LoopOptions is wiring). */
export type LoopTuning = Pick<LoopOptions, 'busyPollUs' | 'requireSealedMemory'>;

/**
 * Ports joining and leaving a running loop (one loop thread serving the back-ends of a whole
 * platform, each started, restarted and stopped on its own). Only valid inside `onWake`.
 */
export interface LoopControl {
  /** Starts serving these ports (names unique in the loop): their devices' host work starts now. */
  addPorts(ports: readonly LoopPort[]): void;
  /**
   * Stops serving the named ports: their front-ends are disconnected (the devices reset) and
   * their listening sockets leave the poll set. Returns the ports removed; the caller disposes
   * their devices and owns their listening fds.
   */
  removePorts(names: readonly string[]): LoopPort[];
  /** The ports served now, in the order they joined. */
  readonly ports: readonly LoopPort[];
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
  conn: BackendConnection | undefined;
  /** Set when the port left the loop; handlers built before that ignore it. */
  removed: boolean;
}

/** What a poll entry does when ready. */
type Handler = (revents: number) => void;

/** Runs until `onWake` returns 'stop'. Never throws for anything a front-end or guest sends. */
/** Serves until `onWake` says stop; returns the ports it served then (their devices are the caller's to dispose). */
export function runBackendLoop(opts: LoopOptions): LoopPort[] {
  const reactor = opts.reactor ?? new LoopReactor();
  const poller = new Poller(16);
  let ports: PortState[] = [];
  /** Bumped when ports join or leave, so the poll set is rebuilt even if fd numbers repeat. */
  let portGeneration = 0;
  const addPorts = (added: readonly LoopPort[]): void => {
    for (const port of added) {
      if (ports.some((p) => p.port.name === port.name)) throw new Error(`a port named ${port.name} is already served by this loop`);
    }
    for (const port of added) {
      const p: PortState = { port, log: opts.log(port), conn: undefined, removed: false };
      // Devices with host work of their own (control sockets) start it in this loop, guest or not.
      try {
        port.device.serveHost?.(reactor, p.log);
      } catch (e: unknown) {
        p.log.error(`host side of ${port.name} not started: ${e instanceof Error ? e.message : String(e)}`);
      }
      // accept4 on a blocking listening socket waits when the connection poll reported is gone again.
      setNonBlocking(port.listenFd, true);
      ports = [...ports, p];
      portGeneration++;
    }
  };
  addPorts(opts.ports);
  let handlers: Handler[] = [];
  let builtFor = '';
  let stop = false;

  const disconnect = (p: PortState, reason: string): void => {
    const c = p.conn;
    if (c === undefined) return;
    p.conn = undefined;
    const requests = c.session.stats.requests;
    try {
      c.close();
    } catch (e: unknown) {
      p.log.error(`internal error while closing the connection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    opts.onSession?.(p.port, undefined);
    p.log.info(`front-end disconnected: ${reason}`);
    opts.onEvent?.(p.port, { kind: 'disconnected', reason, requests });
  };

  const removePorts = (names: readonly string[]): LoopPort[] => {
    const gone = ports.filter((p) => names.includes(p.port.name));
    for (const p of gone) {
      disconnect(p, 'back-end removed from this loop');
      p.removed = true;
    }
    ports = ports.filter((p) => !p.removed);
    portGeneration++;
    return gone.map((p) => p.port);
  };
  const control: LoopControl = {
    addPorts,
    removePorts,
    get ports() {
      return ports.map((p) => p.port);
    },
  };

  /**
   * The reason to drop a connection after an exception. Socket errors are the peer's doing; any
   * other exception is an AVP bug: it is logged with its stack, and only this connection pays for
   * it, because the device is reset on disconnect and the back-end keeps serving.
   */
  const failure = (p: PortState, e: unknown): string => {
    if (e instanceof SysError || e instanceof SysEofError) return e.message;
    if (e instanceof VhostUserBackendError) return e.message;
    p.log.error(`internal error, dropping the connection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return `internal error: ${e instanceof Error ? e.message : String(e)}`;
  };

  const accept = (p: PortState): void => {
    let fd: number | null;
    try {
      fd = acceptNonBlocking(p.port.listenFd);
    } catch (e: unknown) {
      if (!(e instanceof SysError)) throw e;
      p.log.warn(`accept failed: ${e.message}`);
      return;
    }
    if (fd === null) return; // the pending connection went away again
    const session = new BackendSession({ device: p.port.device, log: p.log, reactor, ...(opts.requireSealedMemory === true ? { requireSealedMemory: true } : {}) });
    p.conn = new BackendConnection(fd, session);
    opts.onSession?.(p.port, () => session.metrics());
    p.log.info('front-end connected');
    opts.onEvent?.(p.port, { kind: 'connected' });
  };

  /** Runs `step` for a connection; an exception or a returned reason ends that connection only. */
  const serve = (p: PortState, c: BackendConnection, step: () => string | null): void => {
    if (p.conn !== c) return;
    let reason: string | null;
    try {
      reason = step();
    } catch (e: unknown) {
      reason = failure(p, e);
    }
    if (reason !== null) disconnect(p, reason);
  };

  /**
   * Memory a front-end could shrink under our mappings is checked before anything may touch it
   * (kicks, other ports forwarding into it, host events, timers); see docs/reliability.md.
   */
  const checkMemory = (): void => {
    for (const p of ports) {
      const c = p.conn;
      if (c === undefined || !c.session.hasUnsealedMemory) continue;
      serve(p, c, () => {
        c.session.checkMemory();
        return null;
      });
    }
  };

  /** A key that changes whenever the poll set must change. */
  const setKey = (): string =>
    `${reactor.generation}|${portGeneration}|${ports.map((p) => (p.conn === undefined ? `L${p.port.listenFd}` : `C${p.conn.fd}:${p.conn.session.kickGeneration}:${p.conn.wantsWrite ? 'w' : ''}`)).join(',')}`;

  const rebuild = (): void => {
    poller.clear();
    handlers = [];
    const add = (fd: number, events: number, h: Handler) => {
      poller.add(fd, events);
      handlers.push(h);
    };
    add(opts.wakeFd, POLLIN, () => {
      eventfdRead(opts.wakeFd);
      if (opts.onWake(control) === 'stop') stop = true;
    });
    for (const p of ports) {
      const c = p.conn;
      if (c === undefined) {
        add(p.port.listenFd, POLLIN, () => {
          if (!p.removed) accept(p);
        });
        continue;
      }
      add(c.fd, POLLIN | (c.wantsWrite ? POLLOUT : 0), (ev) => {
        if (ev & POLLOUT) serve(p, c, () => c.onWritable());
        // A hang-up with unread data still reads the data first; the read then sees the end.
        if (ev & (POLLIN | HUP)) serve(p, c, () => c.onReadable());
      });
      for (const k of c.session.kickFds()) {
        add(k.fd, POLLIN, (ev) => {
          if (p.conn !== c) return;
          if (ev & POLLIN) {
            serve(p, c, () => {
              c.session.kick(k.index);
              kicked++;
              return null;
            });
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

  const pollWindowMs = (opts.busyPollUs ?? 0) / 1000;
  /** When the last turn that moved chains ended (performance.now()), while polling is on. */
  let lastWork = -Infinity;
  /** Kicks served (each may move chains; a kick also starts a polling window). */
  let kicked = 0;
  /** Work done so far: kicks served plus chains taken by polling, over every connection. */
  const moved = (): number => {
    let total = 0;
    for (const p of ports) total += p.conn?.session.stats.polledChains ?? 0;
    return total + kicked;
  };

  while (!stop) {
    if (builtFor !== setKey()) rebuild();
    const polling = pollWindowMs > 0 && performance.now() - lastWork < pollWindowMs;
    const before = pollWindowMs > 0 ? moved() : 0;
    const n = poller.wait(polling ? 0 : reactor.timeout());
    checkMemory();
    if (polling) {
      for (const p of ports) {
        const c = p.conn;
        if (c === undefined) continue;
        serve(p, c, () => {
          c.session.poll();
          return null;
        });
      }
    }
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
    if (pollWindowMs > 0 && moved() !== before) lastWork = performance.now();
  }
  for (const p of ports) disconnect(p, 'back-end stopping');
  return ports.map((p) => p.port);
}
