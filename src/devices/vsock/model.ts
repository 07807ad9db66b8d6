// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio socket device (VIRTIO 1.3 §5.10), with a hybrid-vsock host side (`host.ts`) and
 * in-process forwarding to the other guests of its group (`fabric.ts`).
 *
 * Owns: the three queues (rx 0, tx 1, event 2: a standalone back-end serves all three, even though
 * QEMU keeps the event queue to itself), the config space (`guest_cid`), the options, validating
 * every packet the guest transmits and routing it (to the host connections or a peer guest),
 * moving the rx backlog into rx buffers, the event queue's TRANSPORT_RESET, and the metrics.
 * Does not own: host connections (`host-connections.ts`) and their credit (`connection.ts`), the
 * CONNECT handshake (`handshake.ts`), the backlog's FIFO and caps (`rx-backlog.ts`), socket calls
 * (injected `UnixStreamOps`), guest-to-guest routing (`fabric.ts`), rings (`queue/`), transports.
 *
 * Tx packets are validated as `packet.ts` describes; a valid one goes to the host connections
 * (CID 2) or through the group to a peer guest (`fabric.ts`).
 *
 * The tx queue is processed even when the rx queue is full (§5.10.6.1), as long as the backlog has
 * room for the replies; then tx processing pauses until the guest gives rx buffers back. Flow
 * control and disconnects of host connections: see `connection.ts`.
 */
import type { DeviceContext, HostWatch, VirtioDevice } from '../../device/contract.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask, hasFeature } from '../../spec/virtio.js';
import { HostConnections } from './host-connections.js';
import { VsockError } from './errors.js';
import { VsockFabric, type FabricMember } from './fabric.js';
import { HostHandshakes } from './handshake.js';
import type { UnixStreamOps } from './host.js';
import { emptyMalformedCounts, emptyResetCounts, emptyVsockCounters, type VsockMalformedCounts, type VsockMetrics, type VsockResetReason } from './metrics.js';
import { checkTxHeader, readTxPacket, rstReplyHeader, VSOCK_MAX_PKT_PAYLOAD, type TxPacket } from './packet.js';
import { REPLY_RESERVE, RxBacklog, type Pending } from './rx-backlog.js';
import {
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_EVENT_SIZE,
  VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_OP_RST,
  VMADDR_CID_HOST,
  VSOCK_DEVICE_ID,
  VSOCK_EVENT_QUEUE,
  VSOCK_MAX_GUEST_CID,
  VSOCK_MIN_GUEST_CID,
  VSOCK_QUEUE_MAX_SIZE,
  VSOCK_RX_QUEUE,
  VSOCK_TX_QUEUE,
  type VirtioVsockHdr,
} from './spec.js';
import { errorText } from '../../errors.js';

export { VSOCK_MAX_PKT_PAYLOAD } from './packet.js';

export interface VsockOptions {
  /** The guest's CID, 3..0xfffffffe (§5.10.4). */
  guestCid: number;
  /** Hybrid-vsock socket path (see host.ts); without it the guest reaches no host program. */
  udsPath?: string;
  /** Socket operations; required with `udsPath`. */
  host?: UnixStreamOps;
  /** CIDs of other guests this guest may talk to (they must allow this guest too). */
  allowPeers?: readonly number[];
  /** The group this device forwards within; default: a group of its own. */
  fabric?: VsockFabric;
  /** `buf_alloc` advertised per host connection, and the per-connection buffer each way. Default 256 KiB. */
  connBufferBytes?: number;
  /** Connections (host and peer) per guest, at most. Default 1024. */
  maxConnections?: number;
  /** Payload bytes waiting for rx buffers, at most. Default 4 MiB. */
  maxPendingBytes?: number;
  /** Packets waiting for rx buffers, at most. Default 1024. */
  maxPendingPackets?: number;
  /** How long a guest may take to answer a host-initiated REQUEST, a host client to send its CONNECT line, and a closing connection to drain. Default 10 s. */
  timeoutMs?: number;
}

export class VsockDevice implements VirtioDevice, FabricMember {
  readonly deviceId = VSOCK_DEVICE_ID;
  readonly name = 'vsock';
  readonly queueMaxSizes = [VSOCK_QUEUE_MAX_SIZE, VSOCK_QUEUE_MAX_SIZE, VSOCK_QUEUE_MAX_SIZE];
  /** STREAM, and NO_IMPLIED_STREAM as §5.10.3.2 asks ("The device SHOULD offer"). No SEQPACKET: host sockets are streams. */
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_VSOCK_F_STREAM, VIRTIO_VSOCK_F_NO_IMPLIED_STREAM);
  readonly configSize = VIRTIO_VSOCK_CONFIG_SIZE;
  readonly guestCid: number;
  readonly fabric: VsockFabric;

  readonly #udsPath: string | undefined;
  readonly #host: UnixStreamOps | undefined;
  readonly #allow: ReadonlySet<number>;
  readonly #maxConns: number;
  #listenFd: number | undefined;
  #listenWatch: HostWatch | undefined;
  #ctx: DeviceContext | undefined;
  #streamAllowed = true;
  readonly #counters = emptyVsockCounters();
  readonly #resets = emptyResetCounts();
  readonly #malformed: VsockMalformedCounts = emptyMalformedCounts();
  readonly #backlog: RxBacklog;
  readonly #hostConns: HostConnections;
  /** Clients of `<uds>` before their CONNECT line; only with `udsPath`. */
  readonly #handshakes: HostHandshakes | undefined;
  /** A tx packet that could not be handed on yet; tx processing waits for it. */
  #stalled: TxPacket | undefined;
  #pendingEvent = false;
  #inTx = false;
  #inFlush = false;
  #resumeScheduled = false;

  /** @throws VsockError VSOCK_BAD_OPTION, VSOCK_NO_HOST_SOCKETS, VSOCK_LISTEN_FAILED, VSOCK_DUPLICATE_CID */
  constructor(opts: VsockOptions) {
    const cid = opts.guestCid;
    if (!Number.isSafeInteger(cid) || cid < VSOCK_MIN_GUEST_CID || cid > VSOCK_MAX_GUEST_CID) {
      throw new VsockError('VSOCK_BAD_OPTION', `guest CID must be an integer from ${VSOCK_MIN_GUEST_CID} to ${VSOCK_MAX_GUEST_CID} (0-2 and 0xffffffff are reserved, §5.10.4), got ${cid}`);
    }
    this.guestCid = cid;
    for (const p of opts.allowPeers ?? []) {
      if (!Number.isSafeInteger(p) || p < VSOCK_MIN_GUEST_CID || p > VSOCK_MAX_GUEST_CID) throw new VsockError('VSOCK_BAD_OPTION', `allowed peer CID must be an integer from ${VSOCK_MIN_GUEST_CID} to ${VSOCK_MAX_GUEST_CID}, got ${p}`);
    }
    this.#allow = new Set(opts.allowPeers ?? []);
    const bufAlloc = checkedInt('connBufferBytes', opts.connBufferBytes ?? 256 * 1024, 4096, 64 << 20);
    this.#maxConns = checkedInt('maxConnections', opts.maxConnections ?? 1024, 1, 65536);
    const maxPendingBytes = checkedInt('maxPendingBytes', opts.maxPendingBytes ?? 4 << 20, VSOCK_MAX_PKT_PAYLOAD, 1 << 30);
    const maxPendingPackets = checkedInt('maxPendingPackets', opts.maxPendingPackets ?? 1024, 2 * REPLY_RESERVE, 1 << 20);
    const timeoutMs = checkedInt('timeoutMs', opts.timeoutMs ?? 10_000, 1, 3_600_000);
    this.#backlog = new RxBacklog(maxPendingPackets, maxPendingBytes);
    this.#udsPath = opts.udsPath;
    this.#host = opts.host;
    this.#hostConns = new HostConnections({
      guestCid: cid,
      host: this.#host,
      udsPath: this.#udsPath,
      bufAlloc,
      timeoutMs,
      backlog: this.#backlog,
      counters: this.#counters,
      resets: this.#resets,
      ctx: () => this.#ctx,
      enqueue: (p) => this.#enqueue(p),
      flushRx: () => this.#flushRx(),
      replyRst: (hdr, reason) => this.#replyRst(hdr, reason),
      atConnectionLimit: () => this.#atConnectionLimit(),
    });
    if (this.#udsPath !== undefined) {
      // Assertion (an AVP wiring bug, not user input): the composition root passes the capability.
      if (this.#host === undefined) throw new VsockError('VSOCK_NO_HOST_SOCKETS', 'vsock: udsPath needs the unixStreams host capability');
      try {
        this.#listenFd = this.#host.listen(this.#udsPath);
      } catch (e: unknown) {
        throw new VsockError('VSOCK_LISTEN_FAILED', `vsock: cannot listen on ${this.#udsPath}: ${errorText(e)}`, { cause: e });
      }
      this.#handshakes = new HostHandshakes({
        guestCid: cid,
        host: this.#host,
        udsPath: this.#udsPath,
        timeoutMs,
        counters: this.#counters,
        ctx: () => this.#ctx,
        connect: (fd, port, early) => this.#hostConns.connectFromHost(fd, port, early),
      });
    }
    this.fabric = opts.fabric ?? new VsockFabric();
    try {
      this.fabric.join(this);
    } catch (e: unknown) {
      this.dispose();
      throw e;
    }
  }

  // ---- VirtioDevice -------------------------------------------------------------------------

  readConfig(offset: number, length: number): Uint8Array {
    const cfg = new Uint8Array(VIRTIO_VSOCK_CONFIG_SIZE);
    // "The upper 32 bits of the CID are reserved and zeroed": a 32-bit CID in an le64.
    new DataView(cfg.buffer).setBigUint64(0, BigInt(this.guestCid), true);
    return cfg.slice(offset, offset + length);
  }

  /** `guest_cid` is read-only (§5.10.4); writes are ignored. */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    // §5.10.3.2: with NO_IMPLIED_STREAM negotiated, stream is allowed only if STREAM is too; with
    // neither SEQPACKET nor STREAM negotiated, "the device SHOULD act as if STREAM" was.
    this.#streamAllowed = hasFeature(ctx.features, VIRTIO_VSOCK_F_STREAM) || !hasFeature(ctx.features, VIRTIO_VSOCK_F_NO_IMPLIED_STREAM);
    if (this.#listenFd !== undefined) this.#listenWatch = ctx.reactor.watch(this.#listenFd, () => this.#acceptHost());
  }

  queueNotify(index: number): void {
    if (this.#ctx === undefined) return;
    if (index === VSOCK_TX_QUEUE) this.#processTx();
    else if (index === VSOCK_RX_QUEUE) this.#afterRxKick();
    else if (index === VSOCK_EVENT_QUEUE) this.#deliverEvent();
  }

  /** The guest driver is gone: every connection ends (host sockets closed), peers are told. */
  reset(): void {
    this.#teardown();
    this.#ctx = undefined;
  }

  /** Closes the listening socket and removes its file; the device is unusable afterwards. */
  dispose(): void {
    this.#teardown();
    this.#ctx = undefined;
    if (this.#listenFd !== undefined && this.#host !== undefined) {
      this.#host.close(this.#listenFd);
      if (this.#udsPath !== undefined) this.#host.unlink(this.#udsPath);
    }
    this.#listenFd = undefined;
    this.fabric.leave(this);
  }

  metrics(): VsockMetrics {
    let rejected = 0;
    let sent = 0;
    let suppressed = 0;
    for (let i = 0; i < 3; i++) {
      const q = this.#ctx?.queue(i);
      rejected += q?.stats.chainsRejected ?? 0;
      sent += q?.stats.notificationsSent ?? 0;
      suppressed += q?.stats.notificationsSuppressed ?? 0;
    }
    const peer = this.fabric.flowsOf(this.guestCid);
    const c = this.#counters;
    return {
      device: 'vsock',
      guestCid: this.guestCid,
      connections: { open: this.#hostConns.size + peer, host: this.#hostConns.size, peer, total: c.total, hostInitiated: c.hostInitiated, guestInitiated: c.guestInitiated },
      bytes: { guestToHost: c.guestToHost, hostToGuest: c.hostToGuest, guestToPeer: c.guestToPeer, peerToGuest: c.peerToGuest },
      packets: { tx: c.tx, rx: c.rx },
      resets: { ...this.#resets },
      malformed: { ...this.#malformed },
      creditStalls: c.creditStalls,
      creditUpdatesSent: c.creditUpdatesSent,
      creditRequestsSent: c.creditRequestsSent,
      txStalls: c.txStalls,
      pendingPackets: this.#backlog.count,
      pendingBytes: this.#backlog.bytes,
      handshakeErrors: c.handshakeErrors,
      events: c.events,
      rejectedChains: rejected,
      notifications: sent,
      suppressedNotifications: suppressed,
    };
  }

  // ---- FabricMember -------------------------------------------------------------------------

  get isActive(): boolean {
    return this.#ctx !== undefined;
  }

  allowsPeer(cid: number): boolean {
    return this.#allow.has(cid);
  }

  hasRoomForPeer(len: number): boolean {
    return this.#backlog.hasRoomFor(len);
  }

  deliverFromPeer(hdr: VirtioVsockHdr, data: Uint8Array | undefined): void {
    if (this.#ctx === undefined) return;
    this.#counters.peerToGuest += data?.byteLength ?? 0;
    this.#enqueue({ hdr, data, conn: undefined });
    this.#flushRx();
  }

  /**
   * Retries a paused tx queue on the next loop turn, not now: the caller is inside another device's
   * rx delivery, and two guests exchanging data would otherwise recurse through each other.
   */
  resumeTx(): void {
    const ctx = this.#ctx;
    if (this.#stalled === undefined || ctx === undefined || this.#resumeScheduled) return;
    this.#resumeScheduled = true;
    ctx.reactor.setTimer(0, () => {
      this.#resumeScheduled = false;
      this.#processTx();
    });
  }

  /**
   * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.6): every connection ends and the driver is told
   * through the event queue (at once if it has an event buffer, else when it adds one).
   */
  transportReset(): void {
    this.#teardown();
    this.#pendingEvent = true;
    this.#deliverEvent();
  }

  // ---- tx: packets from the guest -----------------------------------------------------------

  #processTx(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VSOCK_TX_QUEUE);
    // Re-entry (a reply flushed to a peer that resumes us) is harmless but pointless.
    if (ctx === undefined || q === undefined || this.#inTx) return;
    this.#inTx = true;
    try {
      if (this.#stalled !== undefined) {
        const s = this.#stalled;
        this.#stalled = undefined;
        if (!this.#handle(s.hdr, s.data)) {
          this.#stalled = s;
          return;
        }
      }
      let paused = false;
      do {
        q.disableNotifications();
        for (;;) {
          // Each packet may need one reply in the backlog; without room, wait for rx buffers.
          if (this.#backlog.full) {
            paused = true;
            break;
          }
          const chain = q.pop();
          if (chain === null) break;
          const pkt = this.#readPacket(chain);
          q.pushUsed(chain.head, 0);
          if (pkt !== undefined && !this.#handle(pkt.hdr, pkt.data)) {
            this.#stalled = pkt;
            this.#counters.txStalls++;
            paused = true;
            break;
          }
        }
      } while (!paused && q.enableNotifications());
      if (q.needsNotification()) ctx.notify(VSOCK_TX_QUEUE);
    } finally {
      this.#inTx = false;
      this.#flushRx();
    }
  }

  /** Copies one packet out of a tx chain; undefined when it is malformed (counted, maybe RST). */
  #readPacket(chain: DescriptorChain): TxPacket | undefined {
    this.#counters.tx++;
    const read = readTxPacket(chain);
    if (read.kind === 'shortHeader') {
      this.#malformed.shortHeader++;
      this.#ctx?.log.debug(`vsock ${this.guestCid}: tx packet of ${chain.readableLength} bytes has no header; dropped`);
      return undefined;
    }
    if (read.kind === 'malformed') return this.#refuse(read.hdr, read.why);
    return read.packet;
  }

  #refuse(hdr: VirtioVsockHdr, why: keyof VsockMalformedCounts): undefined {
    this.#malformed[why]++;
    this.#ctx?.log.debug(`vsock ${this.guestCid}: malformed tx packet (${why}): op ${hdr.op} len ${hdr.len} ${hdr.src_cid}:${hdr.src_port} -> ${hdr.dst_cid}:${hdr.dst_port}`);
    this.#replyRst(hdr, 'malformed');
    return undefined;
  }

  /** Handles one valid-sized packet. Returns false when it must wait (its destination is full). */
  #handle(hdr: VirtioVsockHdr, data: Uint8Array | undefined): boolean {
    const bad = checkTxHeader(hdr, this.guestCid, this.#streamAllowed);
    if (bad !== undefined) {
      this.#refuse(hdr, bad);
      return true;
    }
    if (hdr.op === VIRTIO_VSOCK_OP_RST) this.#resets.fromGuest++;
    if (hdr.dst_cid === BigInt(VMADDR_CID_HOST)) {
      this.#hostConns.fromGuest(hdr, data);
      return true;
    }
    return this.#fromGuestToPeer(hdr, data);
  }

  // ---- guest ↔ guest ------------------------------------------------------------------------

  #fromGuestToPeer(hdr: VirtioVsockHdr, data: Uint8Array | undefined): boolean {
    const r = this.fabric.forward(this, hdr, data, () => this.#atConnectionLimit());
    if (r.kind === 'wait') return false;
    if (r.kind === 'rst') {
      this.#replyRst(hdr, r.reason);
      return true;
    }
    if (r.opened) {
      this.#counters.total++;
      this.#counters.guestInitiated++;
    }
    this.#counters.guestToPeer += data?.byteLength ?? 0;
    return true;
  }

  /** True when the guest has as many connections (host and peer) as it may. */
  #atConnectionLimit(): boolean {
    return this.#hostConns.size + this.fabric.flowsOf(this.guestCid) >= this.#maxConns;
  }

  // ---- host-initiated connections -----------------------------------------------------------

  #acceptHost(): void {
    if (this.#listenFd === undefined) return;
    this.#handshakes?.accept(this.#listenFd);
  }

  // ---- rx: packets for the guest ------------------------------------------------------------

  /** RST for the flow of a packet the device refuses (never in answer to an RST). */
  #replyRst(hdr: VirtioVsockHdr, reason: VsockResetReason): void {
    if (hdr.op === VIRTIO_VSOCK_OP_RST) return;
    this.#resets[reason]++;
    this.#enqueue({ hdr: rstReplyHeader(hdr, this.guestCid), data: undefined, conn: undefined });
  }

  /** Adds a packet to the rx backlog (see `RxBacklog.push` for why the caps hold). */
  #enqueue(p: Pending): void {
    this.#backlog.push(p);
    // Tx processing flushes once at its end; packets born of host events and timers go out now.
    if (!this.#inTx && !this.#inFlush) this.#flushRx();
  }

  #afterRxKick(): void {
    this.#flushRx();
    // Room came back: host sockets blocked on the backlog may read again, a paused tx may go on.
    this.#hostConns.updateWatches();
    this.#processTx();
  }

  /** Moves backlog packets into rx buffers while both exist. */
  #flushRx(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VSOCK_RX_QUEUE);
    const backlog = this.#backlog;
    if (ctx === undefined || q === undefined || backlog.count === 0 || this.#inFlush) return;
    this.#inFlush = true;
    const before = backlog.bytes;
    const beforeCount = backlog.count;
    try {
      while (backlog.count > 0) {
        let chain = q.pop();
        if (chain === null) {
          // Ask for a kick when buffers come, closing the race with buffers added meanwhile.
          if (!q.enableNotifications()) break;
          chain = q.pop();
          if (chain === null) break;
        }
        q.pushUsed(chain.head, this.#fill(chain));
      }
    } finally {
      this.#inFlush = false;
    }
    if (q.needsNotification()) ctx.notify(VSOCK_RX_QUEUE);
    backlog.compact();
    if (backlog.bytes < before || backlog.count < beforeCount) {
      // Space freed: paused senders of the group may go on.
      this.fabric.wake(this);
    }
  }

  /** Writes the backlog's first packet (or its first part) into `chain`; returns the used length. */
  #fill(chain: DescriptorChain): number {
    const used = this.#backlog.fill(chain);
    if (used === 0) this.#malformed.rxBufferTooSmall++;
    else this.#counters.rx++;
    return used;
  }

  // ---- events and teardown ------------------------------------------------------------------

  #deliverEvent(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VSOCK_EVENT_QUEUE);
    if (!this.#pendingEvent || ctx === undefined || q === undefined) return;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.writableLength < VIRTIO_VSOCK_EVENT_SIZE) {
        q.pushUsed(chain.head, 0);
        continue;
      }
      const ev = new Uint8Array(VIRTIO_VSOCK_EVENT_SIZE);
      new DataView(ev.buffer).setUint32(0, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, true);
      chain.writer().write(ev);
      q.pushUsed(chain.head, VIRTIO_VSOCK_EVENT_SIZE);
      this.#pendingEvent = false;
      this.#counters.events++;
      break;
    }
    if (this.#pendingEvent) q.enableNotifications();
    if (q.needsNotification()) ctx.notify(VSOCK_EVENT_QUEUE);
  }

  /** Ends every connection without telling the guest (its driver is gone or told otherwise). */
  #teardown(): void {
    this.#hostConns.closeAll();
    this.#handshakes?.endAll('device reset');
    this.#listenWatch?.close();
    this.#listenWatch = undefined;
    this.#backlog.clear();
    this.#stalled = undefined;
    for (const { to, hdr } of this.fabric.memberGone(this)) {
      if (to instanceof VsockDevice) to.#peerReset(hdr);
    }
  }

  /** A peer's device reset: its flows with this guest end with an RST from the peer's address. */
  #peerReset(hdr: VirtioVsockHdr): void {
    if (this.#ctx === undefined) return;
    this.#resets.peerGone++;
    this.#enqueue({ hdr, data: undefined, conn: undefined });
    this.#flushRx();
  }
}

function checkedInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new VsockError('VSOCK_BAD_OPTION', `vsock ${name} must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

/** The features a driver that takes everything ends up with (tests, conformance). */
export const VSOCK_ALL_FEATURES = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_VSOCK_F_STREAM, VIRTIO_VSOCK_F_NO_IMPLIED_STREAM);
/** What QEMU 7.2 acks for vhost-user-vsock: no device-specific bit at all (Linux 6.1 knows only SEQPACKET). */
export const VSOCK_QEMU_FEATURES = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
