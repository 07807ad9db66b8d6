// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can's link to an AVP CAN bus (`avp canbus`, manifest `buses:`): the device's controller
 * is one node of the bus, joined through the node's Unix socket with the slcan protocol the bus
 * speaks to every node (can/slcan.ts; CAN FD frames with its d/D/b/B extension).
 *
 * Owns: connecting when the controller starts (and again after the bus went away), `O`/`C` for
 * start and stop, frames both ways, bus-off from the bus's state report (`sb…`), and
 * back-pressure: frames wait in a bounded output buffer; beyond it `send` answers 'busy' and the
 * device holds the guest's transmit buffers until the socket drains (`writable`).
 * The socket is non-blocking and watched on the device's reactor (the vhost-user loop), through
 * the injected `UnixStreamOps`: the device never calls the OS itself.
 * Does not own: the bus (the other end), virtqueues (model.ts).
 */
import { type CanFrame, SlcanDecoder, encodeSlcanCommand, encodeSlcanFrame } from '../../can/index.js';
import type { HostReactor, HostWatch } from '../../device/contract.js';
import { PendingOutput, drainReadable } from '../stream-io.js';
import type { UnixStreamOps } from '../vsock/host.js';
import type { CanLink, CanLinkEvents } from './host.js';

/** Bytes of slcan output kept while the bus socket is full (some hundred frames). */
export const MAX_PENDING_OUTPUT = 16 * 1024;

export class BusSocketLink implements CanLink {
  readonly stats = { connects: 0, connectFailures: 0, framesOut: 0, framesIn: 0, refusedByBus: 0, invalidFromBus: 0, disconnects: 0 };
  readonly #path: string;
  readonly #ops: UnixStreamOps;
  #events: CanLinkEvents | undefined;
  #reactor: HostReactor | undefined;
  #fd: number | undefined;
  #watch: HostWatch | undefined;
  #decoder = new SlcanDecoder();
  readonly #out = new PendingOutput();
  #wasBusy = false;
  readonly #buf = new Uint8Array(4096);

  constructor(path: string, ops: UnixStreamOps) {
    this.#path = path;
    this.#ops = ops;
  }

  attach(events: CanLinkEvents, reactor: HostReactor): void {
    this.#events = events;
    this.#reactor = reactor;
  }

  start(): boolean {
    if (this.#fd === undefined && !this.#connect()) return false;
    this.#queue(encodeSlcanCommand('O'));
    return true;
  }

  stop(): void {
    if (this.#fd !== undefined) this.#queue(encodeSlcanCommand('C'));
  }

  send(f: CanFrame): 'ok' | 'busy' | 'refused' {
    if (this.#fd === undefined) return 'refused';
    if (this.#out.bytes > MAX_PENDING_OUTPUT) {
      this.#wasBusy = true;
      return 'busy';
    }
    this.stats.framesOut++;
    this.#queue(encodeSlcanFrame(f));
    return 'ok';
  }

  detach(): void {
    this.#close();
    this.#events = undefined;
    this.#reactor = undefined;
  }

  #connect(): boolean {
    const reactor = this.#reactor;
    if (reactor === undefined) return false;
    let fd: number;
    try {
      fd = this.#ops.connect(this.#path);
    } catch {
      this.stats.connectFailures++;
      return false;
    }
    this.stats.connects++;
    this.#fd = fd;
    this.#decoder = new SlcanDecoder();
    this.#watch = reactor.watch(fd, (ready) => {
      if (ready.readable || ready.hangup) this.#read();
      if (ready.writable) this.#flush();
    });
    return true;
  }

  #close(): void {
    this.#watch?.close();
    this.#watch = undefined;
    if (this.#fd !== undefined) this.#ops.close(this.#fd);
    this.#fd = undefined;
    this.#out.clear();
  }

  #queue(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#flush();
  }

  #flush(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    if (!this.#out.flush(this.#ops, fd)) return this.#lost();
    this.#watch?.setWritable(!this.#out.empty);
    if (this.#wasBusy && this.#out.bytes <= MAX_PENDING_OUTPUT) {
      this.#wasBusy = false;
      this.#events?.writable();
    }
  }

  #read(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    const end = drainReadable(this.#ops, fd, this.#buf, (chunk) => {
      for (const m of this.#decoder.push(chunk)) {
        if (m.kind === 'frame') {
          this.stats.framesIn++;
          this.#events?.frame(m.frame);
        } else if (m.kind === 'state' && m.state === 'bus-off') this.#events?.busOff();
        else if (m.kind === 'invalid') this.stats.invalidFromBus++;
      }
      // BEL answers (a refused frame) end a line without content: the decoder skips them; count them here.
      for (const b of chunk) if (b === 0x07) this.stats.refusedByBus++;
    });
    if (end === 'closed' || end === 'failed') this.#lost();
  }

  /** The bus went away: frames are refused until the controller is started again (which reconnects). */
  #lost(): void {
    this.stats.disconnects++;
    this.#close();
  }
}
