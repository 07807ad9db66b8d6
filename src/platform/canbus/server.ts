// SPDX-License-Identifier: Apache-2.0
/**
 * The AVP CAN bus as a running service: the bus model (can/bus.ts) on the real clock, a listening
 * Unix socket per node (slcan-port.ts), a host socket, the candump log, a replay node (replay.ts)
 * and the SocketCAN bridge (socketcan.ts). `avp canbus` runs one as a process; `avp run` runs it
 * as that process or inside its own process (`isolation: thread`).
 *
 * Owns: start (the replay log is read and checked first, so a bad trace fails before any socket
 * exists; sockets are created mode 0600, a stale socket file replaced, a live one refused), stop
 * (sockets closed and their files removed, the log flushed), the wall-clock time stamps of the log,
 * and the metrics document. Does not own: frames, arbitration, the slcan session.
 *
 * Metrics (JSON, `metrics()`):
 *   { bus: { name, bitrate, dataBitrate, frames, fdFrames, bits, busyUs, load, contended, ackErrors },
 *     nodes: { <name>: { connected, open, state, tec, rec, txFrames, rxFrames, ..., invalid, refused, rxOverflow } },
 *     replay?: { sent, loops, skipped, refused, started }, socketcan?: { ifname, fromHost, toHost, dropped, hostRefused } | { ifname, skipped: <why> } }
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type Server, type Socket, createServer } from 'node:net';
import { type BusClock, CanBus, type CanFrame, type CanNode, formatCandumpLine } from '../../can/index.js';
import { errorText } from '../../errors.js';
import { closeQuiet, type CanRawSocket, unlinkQuiet } from '../../sys/index.js';
import { listenAt } from '../../vhost-user/server.js';
import { type CanBusConfig, checkBusConfig } from './config.js';
import { Replayer, loadReplay } from './replay.js';
import { type PortLog, SlcanPort } from './slcan-port.js';
import { SocketCanBridge } from './socketcan.js';

/** Host programs connected to the host socket at once, at most (each is a node of the bus). */
export const MAX_HOST_CONNECTIONS = 64;

/** The real clock: performance.now() milliseconds and setTimeout. */
export const realClock: BusClock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export interface CanBusServerOptions {
  log: PortLog;
  clock?: BusClock;
  /** Opens a host CAN interface (sys/can.ts openCanRaw); tests pass a fake. */
  openCanRaw?: (ifname: string) => CanRawSocket;
}

interface Listener {
  path: string;
  server: Server;
}

export class CanBusServer {
  readonly config: CanBusConfig;
  readonly bus: CanBus;
  readonly #log: PortLog;
  readonly #clock: BusClock;
  readonly #openCanRaw: CanBusServerOptions['openCanRaw'];
  readonly #ports = new Map<string, SlcanPort>();
  readonly #listeners: Listener[] = [];
  readonly #hostConns = new Set<Socket>();
  #hostSeq = 0;
  #logFile: WriteStream | undefined;
  #replay: Replayer | undefined;
  #bridge: { ifname: string; bridge?: SocketCanBridge; skipped?: string } | undefined;
  readonly #wallAtStartUs: number;
  readonly #clockAtStart: number;

  /** @throws CanFormatError for a bad config. */
  constructor(config: CanBusConfig, opts: CanBusServerOptions) {
    checkBusConfig(config);
    this.config = config;
    this.#log = opts.log;
    this.#clock = opts.clock ?? realClock;
    this.#openCanRaw = opts.openCanRaw;
    this.#wallAtStartUs = Date.now() * 1000;
    this.#clockAtStart = this.#clock.now();
    this.bus = new CanBus({
      name: config.name,
      clock: this.#clock,
      bitrate: config.bitrate,
      ...(config.dataBitrate === undefined ? {} : { dataBitrate: config.dataBitrate }),
      onWire: (frame, sender, t) => this.#onWire(frame, sender, t),
    });
  }

  /**
   * Reads the replay log, creates the sockets, opens the log and the bridge.
   * @throws CanFormatError (replay log), Error (a socket path in use or not a socket).
   */
  async start(): Promise<void> {
    const c = this.config;
    const replay = c.replay === undefined ? undefined : loadReplay(c.replay);
    try {
      for (const n of c.nodes) {
        const port = new SlcanPort({ log: this.#log, busBitrate: c.bitrate, autoOpen: false, onJoin: () => this.#maybeStartReplay() });
        port.bind(this.bus.addNode({ name: n.name, ...(n.receive === undefined ? {} : { receive: n.receive }), ...(n.send === undefined ? {} : { send: n.send }), ...(n.rate === undefined ? {} : { rate: n.rate }) }, port));
        this.#ports.set(n.name, port);
        await this.#listen(n.socket, (s) => {
          if (!port.attach(s)) this.#log.warn(`${n.name}: a second connection was refused (one peer per node socket)`);
        });
      }
      if (c.hostSocket !== undefined) await this.#listen(c.hostSocket, (s) => this.#hostConnection(s));
      if (c.log !== undefined) {
        this.#logFile = createWriteStream(c.log, { flags: 'a' });
        this.#logFile.on('error', (e) => this.#log.warn(`log ${c.log}: ${e.message}`));
      }
      if (replay !== undefined && c.replay !== undefined) {
        const r = new Replayer(replay.entries, { loop: c.replay.loop, clock: this.#clock, skipped: replay.skipped });
        r.bind(this.bus.addNode({ name: c.replay.name ?? 'replay', open: true, queueLimit: 256 }, { frame: () => {}, space: () => r.resume() }));
        this.#replay = r;
        this.#log.info(`replay ${c.replay.file}: ${replay.entries.length} frames${c.replay.loop ? ', looped' : ''}, starting ${c.replay.start === 'now' ? 'now' : 'when every node has joined'}`);
        if (c.replay.start === 'now' || c.nodes.length === 0) r.start();
      }
      if (c.socketcan !== undefined) this.#startBridge(c.socketcan);
    } catch (e: unknown) {
      await this.stop();
      throw e;
    }
  }

  async #listen(path: string, onConnection: (s: Socket) => void): Promise<void> {
    const fd = listenAt(path);
    const server = createServer({ allowHalfOpen: false }, onConnection);
    this.#listeners.push({ path, server });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => {
        closeQuiet(fd);
        reject(e);
      });
      server.listen({ fd }, () => resolve());
    });
  }

  #hostConnection(socket: Socket): void {
    if (this.#hostConns.size >= MAX_HOST_CONNECTIONS) {
      this.#log.warn(`host socket: more than ${MAX_HOST_CONNECTIONS} host programs; a new one was turned away`);
      socket.destroy();
      return;
    }
    const name = `host${++this.#hostSeq}`;
    const port = new SlcanPort({ log: this.#log, busBitrate: this.config.bitrate, autoOpen: true });
    const node = this.bus.addNode({ name }, port);
    port.bind(node);
    this.#hostConns.add(socket);
    socket.on('close', () => {
      this.#hostConns.delete(socket);
      this.bus.removeNode(node);
    });
    port.attach(socket);
  }

  #startBridge(ifname: string): void {
    if (this.#openCanRaw === undefined) {
      this.#bridge = { ifname, skipped: 'no SocketCAN support in this build' };
      return;
    }
    let socket: CanRawSocket;
    try {
      socket = this.#openCanRaw(ifname);
    } catch (e: unknown) {
      const why = errorText(e);
      this.#bridge = { ifname, skipped: why };
      this.#log.warn(`SocketCAN bridge to ${ifname} skipped: ${why} (the bus runs without it)`);
      return;
    }
    const bridge = new SocketCanBridge(socket, (e) => this.#log.warn(`SocketCAN bridge to ${ifname} stopped: ${errorText(e)}`));
    bridge.bind(this.bus.addNode({ name: `socketcan-${ifname}`, open: true }, bridge));
    bridge.start();
    this.#bridge = { ifname, bridge };
    this.#log.info(`bridged to host SocketCAN interface ${ifname}`);
  }

  /** The replay starts once every declared node has joined (start: all-open). */
  #maybeStartReplay(): void {
    const r = this.#replay;
    if (r === undefined || r.counters.started) return;
    const nodes = this.config.nodes.map((n) => this.bus.nodes.find((x) => x.name === n.name));
    if (nodes.every((n) => n?.isOpen === true)) {
      this.#log.info('every node has joined: replay starts');
      r.start();
    }
  }

  #onWire(frame: CanFrame, _sender: string, t: number): void {
    const f = this.#logFile;
    if (f === undefined) return;
    const us = this.#wallAtStartUs + (t - this.#clockAtStart) * 1000;
    f.write(`${formatCandumpLine(us, this.config.name, frame)}\n`);
  }

  /** Node by name (tests, fault injection). */
  node(name: string): CanNode | undefined {
    return this.bus.nodes.find((n) => n.name === name);
  }

  metrics(): Record<string, unknown> {
    const b = this.bus;
    const nodes: Record<string, unknown> = {};
    for (const n of b.nodes) {
      const port = this.#ports.get(n.name);
      nodes[n.name] = {
        ...(port === undefined ? {} : { connected: port.connected, ...port.counters, ...(port.requestedBitrate === undefined ? {} : { requestedBitrate: port.requestedBitrate }) }),
        open: n.isOpen,
        state: n.state,
        tec: n.tec,
        rec: n.rec,
        queued: n.pending.length,
        ...n.counters,
      };
    }
    const br = this.#bridge;
    return {
      bus: { name: b.name, bitrate: b.rates.bitrate, dataBitrate: b.rates.dataBitrate ?? b.rates.bitrate, ...b.counters, load: Number(b.load().toFixed(4)) },
      nodes,
      ...(this.#replay === undefined ? {} : { replay: { ...this.#replay.counters } }),
      ...(br === undefined ? {} : { socketcan: br.bridge === undefined ? { ifname: br.ifname, skipped: br.skipped } : { ifname: br.ifname, ...br.bridge.counters } }),
    };
  }

  /** Closes everything; removes the socket files. Idempotent. */
  async stop(): Promise<void> {
    this.bus.stop();
    this.#replay?.stop();
    this.#bridge?.bridge?.stop();
    for (const p of this.#ports.values()) p.detach();
    for (const s of this.#hostConns) s.destroy();
    const listeners = this.#listeners.splice(0);
    await Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
    for (const l of listeners) unlinkQuiet(l.path);
    const f = this.#logFile;
    this.#logFile = undefined;
    if (f !== undefined) await new Promise<void>((resolve) => f.end(resolve));
  }
}
