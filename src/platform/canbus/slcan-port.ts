// SPDX-License-Identifier: Apache-2.0
/**
 * One bus node reached over a byte stream speaking slcan (can/slcan.ts): a guest's virtio console
 * port (QEMU's chardev connects to the node's socket), a virtio-can back-end, or a host program.
 *
 * Owns: the LAWICEL session of one connection at a time: commands answered (CR, or BEL when
 * refused), frames offered to the node, frames, state changes and ACK errors written back, and
 * back-pressure both ways. Towards the bus: when the node's transmit buffer is full the socket is
 * paused and the decoded rest waits, so a guest that floods slows down (its tty, then its
 * SocketCAN queue, fill) and nothing is lost. Towards the peer: a peer that does not read is a
 * full receive FIFO: once its socket holds more than RX_BUFFER_BYTES unsent, frames for it are
 * dropped and counted (`rxOverflow`), as a controller's overrun.
 * Hostile peers: lines are capped (the decoder), unknown commands and bad frames are answered BEL
 * and counted, never thrown.
 * Does not own: the socket's listening side (server.ts) or the bus model.
 */
import type { Socket } from 'node:net';
import { type CanFrame, type CanNode, type NodeSink, type NodeState, SLCAN_BITRATES, SLCAN_ERROR, SLCAN_OK, SlcanDecoder, type SlcanMessage, encodeSlcanError, encodeSlcanFrame, encodeSlcanState } from '../../can/index.js';

/** Unsent bytes a peer may leave in its socket before frames for it are dropped. */
export const RX_BUFFER_BYTES = 64 * 1024;
/** Decoded messages kept while the node's transmit buffer is full (one socket read's worth). */
const MAX_BACKLOG = 16 * 1024;

export interface PortLog {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface PortCounters {
  connections: number;
  commands: number;
  /** Lines that were neither a command nor a valid frame. */
  invalid: number;
  /** Frames the node refused (closed, listen-only, bus-off, send filter); answered BEL. */
  refused: number;
  /** Frames for the peer dropped because it did not read. */
  rxOverflow: number;
}

const STATE_NAMES: Readonly<Record<NodeState, 'active' | 'warning' | 'passive' | 'bus-off'>> = { active: 'active', warning: 'warning', passive: 'passive', 'bus-off': 'bus-off' };

export class SlcanPort implements NodeSink {
  readonly counters: PortCounters = { connections: 0, commands: 0, invalid: 0, refused: 0, rxOverflow: 0 };
  /** The bit rate the peer asked for with S<n> (undefined until it does). */
  requestedBitrate: number | undefined;
  #node: CanNode | undefined;
  #socket: Socket | undefined;
  #decoder = new SlcanDecoder();
  #backlog: SlcanMessage[] = [];
  readonly #log: PortLog;
  readonly #busBitrate: number;
  readonly #autoOpen: boolean;
  readonly #onJoin: (() => void) | undefined;

  /**
   * `autoOpen`: the node joins the bus as soon as a peer connects (host programs need not send
   * `O`). `onJoin` is called after the node opened.
   */
  constructor(opts: { log: PortLog; busBitrate: number; autoOpen: boolean; onJoin?: () => void }) {
    this.#log = opts.log;
    this.#busBitrate = opts.busBitrate;
    this.#autoOpen = opts.autoOpen;
    this.#onJoin = opts.onJoin;
  }

  /** Binds the port to its bus node (once, right after CanBus.addNode). */
  bind(node: CanNode): void {
    this.#node = node;
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  /** Takes a new connection; false (and the socket is closed) when one is already attached. */
  attach(socket: Socket): boolean {
    if (this.#socket !== undefined) {
      socket.destroy();
      return false;
    }
    this.#socket = socket;
    this.#decoder = new SlcanDecoder();
    this.#backlog = [];
    this.counters.connections++;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e) => this.#log.debug(`${this.#name}: ${e.message}`));
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#backlog = [];
      this.#node?.close();
      this.#log.info(`${this.#name}: peer disconnected`);
    });
    this.#log.info(`${this.#name}: peer connected`);
    if (this.#autoOpen) {
      this.#node?.open();
      this.#onJoin?.();
    }
    return true;
  }

  /** Closes the current connection, if any. */
  detach(): void {
    this.#socket?.destroy();
  }

  get #name(): string {
    return this.#node?.name ?? '?';
  }

  #onData(chunk: Buffer): void {
    this.#backlog.push(...this.#decoder.push(chunk));
    this.#drain();
  }

  /** Handles decoded messages until the node's buffer is full (then waits for `space`). */
  #drain(): void {
    const node = this.#node;
    const socket = this.#socket;
    if (node === undefined || socket === undefined) return;
    while (this.#backlog.length > 0) {
      // Safe: the loop condition says the backlog is not empty.
      const m = this.#backlog[0]!;
      if (m.kind === 'frame') {
        const r = node.sendFrame(m.frame);
        if (r === 'full') {
          socket.pause();
          if (this.#backlog.length > MAX_BACKLOG) this.#backlog.length = MAX_BACKLOG;
          return;
        }
        if (r !== 'queued') {
          this.counters.refused++;
          this.#write(SLCAN_ERROR);
        }
      } else this.#message(m);
      this.#backlog.shift();
    }
    socket.resume();
  }

  #message(m: SlcanMessage): void {
    const node = this.#node;
    if (node === undefined) return;
    if (m.kind !== 'command') {
      // A state or error report is for nodes, not from them.
      this.counters.invalid++;
      this.#log.debug(`${this.#name}: ${m.kind === 'invalid' ? `bad line '${m.line}': ${m.reason}` : `unexpected ${m.kind} message`}`);
      this.#write(SLCAN_ERROR);
      return;
    }
    this.counters.commands++;
    switch (m.code) {
      case 'O':
      case 'L':
        node.open(m.code === 'L');
        this.#log.info(`${this.#name}: channel open${m.code === 'L' ? ' (listen only)' : ''}`);
        this.#write(SLCAN_OK);
        return this.#onJoin?.();
      case 'C':
        node.close();
        this.#log.info(`${this.#name}: channel closed`);
        return this.#write(SLCAN_OK);
      case 'S': {
        const rate = /^[0-8]$/.test(m.arg) ? SLCAN_BITRATES[Number(m.arg)] : undefined;
        if (rate === undefined) return this.#write(SLCAN_ERROR);
        this.requestedBitrate = rate;
        if (rate !== this.#busBitrate) this.#log.warn(`${this.#name}: asked for ${rate} bit/s; the bus runs at ${this.#busBitrate} bit/s (frames still flow; a real node at the wrong rate would see only errors)`);
        return this.#write(SLCAN_OK);
      }
      case 'V':
        return this.#write(ascii('V1013\r'));
      case 'v':
        return this.#write(ascii('v1013\r'));
      case 'N':
        return this.#write(ascii('NA0VP\r'));
      case 'F': {
        // LAWICEL status flags: bit 2 error warning, bit 5 error passive, bit 7 bus error.
        const s = node.state;
        const flags = (s === 'warning' ? 0x04 : 0) | (s === 'passive' ? 0x20 : 0) | (s === 'bus-off' ? 0x80 : 0);
        return this.#write(ascii(`F${flags.toString(16).toUpperCase().padStart(2, '0')}\r`));
      }
      default:
        // s (bit timing), Z, X, M, m, U, Q, W, P, A: accepted; they change nothing on a virtual bus.
        return this.#write(SLCAN_OK);
    }
  }

  #write(bytes: Uint8Array): void {
    const s = this.#socket;
    if (s === undefined || s.destroyed) return;
    s.write(bytes);
  }

  // NodeSink ------------------------------------------------------------------------------------

  frame(frame: CanFrame): void {
    const s = this.#socket;
    if (s === undefined || s.destroyed) return;
    if (s.writableLength > RX_BUFFER_BYTES) {
      this.counters.rxOverflow++;
      return;
    }
    s.write(encodeSlcanFrame(frame));
  }

  state(state: NodeState, rec: number, tec: number): void {
    this.#log.info(`${this.#name}: error state ${state} (REC ${rec}, TEC ${tec})`);
    this.#write(encodeSlcanState(STATE_NAMES[state], rec, tec));
  }

  error(codes: string): void {
    this.#write(encodeSlcanError(codes));
  }

  space(): void {
    this.#drain();
  }
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
