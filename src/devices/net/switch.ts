// SPDX-License-Identifier: Apache-2.0
/**
 * The switch fabric: a learning Ethernet switch between the virtio-net ports of one back-end
 * thread (and optionally a host TAP uplink), with per-port ingress shaping and priorities.
 *
 * Owns:
 * - forwarding: learn the source MAC on the ingress port (IEEE 802.1D; ageing on the switch
 *   clock, `mac-table.ts`), send a known unicast destination to its port, flood broadcast,
 *   multicast and unknown unicast to every other port, never send a frame back where it came from;
 * - the MTU: frames above MTU + 14 bytes are dropped at ingress (`drops.oversize`);
 * - scheduling: work runs in turns. A turn visits the ports in priority order (higher first;
 *   round-robin among equal priorities, rotating each turn) and lets each transmit at most
 *   `budget` frames; if any port still has frames, the next turn is scheduled with
 *   `reactor.setTimer(0)`, so the event loop serves other fds (control messages, other kicks, the
 *   uplink) in between. A flooding port therefore gets at most `budget` frames per turn, and the
 *   ports before it in the order get theirs first: they reach a shared destination's receive
 *   buffers first, and their frames are never queued behind the flood. A turn is run at once on a
 *   kick, or by a timer (continuation, rate-limit refill). A port that sent 8 or more frames in
 *   a turn is polled again in the next one with its notifications still off, so a busy guest does
 *   not kick for every batch; one turn that finds its ring empty turns notifications back on;
 * - delivery: a destination without receive buffers (or without a driver, or administratively
 *   down) drops the frame and counts it; nothing ever waits for a receive buffer, so one slow or
 *   stopped VM cannot hold up the others;
 * - the uplink: frames read from the TAP (at most `budget` per turn) enter like a port's; frames
 *   for it are written to it (a full host queue drops and counts).
 * Does not own: virtio plumbing and counters of a port (`model.ts`), token arithmetic
 * (`shaper.ts`), the TAP's native calls (`sys/tap.ts`, injected as a `NetUplink`).
 *
 * Everything runs in the back-end's single event-loop thread (ports forward to each other by
 * plain calls), so there is no locking; one 12 + MTU + 15 byte scratch buffer carries the frame
 * being forwarded: copied once out of the sender's memory, then into each receiver's.
 */
import type { DeviceContext, DeviceLog, HostReactor, HostTimer, HostWatch } from '../../device/contract.js';
import { NetConfigError } from './errors.js';
import type { NetUplink } from './host.js';
import { MacTable, isMulticast, macKey, parseMac } from './mac-table.js';
import { emptyDrops, type NetSwitchMetrics, type NetUplinkMetrics } from './metrics.js';
import { NetPort, type PortFabric, type TxResult } from './model.js';
import type { ShaperOptions } from './shaper.js';
import { ETH_ALEN, ETH_HLEN, NET_DEFAULT_MTU, NET_MAX_MTU, NET_MIN_MTU, VIRTIO_NET_HDR_SIZE } from './spec.js';
import { errorText } from '../../errors.js';

const HDR = VIRTIO_NET_HDR_SIZE;

/** The uplink's port number in the MAC table. */
export const UPLINK_PORT = -1;

export const NET_DEFAULT_AGEING_S = 300;
export const NET_DEFAULT_BUDGET = 64;
export const NET_DEFAULT_MAX_MACS = 4096;

export interface NetSwitchOptions {
  /** Name in logs and metrics (default `default`). */
  name?: string;
  /** MTU of every port: the largest Ethernet payload (default 1500; 68..65535). */
  mtu?: number;
  /** MAC ageing time in milliseconds (default 300 s). */
  macAgeingMs?: number;
  /** MAC table capacity (default 4096). */
  maxMacEntries?: number;
  /** Frames a port (or the uplink) may send per turn (default 64). */
  budget?: number;
  /** Host interface to bridge to; the switch owns it from here on (closes it in `close`). */
  uplink?: NetUplink;
  /** Priority of the uplink among the ports (default 0). */
  uplinkPriority?: number;
}

export interface NetPortConfig {
  /** Name in logs and metrics (default `port<index>`). */
  name?: string;
  /** The VM's MAC (`aa:bb:cc:dd:ee:ff` or 6 bytes; default 02:00:00:00:00:<index + 1>). */
  mac?: string | Uint8Array;
  /** 0..7, higher first (default 0). */
  priority?: number;
  /** Admin link state (default up). */
  linkUp?: boolean;
  shaping?: ShaperOptions;
  queueMaxSize?: number;
}

/** Something the turn visits: a port, or the uplink. */
type Member = { kind: 'port'; port: NetPort } | { kind: 'uplink' };

export class NetSwitch implements PortFabric {
  readonly name: string;
  readonly mtu: number;
  readonly maxFrame: number;
  readonly budget: number;
  readonly scratch: Uint8Array;
  readonly ports: NetPort[] = [];
  readonly macs: MacTable;
  readonly #uplink: NetUplink | undefined;
  readonly #uplinkPriority: number;
  #uplinkReadable = false;
  #uplinkFailed = false;
  #uplinkWatch: HostWatch | undefined;
  readonly #uplinkStats: NetUplinkMetrics;
  #reactor: HostReactor | undefined;
  #log: DeviceLog | undefined;
  #groups: Member[][] | undefined;
  #turnTimer: HostTimer | undefined;
  #inTurn = false;
  #again = false;
  #turns = 0;
  #flooded = 0;
  #unknownUnicast = 0;
  #filtered = 0;
  #closed = false;

  /** @throws NetConfigError NET_BAD_OPTION naming the bad option. */
  constructor(opts: NetSwitchOptions = {}) {
    this.name = opts.name ?? 'default';
    this.mtu = opts.mtu ?? NET_DEFAULT_MTU;
    if (!Number.isSafeInteger(this.mtu) || this.mtu < NET_MIN_MTU || this.mtu > NET_MAX_MTU) {
      throw new NetConfigError('NET_BAD_OPTION', `switch ${this.name}: MTU must be an integer from ${NET_MIN_MTU} to ${NET_MAX_MTU}, got ${this.mtu}`);
    }
    this.maxFrame = this.mtu + ETH_HLEN;
    this.budget = opts.budget ?? NET_DEFAULT_BUDGET;
    if (!Number.isSafeInteger(this.budget) || this.budget < 1 || this.budget > 65536) throw new NetConfigError('NET_BAD_OPTION', `switch ${this.name}: budget must be an integer from 1 to 65536, got ${this.budget}`);
    this.#uplinkPriority = opts.uplinkPriority ?? 0;
    if (!Number.isSafeInteger(this.#uplinkPriority) || this.#uplinkPriority < 0 || this.#uplinkPriority > 7) throw new NetConfigError('NET_BAD_OPTION', `switch ${this.name}: uplink priority must be 0..7`);
    // One spare byte past maxFrame lets an uplink read show that a frame was too long.
    this.scratch = new Uint8Array(HDR + this.maxFrame + 1);
    this.macs = new MacTable(opts.macAgeingMs ?? NET_DEFAULT_AGEING_S * 1000, opts.maxMacEntries ?? NET_DEFAULT_MAX_MACS);
    this.#uplink = opts.uplink;
    this.#uplinkStats = { name: opts.uplink?.name ?? '', rx: { frames: 0, bytes: 0 }, tx: { frames: 0, bytes: 0 }, drops: emptyDrops() };
  }

  /** Adds a port (before any VM connects). @throws NetConfigError NET_BAD_OPTION for a bad option. */
  addPort(cfg: NetPortConfig = {}): NetPort {
    const index = this.ports.length;
    const name = cfg.name ?? `port${index}`;
    if (this.ports.some((p) => p.portName === name)) throw new NetConfigError('NET_BAD_OPTION', `switch ${this.name}: two ports are named ${name}`);
    let mac: Uint8Array | undefined;
    if (cfg.mac === undefined) mac = Uint8Array.of(0x02, 0, 0, 0, (index + 1) >> 8, (index + 1) & 0xff);
    else if (typeof cfg.mac === 'string') mac = parseMac(cfg.mac);
    else mac = cfg.mac;
    if (mac === undefined) throw new NetConfigError('NET_BAD_OPTION', `port ${name}: MAC must look like 52:54:00:12:34:56, got ${String(cfg.mac)}`);
    const port = new NetPort(this, {
      index,
      name,
      mac,
      ...(cfg.priority === undefined ? {} : { priority: cfg.priority }),
      ...(cfg.linkUp === undefined ? {} : { linkUp: cfg.linkUp }),
      ...(cfg.shaping === undefined ? {} : { shaping: cfg.shaping }),
      ...(cfg.queueMaxSize === undefined ? {} : { queueMaxSize: cfg.queueMaxSize }),
    });
    this.ports.push(port);
    this.#groups = undefined;
    return port;
  }

  /** The first activated port brings the event loop's reactor; the uplink is watched from then on. */
  portActivated(_port: NetPort, ctx: DeviceContext): void {
    if (this.#reactor !== undefined) return;
    this.#reactor = ctx.reactor;
    this.#log = ctx.log;
    const up = this.#uplink;
    if (up === undefined || this.#uplinkFailed) return;
    this.#uplinkWatch = ctx.reactor.watch(up.fd, (ready) => {
      if (ready.hangup && !ready.readable) {
        this.#failUplink(new Error('the TAP fd reported a hang-up'));
        return;
      }
      if (ready.readable) {
        this.#uplinkReadable = true;
        this.kick();
      }
    });
  }

  /** A VM went away: its addresses may come back on another port. */
  portReset(port: NetPort): void {
    this.macs.forgetPort(port.index);
  }

  /** Runs a turn now, unless one is running or already scheduled. */
  kick(): void {
    if (this.#reactor === undefined) return;
    if (this.#inTurn) {
      this.#again = true;
      return;
    }
    if (this.#turnTimer !== undefined) return;
    this.#runTurn();
  }

  #schedule(): void {
    const reactor = this.#reactor;
    if (reactor === undefined || this.#turnTimer !== undefined) return;
    this.#turnTimer = reactor.setTimer(0, () => {
      this.#turnTimer = undefined;
      this.#runTurn();
    });
  }

  /** Members grouped by priority, highest first, each group in port order. */
  #order(): Member[][] {
    if (this.#groups !== undefined) return this.#groups;
    const members: Array<{ m: Member; priority: number }> = this.ports.map((port) => ({ m: { kind: 'port', port }, priority: port.priority }));
    if (this.#uplink !== undefined) members.push({ m: { kind: 'uplink' }, priority: this.#uplinkPriority });
    const groups: Member[][] = [];
    for (let p = 7; p >= 0; p--) {
      const g = members.filter((x) => x.priority === p).map((x) => x.m);
      if (g.length > 0) groups.push(g);
    }
    this.#groups = groups;
    return groups;
  }

  #runTurn(): void {
    this.#inTurn = true;
    let more = false;
    try {
      const turn = this.#turns++;
      for (const group of this.#order()) {
        for (let i = 0; i < group.length; i++) {
          // Safe: the index is taken modulo the group's length.
          const m = group[(turn + i) % group.length]!;
          const r: TxResult = m.kind === 'port' ? m.port.serviceTx(this.budget) : this.#serviceUplink();
          if (r === 'more') more = true;
        }
      }
      for (const p of this.ports) p.flushRx();
    } finally {
      this.#inTurn = false;
    }
    if (more || this.#again) {
      this.#again = false;
      this.#schedule();
    }
  }

  /** Forwards the frame of `len` bytes at scratch[12..] that came in on port `from`. */
  forward(from: number, len: number, now: number): void {
    const s = this.scratch;
    this.macs.learn(macKey(s, HDR + ETH_ALEN), from, now);
    if (isMulticast(s, HDR)) {
      this.#flood(from, len);
      return;
    }
    const to = this.macs.lookup(macKey(s, HDR), now);
    if (to === undefined) {
      this.#unknownUnicast++;
      this.#flood(from, len);
    } else if (to === from) {
      this.#filtered++;
    } else if (to === UPLINK_PORT) {
      this.#toUplink(len);
    } else {
      this.ports[to]?.deliver(len);
    }
  }

  #flood(from: number, len: number): void {
    this.#flooded++;
    for (const p of this.ports) if (p.index !== from) p.deliver(len);
    if (from !== UPLINK_PORT && this.#uplink !== undefined) this.#toUplink(len);
  }

  #toUplink(len: number): void {
    const up = this.#uplink;
    if (up === undefined || this.#uplinkFailed) return;
    let ok: boolean;
    try {
      ok = up.write(this.scratch.subarray(HDR, HDR + len));
    } catch (e: unknown) {
      this.#failUplink(e);
      return;
    }
    if (ok) {
      this.#uplinkStats.rx.frames++;
      this.#uplinkStats.rx.bytes += len;
    } else this.#uplinkStats.drops.noRxBuffers++;
  }

  /** Reads at most `budget` frames from the uplink and forwards them. */
  #serviceUplink(): TxResult {
    const up = this.#uplink;
    const reactor = this.#reactor;
    if (up === undefined || reactor === undefined || !this.#uplinkReadable || this.#uplinkFailed) return 'idle';
    const s = this.scratch;
    const buf = s.subarray(HDR, HDR + this.maxFrame + 1);
    const st = this.#uplinkStats;
    for (let n = 0; n < this.budget; n++) {
      let len: number;
      try {
        len = up.read(buf);
      } catch (e: unknown) {
        this.#failUplink(e);
        return 'idle';
      }
      if (len === 0) {
        this.#uplinkReadable = false;
        return 'idle';
      }
      if (len > this.maxFrame) st.drops.oversize++;
      else if (len < ETH_HLEN || isMulticast(s, HDR + ETH_ALEN) || macKey(s, HDR + ETH_ALEN) === 0) st.drops.malformed++;
      else {
        st.tx.frames++;
        st.tx.bytes += len;
        this.forward(UPLINK_PORT, len, reactor.now());
      }
    }
    return 'more';
  }

  /** The uplink failed (the TAP was deleted, ...): log once, stop using it; the ports go on. */
  #failUplink(e: unknown): void {
    if (this.#uplinkFailed) return;
    this.#uplinkFailed = true;
    this.#uplinkWatch?.close();
    this.#uplinkWatch = undefined;
    this.#log?.error(`switch ${this.name}: uplink ${this.#uplink?.name ?? ''} failed, no longer used: ${errorText(e)}`);
  }

  switchMetrics(): NetSwitchMetrics {
    return {
      name: this.name,
      clockMs: this.#reactor?.now() ?? null,
      mtu: this.mtu,
      ports: this.ports.length,
      macTable: this.macs.stats(),
      flooded: this.#flooded,
      unknownUnicast: this.#unknownUnicast,
      filtered: this.#filtered,
      uplink: this.#uplink === undefined ? null : { ...this.#uplinkStats, rx: { ...this.#uplinkStats.rx }, tx: { ...this.#uplinkStats.tx }, drops: { ...this.#uplinkStats.drops } },
    };
  }

  /** Stops watching and closes the uplink (the ports need no cleanup). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#uplinkWatch?.close();
    this.#uplinkWatch = undefined;
    this.#turnTimer?.cancel();
    this.#turnTimer = undefined;
    this.#uplinkFailed = true;
    this.#uplink?.close();
  }
}
