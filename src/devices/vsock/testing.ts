// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures for virtio-vsock: an in-memory `UnixStreamOps` (sockets whose readiness, capacity
 * and failures a test controls), and a guest driver over the in-process harness that sends packets
 * on the tx queue and collects what the device puts in rx buffers. Packet bytes are built and
 * parsed here with `DataView`, never with the codecs in `spec.ts`, which they exist to check.
 *
 * Owns: test fixtures only. Does not own: any device behaviour.
 */
import type { DeviceHarness } from '../../device/harness.js';
import type { VirtioDevice } from '../../device/contract.js';
import { hdrBytes, parseHdr, type Hdr } from './conformance.js';
import type { UnixStreamOps } from './host.js';

// ---- fake host sockets ------------------------------------------------------------------------

/** Error thrown by the fake, with an errno-like code. */
export class FakeSocketError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** The device's end of a fake socket, as the test sees it. */
export class FakeSocket {
  /** Bytes the test sent that the device has not read. */
  inbound: Uint8Array[] = [];
  /** The test shut its write side (the device reads EOF after `inbound`). */
  peerEnded = false;
  /** Everything the device wrote. */
  readonly written: number[] = [];
  /** Bytes the device may still write before `write` returns null (back-pressure). */
  capacity = Infinity;
  /** The device shut its write side. */
  deviceEnded = false;
  closed = false;
  /** The test end is gone entirely: reads hit EOF and writes fail with EPIPE. */
  peerClosed = false;
  /** The next read or write throws this. */
  failNext: string | undefined;

  constructor(readonly fd: number, readonly path: string) {}

  /** Test → device. */
  send(bytes: Uint8Array | string): void {
    this.inbound.push(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes.slice());
  }

  /** The device's output as text. */
  text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.written));
  }

  /** Takes the device's output so far. */
  take(): Uint8Array {
    const out = Uint8Array.from(this.written);
    this.written.length = 0;
    return out;
  }

  get readable(): boolean {
    return this.inbound.length > 0 || this.peerEnded || this.peerClosed;
  }
}

/** In-memory sockets. fds start at 1000; `listen` paths are device listeners, `hostListen` paths are host programs. */
export class FakeUnixStreams implements UnixStreamOps {
  #nextFd = 1000;
  readonly sockets = new Map<number, FakeSocket>();
  /** Device listeners: path → fd, with clients waiting to be accepted. */
  readonly listeners = new Map<string, { fd: number; backlog: FakeSocket[] }>();
  /** Host programs listening at a path: what they accepted. */
  readonly hostListeners = new Map<string, FakeSocket[]>();
  readonly unlinked: string[] = [];
  readonly closedFds: number[] = [];
  /** Paths whose connect throws this code instead of connecting (e.g. 'EAGAIN'). */
  readonly connectFailures = new Map<string, string>();

  /** A host program listens at `path` (guest → host connections to it succeed). */
  hostListen(path: string): FakeSocket[] {
    const accepted: FakeSocket[] = [];
    this.hostListeners.set(path, accepted);
    return accepted;
  }

  /** A host client connects to the device's listener at `path`; returns the device's end. */
  clientConnect(path: string): FakeSocket {
    const l = this.listeners.get(path);
    if (l === undefined) throw new FakeSocketError('ECONNREFUSED');
    const s = new FakeSocket(this.#nextFd++, path);
    this.sockets.set(s.fd, s);
    l.backlog.push(s);
    return s;
  }

  listen(path: string): number {
    if (this.listeners.has(path)) throw new FakeSocketError('EADDRINUSE');
    const fd = this.#nextFd++;
    this.listeners.set(path, { fd, backlog: [] });
    return fd;
  }

  accept(listenFd: number): number | null {
    for (const l of this.listeners.values()) if (l.fd === listenFd) return l.backlog.shift()?.fd ?? null;
    throw new FakeSocketError('EBADF');
  }

  connect(path: string): number {
    const failure = this.connectFailures.get(path);
    if (failure !== undefined) throw new FakeSocketError(failure);
    const accepted = this.hostListeners.get(path);
    if (accepted === undefined) throw new FakeSocketError('ENOENT');
    const s = new FakeSocket(this.#nextFd++, path);
    this.sockets.set(s.fd, s);
    accepted.push(s);
    return s.fd;
  }

  #socket(fd: number): FakeSocket {
    const s = this.sockets.get(fd);
    if (s === undefined || s.closed) throw new FakeSocketError('EBADF');
    return s;
  }

  read(fd: number, buf: Uint8Array): number | null {
    const s = this.#socket(fd);
    if (s.failNext !== undefined) throw new FakeSocketError(s.failNext);
    const first = s.inbound[0];
    if (first === undefined) return s.peerEnded || s.peerClosed ? 0 : null;
    const n = Math.min(first.byteLength, buf.byteLength);
    buf.set(first.subarray(0, n));
    if (n === first.byteLength) s.inbound.shift();
    else s.inbound[0] = first.subarray(n);
    return n;
  }

  write(fd: number, data: Uint8Array): number | null {
    const s = this.#socket(fd);
    if (s.failNext !== undefined) throw new FakeSocketError(s.failNext);
    if (s.peerClosed) throw new FakeSocketError('EPIPE');
    if (s.deviceEnded) throw new FakeSocketError('EPIPE');
    const n = Math.min(data.byteLength, s.capacity);
    if (n === 0) return null;
    for (let i = 0; i < n; i++) s.written.push(data[i] ?? 0);
    s.capacity -= n;
    return n;
  }

  shutdownWrite(fd: number): void {
    this.#socket(fd).deviceEnded = true;
  }

  close(fd: number): void {
    const s = this.sockets.get(fd);
    if (s !== undefined) s.closed = true;
    this.closedFds.push(fd);
  }

  unlink(path: string): void {
    this.unlinked.push(path);
  }

  /** Open (not closed) device-side sockets. */
  open(): FakeSocket[] {
    return [...this.sockets.values()].filter((s) => !s.closed);
  }
}

// ---- packets built by hand --------------------------------------------------------------------

// Headers are built by hand in conformance.ts (the checks need them too); re-exported here.
export { OP, hdrBytes, parseHdr, type Hdr } from './conformance.js';

/** A received packet. */
export interface RxPacket {
  hdr: Hdr;
  data: Uint8Array;
  /** Used length the device reported. */
  usedLen: number;
}

/** A deterministic byte pattern. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/**
 * A guest driver for one vsock device in a harness: sends packets on tx, keeps rx stocked with
 * buffers it recycles, and keeps its own credit counters per flow like a Linux socket would.
 */
export class VsockDriver<D extends VirtioDevice = VirtioDevice> {
  readonly #rxPool: number[] = [];
  readonly #txPool: number[] = [];
  readonly #rxBufSize: number;

  constructor(
    readonly h: DeviceHarness<D>,
    readonly guestCid: number,
    opts: { rxBuffers?: number; rxBufSize?: number; fill?: boolean } = {},
  ) {
    this.#rxBufSize = opts.rxBufSize ?? 44 + 4096;
    const n = opts.rxBuffers ?? 32;
    for (let i = 0; i < n; i++) this.#rxPool.push(h.alloc.alloc(this.#rxBufSize));
    for (let i = 0; i < 64; i++) this.#txPool.push(h.alloc.alloc(44 + 65536));
    if (opts.fill ?? true) this.fillRx();
  }

  /** Adds a chain to queue `index` with its address as token; kicks the device if the ring asks. */
  #add(index: number, buffers: ReadonlyArray<{ addr: number; len: number; writable?: boolean }>, token: number): void {
    const q = this.h.queue(index);
    q.add(buffers, token);
    if (q.needsKick()) this.h.runner.kick(index);
  }

  /** Posts free rx buffers, at most `max`. */
  fillRx(max = Infinity): number {
    let n = 0;
    while (this.#rxPool.length > 0 && n < max) {
      // Safe: length checked by the loop.
      const addr = this.#rxPool.pop()!;
      this.#add(0, [{ addr, len: this.#rxBufSize, writable: true }], addr);
      n++;
    }
    return n;
  }

  /** rx buffers the driver holds (not posted). */
  get rxIdle(): number {
    return this.#rxPool.length;
  }

  /** A header from this guest; fields default to a STREAM packet with 256 KiB buf_alloc. */
  hdr(fields: Partial<Hdr> & Pick<Hdr, 'op'>): Hdr {
    return { src_cid: BigInt(this.guestCid), dst_cid: 2n, src_port: 1234, dst_port: 5000, len: 0, type: 1, flags: 0, buf_alloc: 262144, fwd_cnt: 0, ...fields };
  }

  /**
   * Sends one packet: header and payload in one readable buffer, or in two with `split`. A header
   * given as bytes is sent as is (hostile tests); `len` defaults to the payload's length.
   */
  send(h: Hdr | Uint8Array, data?: Uint8Array, opts: { split?: boolean } = {}): void {
    const hb = h instanceof Uint8Array ? h : hdrBytes({ ...h, len: h.len === 0 && data !== undefined ? data.byteLength : h.len });
    const addr = this.#txPool.pop() ?? this.h.alloc.alloc(44 + 65536);
    this.h.memory.write(addr, hb);
    if (data !== undefined) this.h.memory.write(addr + hb.byteLength, data);
    const total = hb.byteLength + (data?.byteLength ?? 0);
    if (opts.split === true && data !== undefined && data.byteLength > 0) {
      this.#add(1, [{ addr, len: hb.byteLength }, { addr: addr + hb.byteLength, len: data.byteLength }], addr);
    } else this.#add(1, [{ addr, len: Math.max(1, total) }], addr);
    // The device completes tx chains at once (or keeps a paused one); used buffers are recycled.
    for (let u = this.h.queue(1).popUsed(); u !== null; u = this.h.queue(1).popUsed()) this.#txPool.push(u.token);
  }

  /** Takes every packet the device placed in rx buffers, re-posting the buffers unless `refill` is false. */
  recv(refill = true): RxPacket[] {
    const out: RxPacket[] = [];
    const q = this.h.queue(0);
    for (let u = q.popUsed(); u !== null; u = q.popUsed()) {
      const addr = u.token;
      const bytes = this.h.memory.read(addr, Math.max(44, Math.min(u.len, this.#rxBufSize)));
      const hdr = parseHdr(bytes.subarray(0, 44));
      out.push({ hdr, data: bytes.slice(44, u.len), usedLen: u.len });
      this.#rxPool.push(addr);
    }
    if (refill) this.fillRx();
    return out;
  }
}

/**
 * Plays one poll loop over the fake sockets until nothing is ready: every watched fd whose fake
 * state is ready (as the watcher's interest masks it) is fired, round after round. Returns the
 * number of callbacks made. Bounded, so a device that never settles fails the test instead of
 * hanging it.
 */
export function pump(reactor: { watchedFds(): number[]; fire(fd: number, ready: { readable?: boolean; writable?: boolean; hangup?: boolean }): number }, fake: FakeUnixStreams, maxRounds = 10_000): number {
  let calls = 0;
  for (let round = 0; round < maxRounds; round++) {
    let fired = 0;
    for (const fd of new Set(reactor.watchedFds())) {
      const listener = [...fake.listeners.values()].find((l) => l.fd === fd);
      if (listener !== undefined) {
        if (listener.backlog.length > 0) fired += reactor.fire(fd, { readable: true });
        continue;
      }
      const s = fake.sockets.get(fd);
      if (s === undefined || s.closed) continue;
      fired += reactor.fire(fd, { readable: s.readable, writable: s.capacity > 0 && !s.peerClosed, hangup: s.peerClosed });
    }
    calls += fired;
    if (fired === 0) return calls;
  }
  throw new Error(`pump: still busy after ${maxRounds} rounds`);
}
