// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock device's table of connections to host Unix sockets (hybrid vsock, see host.ts), and
 * everything they do on the host side.
 *
 * Owns: opening a connection for a guest REQUEST to (CID 2, port X) and for a host client's
 * CONNECT line, every packet from the guest to CID 2 once `model.ts` validated it, moving stream
 * bytes between the guest and the host socket, watching each host socket for exactly what its
 * connection can do now, and ending connections (RST, clean close, timeouts, host failures).
 * Does not own: one connection's state and credit arithmetic, and the flow-control and disconnect
 * rules (`connection.ts`), tx validation, routing and guest-to-guest flows (`model.ts`,
 * `fabric.ts`), the rx backlog and its delivery (`rx-backlog.ts`, `model.ts`), the CONNECT line
 * (`handshake.ts`), any OS call (injected `UnixStreamOps`).
 */
import type { DeviceContext } from '../../device/contract.js';
import {
  beyondOurCredit,
  connKey,
  creditUpdateDue,
  newHostConn,
  outOfGuestCredit,
  packetHeader,
  queuedForGuest,
  readRoom,
  takeGuestCredit,
  u32,
  type HostConn,
} from './connection.js';
import { hostPortPath, okLine, type UnixStreamOps } from './host.js';
import type { VsockCounters, VsockResetCounts, VsockResetReason } from './metrics.js';
import type { Pending, RxBacklog } from './rx-backlog.js';
import {
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_F_SEND,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VMADDR_CID_HOST,
  type VirtioVsockHdr,
} from './spec.js';
import { errorText } from '../../errors.js';

/** First host-side port of host-initiated connections (Firecracker's convention: 2^30 and up). */
const FIRST_HOST_PORT = 0x4000_0000;

/** What the connection table needs from its device. */
export interface ConnectionDeps {
  readonly guestCid: number;
  /** Socket operations; undefined when the device has no `udsPath` (every REQUEST to CID 2 is refused). */
  readonly host: UnixStreamOps | undefined;
  readonly udsPath: string | undefined;
  /** `buf_alloc` advertised per connection, and the per-connection buffer each way. */
  readonly bufAlloc: number;
  /** How long a guest may take to answer a host-initiated REQUEST, and a closing connection to drain. */
  readonly timeoutMs: number;
  readonly backlog: RxBacklog;
  readonly counters: VsockCounters;
  readonly resets: VsockResetCounts;
  /** The device's context while it is active. */
  ctx(): DeviceContext | undefined;
  /** Adds a packet for the guest to the rx backlog (and delivers it when the device is not busy). */
  enqueue(p: Pending): void;
  /** Moves backlog packets into rx buffers now. */
  flushRx(): void;
  /** RST for the flow of a packet the device refuses (counted under `reason`). */
  replyRst(hdr: VirtioVsockHdr, reason: VsockResetReason): void;
  /** True when the guest has as many connections (host and peer) as it may. */
  atConnectionLimit(): boolean;
}

export class HostConnections {
  readonly #d: ConnectionDeps;
  readonly #conns = new Map<string, HostConn>();
  #nextHostPort = FIRST_HOST_PORT;

  constructor(deps: ConnectionDeps) {
    this.#d = deps;
  }

  /** Connections in the table. */
  get size(): number {
    return this.#conns.size;
  }

  /** Rx backlog room came back: host sockets blocked on it may be read again. */
  updateWatches(): void {
    for (const c of this.#conns.values()) this.#updateWatch(c);
  }

  /** Ends every connection without telling the guest (its driver is gone or told otherwise). */
  closeAll(): void {
    for (const c of [...this.#conns.values()]) this.#close(c, false);
  }

  /** A valid packet from the guest to CID 2. */
  fromGuest(hdr: VirtioVsockHdr, data: Uint8Array | undefined): void {
    const c = this.#conns.get(connKey(hdr.src_port, VMADDR_CID_HOST, hdr.dst_port));
    if (c === undefined) {
      if (hdr.op === VIRTIO_VSOCK_OP_REQUEST) this.#connectToHost(hdr);
      else this.#d.replyRst(hdr, 'unknownConnection');
      return;
    }
    if (hdr.op === VIRTIO_VSOCK_OP_RST) {
      this.#drop(c);
      return;
    }
    takeGuestCredit(c, hdr);
    switch (hdr.op) {
      case VIRTIO_VSOCK_OP_REQUEST:
        // A second REQUEST for a live flow: the guest lost track of it.
        this.#abort(c, 'protocol');
        return;
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (c.state !== 'connecting') this.#abort(c, 'protocol');
        else this.#established(c);
        return;
      case VIRTIO_VSOCK_OP_RW:
        if (c.state === 'connecting') this.#abort(c, 'protocol');
        else this.#dataFromGuest(c, data);
        return;
      case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        this.#sendCredit(c);
        break;
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        this.#guestShutdown(c, hdr.flags & VIRTIO_VSOCK_SHUTDOWN_MASK);
        return;
    }
    this.#creditChanged(c);
  }

  /** A host client asked for guest port `port`: send REQUEST; the guest's answer decides. */
  connectFromHost(fd: number, port: number, early: Uint8Array): void {
    const ctx = this.#d.ctx();
    if (ctx === undefined || this.#d.atConnectionLimit()) {
      this.#d.counters.handshakeErrors++;
      this.#d.host?.close(fd);
      return;
    }
    const hostPort = this.#allocHostPort(port);
    const c = this.#newConn(port, hostPort, fd, 'host');
    this.#d.counters.hostInitiated++;
    if (early.byteLength > 0) c.early = early;
    this.#sendControl(c, VIRTIO_VSOCK_OP_REQUEST, 0);
    c.timer = ctx.reactor.setTimer(this.#d.timeoutMs, () => {
      if (c.state === 'connecting') this.#abort(c, 'timeout');
    });
    // Watch for the client hanging up while the guest decides.
    c.watch = ctx.reactor.watch(c.fd, (ready) => this.#hostReady(c, ready));
    c.watch.setReadable(false);
    this.#d.flushRx();
  }

  // ---- opening ------------------------------------------------------------------------------

  #connectToHost(hdr: VirtioVsockHdr): void {
    const { host, udsPath } = this.#d;
    if (host === undefined || udsPath === undefined) {
      this.#d.replyRst(hdr, 'noListener');
      return;
    }
    if (this.#d.atConnectionLimit()) {
      this.#d.replyRst(hdr, 'tooManyConnections');
      return;
    }
    let fd: number;
    try {
      fd = host.connect(hostPortPath(udsPath, hdr.dst_port));
    } catch (e: unknown) {
      this.#d.ctx()?.log.debug(`vsock ${this.#d.guestCid}: port ${hdr.dst_port}: ${errorText(e)}`);
      this.#d.replyRst(hdr, 'noListener');
      return;
    }
    const c = this.#newConn(hdr.src_port, hdr.dst_port, fd, 'guest');
    c.peerBufAlloc = hdr.buf_alloc;
    c.peerFwdCnt = hdr.fwd_cnt;
    this.#d.counters.guestInitiated++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_RESPONSE, 0);
    this.#updateWatch(c);
  }

  #newConn(guestPort: number, hostPort: number, fd: number, initiator: HostConn['initiator']): HostConn {
    const c = newHostConn(guestPort, hostPort, fd, initiator);
    this.#conns.set(c.key, c);
    this.#d.counters.total++;
    return c;
  }

  #allocHostPort(guestPort: number): number {
    for (;;) {
      const p = this.#nextHostPort;
      this.#nextHostPort = p >= 0xffff_fffe ? FIRST_HOST_PORT : p + 1;
      if (!this.#conns.has(connKey(guestPort, VMADDR_CID_HOST, p))) return p;
    }
  }

  /** The guest accepted a host-initiated connection: tell the host client, start the stream. */
  #established(c: HostConn): void {
    c.state = 'established';
    c.timer?.cancel();
    c.timer = undefined;
    c.prefix = okLine(c.hostPort);
    if (c.early !== undefined) {
      const early = c.early;
      c.early = undefined;
      this.#queueData(c, early);
    }
    this.#flushToHost(c);
  }

  // ---- guest → host -------------------------------------------------------------------------

  #dataFromGuest(c: HostConn, data: Uint8Array | undefined): void {
    const len = data?.byteLength ?? 0;
    if (data === undefined || len === 0) {
      this.#creditChanged(c);
      return;
    }
    if (c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_SEND) {
      this.#abort(c, 'protocol');
      return;
    }
    if (beyondOurCredit(c, len, this.#d.bufAlloc)) {
      this.#d.ctx()?.log.debug(`vsock ${this.#d.guestCid}: port ${c.guestPort}: guest sent ${len} bytes beyond its credit`);
      this.#abort(c, 'creditViolation');
      return;
    }
    c.rxCnt = u32(c.rxCnt + len);
    c.toHost.push(data);
    c.toHostBytes += len;
    this.#flushToHost(c);
  }

  #guestShutdown(c: HostConn, flags: number): void {
    c.guestShut |= flags;
    if (c.state === 'connecting') {
      this.#abort(c, 'protocol');
      return;
    }
    if (c.guestShut === VIRTIO_VSOCK_SHUTDOWN_MASK) {
      // The guest closed: answer with RST once what it sent reached the host (clean disconnect).
      c.state = 'closing';
      c.timer?.cancel();
      c.timer = this.#d.ctx()?.reactor.setTimer(this.#d.timeoutMs, () => this.#abort(c, 'timeout'));
    }
    this.#flushToHost(c);
  }

  /** Writes buffered guest data to the host socket; then shutdown, close or credit as due. */
  #flushToHost(c: HostConn): void {
    const host = this.#d.host;
    if (this.#conns.get(c.key) !== c || host === undefined) return;
    try {
      if (c.prefix !== undefined) {
        const n = host.write(c.fd, c.prefix);
        if (n !== null && n > 0) c.prefix = n >= c.prefix.byteLength ? undefined : c.prefix.subarray(n);
      }
      while (c.prefix === undefined && c.toHost.length > 0) {
        // Safe: the loop condition says the array is not empty.
        const chunk = c.toHost[0]!;
        const n = host.write(c.fd, chunk);
        if (n === null || n === 0) break;
        c.fwdCnt = u32(c.fwdCnt + n);
        c.toHostBytes -= n;
        this.#d.counters.guestToHost += n;
        if (n >= chunk.byteLength) c.toHost.shift();
        else c.toHost[0] = chunk.subarray(n);
      }
    } catch (e: unknown) {
      this.#hostFailed(c, e);
      return;
    }
    const drained = c.prefix === undefined && c.toHostBytes === 0;
    if (drained && c.state === 'closing') {
      this.#close(c, true);
      return;
    }
    if (drained && c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_SEND && !c.hostWriteShut) {
      c.hostWriteShut = true;
      try {
        host.shutdownWrite(c.fd);
      } catch (e: unknown) {
        this.#hostFailed(c, e);
        return;
      }
      if (c.hostEof) {
        this.#close(c, true);
        return;
      }
    }
    this.#maybeCreditUpdate(c);
    this.#updateWatch(c);
  }

  // ---- credit -------------------------------------------------------------------------------

  #maybeCreditUpdate(c: HostConn): void {
    if (creditUpdateDue(c, this.#d.bufAlloc)) this.#sendCredit(c);
  }

  #sendCredit(c: HostConn): void {
    this.#d.counters.creditUpdatesSent++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
  }

  /** The guest's credit may have changed: resume reading the host socket if it can. */
  #creditChanged(c: HostConn): void {
    this.#updateWatch(c);
  }

  #creditStall(c: HostConn): void {
    if (c.creditStalled) return;
    c.creditStalled = true;
    this.#d.counters.creditStalls++;
    this.#d.counters.creditRequestsSent++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
  }

  // ---- host socket --------------------------------------------------------------------------

  /** Watches the host socket for exactly what the connection can do now. */
  #updateWatch(c: HostConn): void {
    const ctx = this.#d.ctx();
    if (this.#conns.get(c.key) !== c || ctx === undefined) return;
    const wantWrite = c.prefix !== undefined || c.toHostBytes > 0;
    let wantRead = readRoom(c, this.#d.bufAlloc, this.#d.backlog) > 0;
    if (!wantRead && outOfGuestCredit(c)) this.#creditStall(c);
    // A connection that waits for the guest still notices a host client that hangs up.
    if (c.state === 'connecting') wantRead = false;
    if (!wantRead && !wantWrite && c.state !== 'connecting') {
      // Nothing to do until the guest acts; a level-triggered hang-up would spin the loop.
      c.watch?.close();
      c.watch = undefined;
      return;
    }
    if (c.watch === undefined) c.watch = ctx.reactor.watch(c.fd, (ready) => this.#hostReady(c, ready));
    c.watch.setReadable(wantRead);
    c.watch.setWritable(wantWrite);
  }

  #hostReady(c: HostConn, ready: { readable: boolean; writable: boolean; hangup: boolean }): void {
    if (this.#conns.get(c.key) !== c) return;
    if (ready.writable) this.#flushToHost(c);
    if (this.#conns.get(c.key) !== c) return;
    if (ready.readable) this.#readFromHost(c);
    else if (ready.hangup && !ready.writable) {
      // Gone without a readable EOF we could act on: both directions are over.
      if (c.state === 'connecting') this.#close(c, true, 'hostError');
      else if (c.hostEof && c.hostWriteShut) this.#close(c, true);
      else this.#abort(c, 'hostError');
    }
  }

  // ---- host → guest -------------------------------------------------------------------------

  #readFromHost(c: HostConn): void {
    const room = readRoom(c, this.#d.bufAlloc, this.#d.backlog);
    const host = this.#d.host;
    if (room === 0 || host === undefined) {
      this.#updateWatch(c);
      return;
    }
    const buf = new Uint8Array(room);
    let n: number | null;
    try {
      n = host.read(c.fd, buf);
    } catch (e: unknown) {
      this.#hostFailed(c, e);
      return;
    }
    if (n === null) return;
    if (n === 0) this.#hostEnded(c);
    else {
      this.#d.counters.hostToGuest += n;
      this.#queueData(c, buf.subarray(0, n));
    }
    this.#updateWatch(c);
    this.#d.flushRx();
  }

  /** Queues host bytes for the guest as one RW packet (split to rx buffer sizes on delivery). */
  #queueData(c: HostConn, data: Uint8Array): void {
    queuedForGuest(c, data.byteLength);
    this.#d.enqueue({ hdr: this.#hdrFor(c, VIRTIO_VSOCK_OP_RW, 0, data.byteLength), data, conn: c });
  }

  #hdrFor(c: HostConn, op: number, flags: number, len: number): VirtioVsockHdr {
    return packetHeader(c, this.#d.guestCid, this.#d.bufAlloc, op, flags, len);
  }

  #sendControl(c: HostConn, op: number, flags: number): void {
    this.#d.enqueue({ hdr: this.#hdrFor(c, op, flags, 0), data: undefined, conn: c });
  }

  // ---- ending -------------------------------------------------------------------------------

  /** The host will send no more: tell the guest; close when the other direction is over too. */
  #hostEnded(c: HostConn): void {
    c.hostEof = true;
    this.#sendControl(c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_F_SEND);
    if (c.hostWriteShut) this.#close(c, true);
  }

  #hostFailed(c: HostConn, e: unknown): void {
    this.#d.ctx()?.log.debug(`vsock ${this.#d.guestCid}: port ${c.guestPort}: host socket failed: ${errorText(e)}`);
    this.#abort(c, 'hostError');
  }

  /** Ends a connection with an RST to the guest, counted under `reason`. */
  #abort(c: HostConn, reason: VsockResetReason): void {
    this.#close(c, true, reason);
  }

  /** Ends a connection the guest reset: no RST back. */
  #drop(c: HostConn): void {
    this.#close(c, false);
  }

  #close(c: HostConn, rst: boolean, reason?: VsockResetReason): void {
    if (this.#conns.get(c.key) !== c) return;
    if (rst) {
      if (reason !== undefined) this.#d.resets[reason]++;
      this.#sendControl(c, VIRTIO_VSOCK_OP_RST, 0);
    }
    this.#conns.delete(c.key);
    c.watch?.close();
    c.watch = undefined;
    c.timer?.cancel();
    c.timer = undefined;
    try {
      this.#d.host?.close(c.fd);
    } catch {
      // Closing is best effort: the fd is forgotten either way.
    }
  }
}
