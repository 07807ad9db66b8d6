// SPDX-License-Identifier: Apache-2.0
/**
 * The bridge between an AVP CAN bus and a host SocketCAN interface (a real controller or `vcan`):
 * one bus node whose frames come from, and go to, a raw CAN socket (sys/can.ts).
 *
 * Owns: converting frames both ways (error frames from the host are not bus traffic: counted and
 * dropped), the read loop (wait for readability off the event loop, then read every pending frame;
 * when the node's buffer is full, reading waits for room, and the kernel's socket buffer absorbs
 * or drops the rest as it would for any slow reader), and counters.
 * Does not own: opening the socket (the server does, and skips the bridge with a warning when the
 * host has no CAN or no such interface).
 */
import { type CanFrame, type CanNode, type NodeSink, canFrame, frameProblem } from '../../can/index.js';
import type { CanRawSocket, RawCanFrame } from '../../sys/index.js';

const CAN_EFF_FLAG = 0x80000000;
const CAN_RTR_FLAG = 0x40000000;
const CAN_ERR_FLAG = 0x20000000;
const CANFD_BRS = 0x1;
const CANFD_ESI = 0x2;
/** How long one wait for readability lasts before it checks whether the bridge was stopped. */
const WAIT_MS = 250;

/** A kernel frame → a bus frame; undefined for error frames and frames that are not valid. */
export function fromRaw(r: RawCanFrame): CanFrame | undefined {
  if ((r.canId & CAN_ERR_FLAG) !== 0) return undefined;
  const extended = (r.canId & CAN_EFF_FLAG) !== 0;
  const id = r.canId & (extended ? 0x1fffffff : 0x7ff);
  const f = r.fd
    ? canFrame({ id, extended, fd: true, brs: (r.flags & CANFD_BRS) !== 0, esi: (r.flags & CANFD_ESI) !== 0, data: r.data })
    : canFrame({ id, extended, rtr: (r.canId & CAN_RTR_FLAG) !== 0, data: r.data, rtrLength: r.rtrLength });
  return frameProblem(f) === undefined ? f : undefined;
}

/** A bus frame → the kernel's layout. */
export function toRaw(f: CanFrame): RawCanFrame {
  const canId = (f.id | (f.extended ? CAN_EFF_FLAG : 0) | (f.rtr ? CAN_RTR_FLAG : 0)) >>> 0;
  return { canId, fd: f.fd, flags: (f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0), data: f.data, rtrLength: f.rtrLength };
}

export interface BridgeCounters {
  fromHost: number;
  toHost: number;
  /** Host frames that were error frames or invalid. */
  dropped: number;
  /** Frames the host interface refused (queue full, FD on a classic interface). */
  hostRefused: number;
}

export class SocketCanBridge implements NodeSink {
  readonly counters: BridgeCounters = { fromHost: 0, toHost: 0, dropped: 0, hostRefused: 0 };
  readonly #socket: CanRawSocket;
  readonly #onError: (e: unknown) => void;
  #node: CanNode | undefined;
  #held: CanFrame | undefined;
  #running = false;
  #waiting = false;

  constructor(socket: CanRawSocket, onError: (e: unknown) => void) {
    this.#socket = socket;
    this.#onError = onError;
  }

  bind(node: CanNode): void {
    this.#node = node;
  }

  start(): void {
    this.#running = true;
    void this.#loop();
  }

  stop(): void {
    this.#running = false;
    this.#socket.close();
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      if (this.#held !== undefined) return; // space() restarts the loop
      this.#waiting = true;
      const readable = await this.#socket.waitReadable(WAIT_MS);
      this.#waiting = false;
      if (!this.#running) return;
      if (readable && !this.#readPending()) return;
    }
  }

  /** Reads every pending frame into the node; false when the node is full (a frame is held). */
  #readPending(): boolean {
    const node = this.#node;
    if (node === undefined) return true;
    try {
      for (let raw = this.#socket.read(); raw !== null; raw = this.#socket.read()) {
        const f = fromRaw(raw);
        if (f === undefined) {
          this.counters.dropped++;
          continue;
        }
        if (node.sendFrame(f) === 'full') {
          this.#held = f;
          return false;
        }
        this.counters.fromHost++;
      }
    } catch (e: unknown) {
      this.#running = false;
      this.#onError(e);
    }
    return true;
  }

  frame(frame: CanFrame): void {
    try {
      if (this.#socket.write(toRaw(frame))) this.counters.toHost++;
      else this.counters.hostRefused++;
    } catch {
      // EINVAL: an FD frame on a classic interface; the host cannot carry it.
      this.counters.hostRefused++;
    }
  }

  space(): void {
    const f = this.#held;
    const node = this.#node;
    if (f === undefined || node === undefined) return;
    if (node.sendFrame(f) === 'full') return;
    this.counters.fromHost++;
    this.#held = undefined;
    if (this.#running && !this.#waiting) void this.#loop();
  }
}
