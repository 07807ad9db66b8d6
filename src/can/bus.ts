// SPDX-License-Identifier: Apache-2.0
/**
 * The AVP CAN bus model: one shared medium that nodes (guests over slcan, virtio-can back-ends,
 * the host, a replayed log) send frames on, delivered in CAN arbitration order at the pace the bit
 * rate allows, with per-node filters, rate limits and fault-confinement counters.
 *
 * Timing. The bus keeps its own time line in milliseconds (the injected clock's). A frame occupies
 * the bus for its exact bit time (timing.ts). Whenever the bus falls idle at time t, arbitration
 * picks, among the frames that had arrived by t, the one with the smallest arbitration key
 * (frame.ts); it is on the wire from t to t + frame time and reaches the receivers at its end.
 * Timers fire late and coarsely (a millisecond is several frames at 500 kbit/s), so when the bus
 * runs it catches up: it replays arbitration at each idle instant in turn, with only the frames
 * that had arrived by then, and so orders frames as the real bus would have; delivery is never
 * earlier than the frame's end on the wire. A frame that has won arbitration is never pre-empted.
 *
 * Nodes. Each node has a transmit buffer of at most `queueLimit` frames, which it offers to
 * arbitration lowest identifier first (as a controller with several transmit buffers does; frames
 * with the same key keep their order). `send` refuses a frame when the buffer is full (the caller
 * applies back-pressure and waits for `onSpace`), when the node is closed, listen-only or bus-off,
 * or when its send filters reject it. A rate limit (a token bucket of frames per second) holds a
 * node's frames back until it has a token. Receive filters (SocketCAN semantics, filter.ts) choose
 * what a node is given; the node's own frames are not echoed to it.
 *
 * Fault confinement (ISO 11898-1 §12): transmit and receive error counters per node. A frame that
 * no other active node acknowledges (nobody else is open) is an ACK error: the sender's TEC rises by
 * 8 (not while it is error passive, the standard's exception for a lone node) and the frame is
 * lost (the model sends each frame once); a frame that is acknowledged lowers the sender's TEC by
 * 1 and each receiver's REC by 1. States: active, warning (≥ 96), passive (≥ 128), bus-off (TEC
 * ≥ 256: the node's frames are dropped and it sends nothing until it is closed and opened again,
 * which restarts its controller). `injectErrors` adds errors for fault tests. Every state change
 * and every ACK error is reported to the node (slcan `s…` and `e1a` lines reach Linux's slcan).
 *
 * Owns: that model and its counters. Does not own: sockets, files, time stamps on the wall clock
 * (the bus server), frame encodings (slcan.ts, candump.ts).
 */
import { CanFormatError } from './errors.js';
import { type CanFilter, passes } from './filter.js';
import { type CanFrame, arbitrationKey, frameProblem } from './frame.js';
import { type BusRates, frameTimeUs } from './timing.js';

/** The bus's clock: monotonic milliseconds (fractions allowed) and one-shot timers. */
export interface BusClock {
  now(): number;
  setTimer(ms: number, fn: () => void): { cancel(): void };
}

export type NodeState = 'active' | 'warning' | 'passive' | 'bus-off';

/** What a node is told: frames for it, and changes of its own error state. */
export interface NodeSink {
  /** A frame another node sent, at `timeMs` on the bus clock (the end of the frame). */
  frame(frame: CanFrame, timeMs: number): void;
  /** The node's error state or counters changed state (not sent for every counter step). */
  state?(state: NodeState, rec: number, tec: number): void;
  /** A bus error the node saw: 'a' = its frame was not acknowledged. */
  error?(codes: string): void;
  /** The transmit buffer has room again after a `full` refusal. */
  space?(): void;
}

export interface NodeOptions {
  /** Unique on the bus: logs and counters name the node by it. */
  name: string;
  /** Frames this node receives (empty: all). */
  receive?: readonly CanFilter[];
  /** Frames this node may send (empty: all); others are refused and counted. */
  send?: readonly CanFilter[];
  /** Frames per second and the bucket size (default burst: a second's worth, at least 1). */
  rate?: { framesPerSecond: number; burst?: number };
  /** Transmit buffer size (default 64). */
  queueLimit?: number;
  /** Whether the node is open at once (replay, host taps); slcan nodes open with `O`. Default false. */
  open?: boolean;
}

export type SendResult = 'queued' | 'closed' | 'listen-only' | 'bus-off' | 'blocked' | 'full' | 'invalid';

export interface NodeCounters {
  txFrames: number;
  rxFrames: number;
  txBytes: number;
  rxBytes: number;
  /** Frames refused by the node's send filters. */
  txBlocked: number;
  /** Frames its receive filters kept from it. */
  rxFiltered: number;
  /** Frames refused because the transmit buffer was full. */
  txFull: number;
  /** Frames refused because the node was closed, listen-only or bus-off, or dropped at bus-off. */
  txDropped: number;
  ackErrors: number;
  busOffs: number;
  /** Microseconds the longest frame waited between send() and the start of its transmission. */
  maxWaitUs: number;
}

const WARNING_LIMIT = 96;
const PASSIVE_LIMIT = 128;
const BUS_OFF_LIMIT = 256;

interface Pending {
  frame: CanFrame;
  key: number;
  arrival: number;
  seq: number;
}

/** One participant of the bus. Created by `CanBus.addNode`. */
export class CanNode {
  readonly name: string;
  readonly counters: NodeCounters = { txFrames: 0, rxFrames: 0, txBytes: 0, rxBytes: 0, txBlocked: 0, rxFiltered: 0, txFull: 0, txDropped: 0, ackErrors: 0, busOffs: 0, maxWaitUs: 0 };
  tec = 0;
  rec = 0;
  state: NodeState = 'active';
  #open: boolean;
  #listenOnly = false;
  #wantsSpace = false;
  readonly pending: Pending[] = [];
  readonly queueLimit: number;
  readonly receive: readonly CanFilter[];
  readonly send: readonly CanFilter[];
  readonly #bucket: { rate: number; burst: number; tokens: number; at: number } | undefined;

  constructor(
    readonly bus: CanBus,
    opts: NodeOptions,
    readonly sink: NodeSink,
    now: number,
  ) {
    this.name = opts.name;
    this.#open = opts.open ?? false;
    this.queueLimit = opts.queueLimit ?? 64;
    this.receive = opts.receive ?? [];
    this.send = opts.send ?? [];
    if (!Number.isInteger(this.queueLimit) || this.queueLimit < 1 || this.queueLimit > 65536) throw new CanFormatError('CAN_BAD_OPTION', `node ${opts.name}: queue limit must be 1-65536, got ${this.queueLimit}`);
    const r = opts.rate;
    if (r !== undefined) {
      if (!Number.isFinite(r.framesPerSecond) || r.framesPerSecond <= 0) throw new CanFormatError('CAN_BAD_OPTION', `node ${opts.name}: rate must be a positive number of frames per second, got ${r.framesPerSecond}`);
      const burst = r.burst ?? Math.max(1, Math.floor(r.framesPerSecond));
      if (!Number.isFinite(burst) || burst < 1) throw new CanFormatError('CAN_BAD_OPTION', `node ${opts.name}: burst must be at least 1 frame, got ${burst}`);
      this.#bucket = { rate: r.framesPerSecond, burst, tokens: burst, at: now };
    }
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get listenOnly(): boolean {
    return this.#listenOnly;
  }

  /** Joins the bus (slcan `O`, or `L` for listen-only). Opening a bus-off node restarts its controller. */
  open(listenOnly = false): void {
    if (!this.#open || this.state === 'bus-off') this.#resetErrors();
    this.#open = true;
    this.#listenOnly = listenOnly;
    this.bus.kick();
  }

  /** Leaves the bus (slcan `C`): pending frames are dropped. */
  close(): void {
    this.#open = false;
    this.#dropPending();
  }

  /** Offers a frame to the bus; see SendResult. */
  sendFrame(frame: CanFrame): SendResult {
    if (frameProblem(frame) !== undefined) return 'invalid';
    const refuse = (r: SendResult): SendResult => {
      this.counters.txDropped++;
      return r;
    };
    if (!this.#open) return refuse('closed');
    if (this.#listenOnly) return refuse('listen-only');
    if (this.state === 'bus-off') return refuse('bus-off');
    if (!passes(this.send, frame)) {
      this.counters.txBlocked++;
      return 'blocked';
    }
    if (this.pending.length >= this.queueLimit) {
      this.counters.txFull++;
      this.#wantsSpace = true;
      return 'full';
    }
    this.pending.push({ frame, key: arbitrationKey(frame), arrival: this.bus.clock.now(), seq: this.bus.nextSeq() });
    this.bus.kick();
    return 'queued';
  }

  /** Whether send() would accept a frame now (space in the buffer). */
  get hasSpace(): boolean {
    return this.pending.length < this.queueLimit;
  }

  /** Adds transmit (and receive) errors, as a disturbed bus would (fault injection). */
  injectErrors(tx: number, rx = 0): void {
    this.tec += Math.max(0, Math.floor(tx));
    this.rec = Math.min(255, this.rec + Math.max(0, Math.floor(rx)));
    this.updateState();
  }

  /** When the node may next send (its token bucket), on the bus clock. */
  readyAt(t: number): number {
    const b = this.#bucket;
    if (b === undefined) return t;
    const tokens = Math.min(b.burst, b.tokens + ((t - b.at) * b.rate) / 1000);
    return tokens >= 1 - 1e-9 ? t : t + ((1 - tokens) * 1000) / b.rate;
  }

  /** Takes one token at time t (the node transmits then). */
  takeToken(t: number): void {
    const b = this.#bucket;
    if (b === undefined) return;
    b.tokens = Math.min(b.burst, b.tokens + ((t - b.at) * b.rate) / 1000) - 1;
    b.at = t;
  }

  /** The pending frame this node offers at time t (lowest key among those arrived by t), if any. */
  candidate(t: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.pending) {
      if (p.arrival > t) continue;
      if (best === undefined || p.key < best.key || (p.key === best.key && p.seq < best.seq)) best = p;
    }
    return best;
  }

  /** Removes a pending entry (it won arbitration) and tells the owner when room appears. */
  take(p: Pending): void {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
    this.#notifySpace();
  }

  #notifySpace(): void {
    if (this.#wantsSpace && this.hasSpace) {
      this.#wantsSpace = false;
      this.sink.space?.();
    }
  }

  #dropPending(): void {
    this.counters.txDropped += this.pending.length;
    this.pending.length = 0;
    this.#notifySpace();
  }

  #resetErrors(): void {
    const changed = this.state !== 'active';
    this.tec = 0;
    this.rec = 0;
    this.state = 'active';
    if (changed) this.sink.state?.('active', 0, 0);
  }

  /** Recomputes the error state from the counters; reports a change. */
  updateState(): void {
    let s: NodeState;
    if (this.tec >= BUS_OFF_LIMIT) s = 'bus-off';
    else if (this.tec >= PASSIVE_LIMIT || this.rec >= PASSIVE_LIMIT) s = 'passive';
    else if (this.tec >= WARNING_LIMIT || this.rec >= WARNING_LIMIT) s = 'warning';
    else s = 'active';
    // Bus-off ends only by a restart (open): the counters alone never leave it.
    if (this.state === 'bus-off' || s === this.state) return;
    this.state = s;
    if (s === 'bus-off') {
      this.counters.busOffs++;
      this.#dropPending();
    }
    this.sink.state?.(s, this.rec, Math.min(this.tec, 255));
  }

  /** Whether this node acknowledges frames: open, not listen-only, not bus-off. */
  get acks(): boolean {
    return this.#open && !this.#listenOnly && this.state !== 'bus-off';
  }
}

/** A frame on the wire: who sent it and when it ends. */
interface InFlight {
  frame: CanFrame;
  node: CanNode;
  start: number;
  end: number;
}

export interface CanBusOptions extends BusRates {
  name: string;
  clock: BusClock;
  /** Called for every frame that completed on the wire (acknowledged), in bus order: logs and bridges. */
  onWire?: (frame: CanFrame, sender: string, timeMs: number) => void;
}

export interface BusCounters {
  frames: number;
  fdFrames: number;
  bits: number;
  /** Microseconds the bus was busy. */
  busyUs: number;
  /** Arbitrations with more than one contender. */
  contended: number;
  ackErrors: number;
}

export class CanBus {
  readonly name: string;
  readonly clock: BusClock;
  readonly rates: BusRates;
  readonly counters: BusCounters = { frames: 0, fdFrames: 0, bits: 0, busyUs: 0, contended: 0, ackErrors: 0 };
  readonly #nodes: CanNode[] = [];
  readonly #onWire: CanBusOptions['onWire'];
  readonly #startedAt: number;
  #busFree: number;
  #inFlight: InFlight | undefined;
  #timer: { cancel(): void } | undefined;
  #timerAt = Infinity;
  #seq = 0;
  #running = false;

  /** @throws CanFormatError CAN_BAD_OPTION for a bit rate outside 1 kbit/s - 10 Mbit/s. */
  constructor(opts: CanBusOptions) {
    for (const [what, v] of [['bit rate', opts.bitrate], ['data bit rate', opts.dataBitrate ?? opts.bitrate]] as const) {
      if (!Number.isFinite(v) || v < 1000 || v > 10_000_000) throw new CanFormatError('CAN_BAD_OPTION', `bus ${opts.name}: ${what} must be 1000 to 10000000 bit/s, got ${v}`);
    }
    this.name = opts.name;
    this.clock = opts.clock;
    this.rates = { bitrate: opts.bitrate, ...(opts.dataBitrate === undefined ? {} : { dataBitrate: opts.dataBitrate }) };
    this.#onWire = opts.onWire;
    this.#startedAt = opts.clock.now();
    this.#busFree = this.#startedAt;
  }

  get nodes(): readonly CanNode[] {
    return this.#nodes;
  }

  /** @throws CanFormatError CAN_BAD_OPTION when the name is taken or an option is out of range. */
  addNode(opts: NodeOptions, sink: NodeSink): CanNode {
    if (this.#nodes.some((n) => n.name === opts.name)) throw new CanFormatError('CAN_BAD_OPTION', `bus ${this.name}: two nodes are named ${opts.name}`);
    const node = new CanNode(this, opts, sink, this.clock.now());
    this.#nodes.push(node);
    return node;
  }

  removeNode(node: CanNode): void {
    node.close();
    const i = this.#nodes.indexOf(node);
    if (i >= 0) this.#nodes.splice(i, 1);
  }

  /** @internal A sequence number keeping equal keys in arrival order. */
  nextSeq(): number {
    return this.#seq++;
  }

  /** Runs arbitration now if the bus can make progress (a frame was queued, a node opened). */
  kick(): void {
    if (this.#running) return;
    if (this.#inFlight !== undefined && this.#timerAt <= this.#inFlight.end) return;
    this.#run();
  }

  /** Stops the timer (the bus is going away). */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Catches the bus up to the clock (see the file comment). */
  #run(): void {
    this.#running = true;
    try {
      const now = this.clock.now();
      for (;;) {
        const f = this.#inFlight;
        if (f !== undefined) {
          if (f.end > now) return this.#arm(f.end, now);
          this.#inFlight = undefined;
          this.#busFree = f.end;
          this.#complete(f);
          continue;
        }
        const next = this.#nextStart();
        if (next === undefined) return;
        if (next > now) return this.#arm(next, now);
        this.#arbitrate(next);
      }
    } finally {
      this.#running = false;
    }
  }

  #arm(at: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.clock.setTimer(Math.max(0, at - now), () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#run();
    });
  }

  /** The earliest time a pending frame can start: the bus free, the frame arrived, its node has a token. */
  #nextStart(): number | undefined {
    let best: number | undefined;
    for (const n of this.#nodes) {
      if (n.pending.length === 0 || !n.acks) continue;
      let arrival = Infinity;
      for (const p of n.pending) arrival = Math.min(arrival, p.arrival);
      const t = n.readyAt(Math.max(this.#busFree, arrival));
      if (best === undefined || t < best) best = t;
    }
    return best;
  }

  /** Arbitration at time t: the smallest key among the nodes' candidates goes on the wire. */
  #arbitrate(t: number): void {
    let win: { node: CanNode; p: Pending } | undefined;
    let contenders = 0;
    for (const n of this.#nodes) {
      if (!n.acks || n.readyAt(t) > t) continue;
      const p = n.candidate(t);
      if (p === undefined) continue;
      contenders++;
      if (win === undefined || p.key < win.p.key || (p.key === win.p.key && p.seq < win.p.seq)) win = { node: n, p };
    }
    if (win === undefined) return;
    if (contenders > 1) this.counters.contended++;
    const { node, p } = win;
    node.take(p);
    node.takeToken(t);
    node.counters.maxWaitUs = Math.max(node.counters.maxWaitUs, Math.round((t - p.arrival) * 1000));
    const us = frameTimeUs(p.frame, this.rates);
    this.#inFlight = { frame: p.frame, node, start: t, end: t + us / 1000 };
  }

  /** The frame ended on the wire: acknowledged (delivered) or an ACK error. */
  #complete(f: InFlight): void {
    const { frame, node } = f;
    const us = (f.end - f.start) * 1000;
    this.counters.busyUs += us;
    this.counters.bits += Math.round((us * this.rates.bitrate) / 1e6);
    const receivers = this.#nodes.filter((n) => n !== node && n.isOpen && n.state !== 'bus-off');
    if (!receivers.some((n) => n.acks)) {
      node.counters.ackErrors++;
      this.counters.ackErrors++;
      // "A transmitter that is error passive and detects an ACK error ... does not increase its TEC."
      if (node.state !== 'passive') node.tec += 8;
      node.updateState();
      node.sink.error?.('a');
      return;
    }
    this.counters.frames++;
    if (frame.fd) this.counters.fdFrames++;
    node.counters.txFrames++;
    node.counters.txBytes += frame.data.length;
    if (node.tec > 0) node.tec--;
    node.updateState();
    this.#onWire?.(frame, node.name, f.end);
    for (const r of receivers) {
      if (r.rec > 0) r.rec = r.rec > PASSIVE_LIMIT ? 119 : r.rec - 1;
      r.updateState();
      if (!passes(r.receive, frame)) {
        r.counters.rxFiltered++;
        continue;
      }
      r.counters.rxFrames++;
      r.counters.rxBytes += frame.data.length;
      r.sink.frame(frame, f.end);
    }
  }

  /** Share of time the bus was busy since it started (0-1). */
  load(now = this.clock.now()): number {
    const elapsedUs = (now - this.#startedAt) * 1000;
    return elapsedUs <= 0 ? 0 : Math.min(1, this.counters.busyUs / elapsedUs);
  }
}
