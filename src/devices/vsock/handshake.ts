// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of the hybrid-vsock handshake (see host.ts): host programs that connected to
 * `<uds>`, from accept until their `CONNECT <port>\n` line arrived.
 *
 * Owns: accepting clients of the listening socket (a few per wake-up), the bounded set of clients
 * still waiting for their line (`MAX_HANDSHAKES`), reading and parsing the line (`parseHandshake`),
 * the deadline for it, and dropping clients that send none or a bad one (`handshakeErrors`).
 * Does not own: the listening socket itself (the device opens and closes it), what happens once a
 * line arrived (the device hands the fd to its connection table, `host-connections.ts`), any OS call
 * (injected `UnixStreamOps`).
 */
import type { DeviceContext, HostTimer, HostWatch } from '../../device/contract.js';
import { HANDSHAKE_MAX_LINE, parseHandshake, type UnixStreamOps } from './host.js';
import type { VsockCounters } from './metrics.js';
import { errorText } from '../../errors.js';

/** Connections accepted on `<uds>` still waiting for their CONNECT line, at most. */
export const MAX_HANDSHAKES = 64;
/** Clients accepted per wake-up, so a flood of clients cannot monopolise the loop. */
const ACCEPTS_PER_WAKEUP = 16;

/** What the handshakes need from their device. */
export interface HandshakeDeps {
  readonly guestCid: number;
  readonly host: UnixStreamOps;
  readonly udsPath: string;
  /** How long a client may take to send its line. */
  readonly timeoutMs: number;
  readonly counters: VsockCounters;
  /** The device's context while it is active. */
  ctx(): DeviceContext | undefined;
  /** A client asked for guest port `port`; `early` is what it sent after the line. */
  connect(fd: number, port: number, early: Uint8Array): void;
}

/** A host client of `<uds>` that has not sent its CONNECT line yet. */
interface Handshake {
  fd: number;
  watch: HostWatch;
  timer: HostTimer;
  buf: Uint8Array;
  len: number;
}

export class HostHandshakes {
  readonly #d: HandshakeDeps;
  readonly #pending = new Set<Handshake>();

  constructor(deps: HandshakeDeps) {
    this.#d = deps;
  }

  /** The listening socket is readable: accepts what is pending (up to a few) and waits for their lines. */
  accept(listenFd: number): void {
    const { host } = this.#d;
    const ctx = this.#d.ctx();
    if (ctx === undefined) return;
    for (let i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
      let fd: number | null;
      try {
        fd = host.accept(listenFd);
      } catch (e: unknown) {
        ctx.log.warn(`vsock ${this.#d.guestCid}: accept on ${this.#d.udsPath} failed: ${errorText(e)}`);
        return;
      }
      if (fd === null) return;
      if (this.#pending.size >= MAX_HANDSHAKES) {
        this.#d.counters.handshakeErrors++;
        host.close(fd);
        continue;
      }
      this.#start(fd, ctx);
    }
  }

  /** Drops every client still waiting (the device resets), each counted as a handshake error. */
  endAll(why: string): void {
    for (const hs of [...this.#pending]) this.#end(hs, why);
  }

  #start(fd: number, ctx: DeviceContext): void {
    const hs: Handshake = {
      fd,
      buf: new Uint8Array(HANDSHAKE_MAX_LINE),
      len: 0,
      watch: ctx.reactor.watch(fd, () => this.#read(hs)),
      timer: ctx.reactor.setTimer(this.#d.timeoutMs, () => this.#end(hs, 'no CONNECT line in time')),
    };
    this.#pending.add(hs);
  }

  #read(hs: Handshake): void {
    if (!this.#pending.has(hs)) return;
    let n: number | null;
    try {
      n = this.#d.host.read(hs.fd, hs.buf.subarray(hs.len));
    } catch (e: unknown) {
      this.#end(hs, errorText(e));
      return;
    }
    if (n === null) return;
    if (n === 0) {
      this.#end(hs, 'closed before CONNECT');
      return;
    }
    hs.len += n;
    const p = parseHandshake(hs.buf.subarray(0, hs.len));
    if (p.kind === 'incomplete') return;
    if (p.kind === 'invalid') {
      this.#end(hs, p.reason);
      return;
    }
    this.#pending.delete(hs);
    hs.watch.close();
    hs.timer.cancel();
    this.#d.connect(hs.fd, p.port, p.rest);
  }

  #end(hs: Handshake, why: string): void {
    if (!this.#pending.delete(hs)) return;
    this.#d.counters.handshakeErrors++;
    this.#d.ctx()?.log.debug(`vsock ${this.#d.guestCid}: host client dropped: ${why}`);
    hs.watch.close();
    hs.timer.cancel();
    this.#d.host.close(hs.fd);
  }
}
