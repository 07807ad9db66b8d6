// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio socket device (VIRTIO 1.3 §5.10), with a hybrid-vsock host side (`host.ts`) and
 * in-process forwarding to the other guests of its group (`fabric.ts`).
 *
 * Owns: the three queues (rx 0, tx 1, event 2: a standalone back-end serves all three, even though
 * QEMU keeps the event queue to itself), the config space (`guest_cid`), validating every packet the
 * guest transmits, the table of connections to host sockets and their credit-based flow control
 * (§5.10.6.3), the bounded backlog of packets waiting for rx buffers, and the event queue's
 * TRANSPORT_RESET. Does not own: socket calls (injected `UnixStreamOps`), guest-to-guest routing
 * decisions (`fabric.ts`), rings (`queue/`), transports.
 *
 * Validation of a tx packet, in order (each failure: the chain is returned, the packet is counted in
 * `malformed`, and the guest gets an RST for the flow, unless the packet was an RST itself):
 * | check | reason |
 * |---|---|
 * | >= 44 readable bytes | `shortHeader` (dropped without RST: there is no flow to answer) |
 * | `len` <= readable bytes after the header | `badLength` (§5.10.6: len is "the size of the payload") |
 * | `len` <= 64 KiB | `tooLong` (Linux's largest packet; never allocate by a guest-claimed size) |
 * | `src_cid` == guest_cid | `badSrcCid` (§5.10.6.4.1: "guest_cid ... MUST be used as the source CID") |
 * | `type` == STREAM, and stream allowed by the features | `badType` (§5.10.6.4.2: "A VIRTIO_VSOCK_OP_RST reply MUST be sent if a packet is received with an unknown type value") |
 * | `op` in 1..7 | `badOp` |
 * | `dst_cid` == 2, or a group member both allow-lists admit | RST `noRoute` / `notAllowed` |
 *
 * Flow control with host sockets (§5.10.6.3, `peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)`):
 * - Guest → host: the device advertises `buf_alloc` = `connBufferBytes` and `fwd_cnt` = bytes
 *   written to the host socket. Bytes the host socket cannot take yet wait in the connection's
 *   buffer, which the guest's credit bounds; a guest sending beyond it is reset
 *   (`creditViolation`). When the guest's view of our free space falls below half of `buf_alloc`
 *   and we have forwarded more, a CREDIT_UPDATE goes out (a CREDIT_REQUEST is answered at once).
 * - Host → guest: a host socket is read only while the guest has free credit for the connection
 *   ("MUST only be transmitted when the peer has sufficient free buffer space"), at most 64 KiB at a
 *   time and at most `connBufferBytes` queued per connection, and only while the rx backlog has
 *   room. With no credit the device stops reading (the host writer blocks: back-pressure), counts a
 *   credit stall and sends one CREDIT_REQUEST; any packet carrying new credit resumes reading.
 * - The tx queue is processed even when the rx queue is full (§5.10.6.1), as long as the backlog
 *   has room for the replies; then tx processing pauses until the guest gives rx buffers back.
 *
 * Disconnects: guest SHUTDOWN flags accumulate (§5.10.6.4 "permanent once sent"); SEND shuts the host
 * socket's write side once its buffer drained; both flags (the guest closed) make the device answer
 * with RST and close the host socket, the spec's clean disconnect. Host EOF sends SHUTDOWN(SEND) to
 * the guest; when both directions are finished the device sends RST and closes. A host socket error
 * resets the connection.
 */
import type { DeviceContext, HostTimer, HostWatch, VirtioDevice } from '../../device/contract.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask, hasFeature } from '../../spec/virtio.js';
import { VsockError } from './errors.js';
import { VsockFabric, type FabricMember } from './fabric.js';
import { hostPortPath, HANDSHAKE_MAX_LINE, okLine, parseHandshake, type UnixStreamOps } from './host.js';
import { emptyMalformedCounts, emptyResetCounts, type VsockMalformedCounts, type VsockMetrics, type VsockResetReason } from './metrics.js';
import {
  peerFree,
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_EVENT_SIZE,
  VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE,
  VIRTIO_VSOCK_SHUTDOWN_F_SEND,
  VIRTIO_VSOCK_SHUTDOWN_MASK,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
  VSOCK_DEVICE_ID,
  VSOCK_EVENT_QUEUE,
  VSOCK_MAX_GUEST_CID,
  VSOCK_MIN_GUEST_CID,
  VSOCK_QUEUE_MAX_SIZE,
  VSOCK_RX_QUEUE,
  VSOCK_TX_QUEUE,
  virtioVsockHdr,
  type VirtioVsockHdr,
} from './spec.js';

/** Largest payload accepted in one tx packet: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
export const VSOCK_MAX_PKT_PAYLOAD = 64 * 1024;
/** Largest single read from a host socket. */
const HOST_READ_CHUNK = 64 * 1024;
/** Backlog slots kept for the device's own replies, which forwarded packets cannot take. */
const REPLY_RESERVE = 64;
/** Connections accepted on `<uds>` still waiting for their CONNECT line, at most. */
const MAX_HANDSHAKES = 64;
/** First host-side port of host-initiated connections (Firecracker's convention: 2^30 and up). */
const FIRST_HOST_PORT = 0x4000_0000;

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

/** A connection between a guest port and a host Unix socket. */
interface HostConn {
  readonly key: string;
  readonly guestPort: number;
  /** The connection's port on the host side (CID 2). */
  readonly hostPort: number;
  readonly fd: number;
  readonly initiator: 'guest' | 'host';
  state: 'connecting' | 'established' | 'closing';
  watch: HostWatch | undefined;
  timer: HostTimer | undefined;
  // Guest → host.
  /** Payload bytes received from the guest (u32, wrapping). */
  rxCnt: number;
  /** Payload bytes written to the host socket: our fwd_cnt (u32, wrapping). */
  fwdCnt: number;
  /** fwd_cnt in the last packet queued for the guest. */
  lastFwdCntSent: number;
  /** Bytes for the host socket that are not stream payload (the `OK <port>\n` line). */
  prefix: Uint8Array | undefined;
  toHost: Uint8Array[];
  toHostBytes: number;
  // Host → guest.
  /** Payload bytes queued for the guest: our tx_cnt (u32, wrapping). */
  txCnt: number;
  peerBufAlloc: number;
  peerFwdCnt: number;
  /** Payload bytes of this connection in the rx backlog. */
  queued: number;
  /** Bytes the host client sent after its CONNECT line, for the guest once it accepted. */
  early: Uint8Array | undefined;
  creditStalled: boolean;
  // Shutdown.
  guestShut: number;
  hostEof: boolean;
  hostWriteShut: boolean;
}

/** A host client of `<uds>` that has not sent its CONNECT line yet. */
interface Handshake {
  fd: number;
  watch: HostWatch;
  timer: HostTimer;
  buf: Uint8Array;
  len: number;
}

/** A packet waiting for an rx buffer. */
interface Pending {
  hdr: VirtioVsockHdr;
  data: Uint8Array | undefined;
  conn: HostConn | undefined;
}

function connKey(guestPort: number, peerCid: number, peerPort: number): string {
  return `${guestPort}/${peerCid}/${peerPort}`;
}

const u32 = (n: number): number => n >>> 0;

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
  readonly #bufAlloc: number;
  readonly #maxConns: number;
  readonly #maxPendingBytes: number;
  readonly #maxPendingPackets: number;
  readonly #timeoutMs: number;
  #listenFd: number | undefined;
  #listenWatch: HostWatch | undefined;
  #ctx: DeviceContext | undefined;
  #streamAllowed = true;
  readonly #conns = new Map<string, HostConn>();
  readonly #handshakes = new Set<Handshake>();
  /** The rx backlog: a FIFO from #pendingHead on (delivered slots are cleared, then compacted). */
  #pending: Array<Pending | undefined> = [];
  #pendingHead = 0;
  #pendingBytes = 0;
  /** A tx packet that could not be handed on yet; tx processing waits for it. */
  #stalled: { hdr: VirtioVsockHdr; data: Uint8Array | undefined } | undefined;
  #pendingEvent = false;
  #nextHostPort = FIRST_HOST_PORT;
  #inTx = false;
  #inFlush = false;
  #resumeScheduled = false;
  #counters = {
    total: 0,
    hostInitiated: 0,
    guestInitiated: 0,
    guestToHost: 0,
    hostToGuest: 0,
    guestToPeer: 0,
    peerToGuest: 0,
    tx: 0,
    rx: 0,
    creditStalls: 0,
    creditUpdatesSent: 0,
    creditRequestsSent: 0,
    txStalls: 0,
    handshakeErrors: 0,
    events: 0,
  };
  #resets = emptyResetCounts();
  #malformed: VsockMalformedCounts = emptyMalformedCounts();

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
    this.#bufAlloc = checkedInt('connBufferBytes', opts.connBufferBytes ?? 256 * 1024, 4096, 64 << 20);
    this.#maxConns = checkedInt('maxConnections', opts.maxConnections ?? 1024, 1, 65536);
    this.#maxPendingBytes = checkedInt('maxPendingBytes', opts.maxPendingBytes ?? 4 << 20, VSOCK_MAX_PKT_PAYLOAD, 1 << 30);
    this.#maxPendingPackets = checkedInt('maxPendingPackets', opts.maxPendingPackets ?? 1024, 2 * REPLY_RESERVE, 1 << 20);
    this.#timeoutMs = checkedInt('timeoutMs', opts.timeoutMs ?? 10_000, 1, 3_600_000);
    this.#udsPath = opts.udsPath;
    this.#host = opts.host;
    if (this.#udsPath !== undefined) {
      if (this.#host === undefined) throw new VsockError('VSOCK_NO_HOST_SOCKETS', 'vsock: udsPath needs the unixStreams host capability');
      try {
        this.#listenFd = this.#host.listen(this.#udsPath);
      } catch (e: unknown) {
        throw new VsockError('VSOCK_LISTEN_FAILED', `vsock: cannot listen on ${this.#udsPath}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
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
      connections: { open: this.#conns.size + peer, host: this.#conns.size, peer, total: c.total, hostInitiated: c.hostInitiated, guestInitiated: c.guestInitiated },
      bytes: { guestToHost: c.guestToHost, hostToGuest: c.hostToGuest, guestToPeer: c.guestToPeer, peerToGuest: c.peerToGuest },
      packets: { tx: c.tx, rx: c.rx },
      resets: { ...this.#resets },
      malformed: { ...this.#malformed },
      creditStalls: c.creditStalls,
      creditUpdatesSent: c.creditUpdatesSent,
      creditRequestsSent: c.creditRequestsSent,
      txStalls: c.txStalls,
      pendingPackets: this.#pending.length - this.#pendingHead,
      pendingBytes: this.#pendingBytes,
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
    return this.#pendingCount() < this.#maxPendingPackets - REPLY_RESERVE && this.#pendingBytes + len <= this.#maxPendingBytes;
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
          if (this.#pendingCount() >= this.#maxPendingPackets) {
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
  #readPacket(chain: DescriptorChain): { hdr: VirtioVsockHdr; data: Uint8Array | undefined } | undefined {
    this.#counters.tx++;
    if (chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) {
      this.#malformed.shortHeader++;
      this.#ctx?.log.debug(`vsock ${this.guestCid}: tx packet of ${chain.readableLength} bytes has no header; dropped`);
      return undefined;
    }
    const r = chain.reader();
    const hdr = r.readObj(virtioVsockHdr);
    if (hdr.len > r.remaining) return this.#refuse(hdr, 'badLength');
    if (hdr.len > VSOCK_MAX_PKT_PAYLOAD) return this.#refuse(hdr, 'tooLong');
    // Only RW carries payload; other ops' bytes are ignored, never copied.
    const data = hdr.op === VIRTIO_VSOCK_OP_RW && hdr.len > 0 ? r.readBytes(hdr.len) : undefined;
    return { hdr, data };
  }

  #refuse(hdr: VirtioVsockHdr, why: keyof VsockMalformedCounts): undefined {
    this.#malformed[why]++;
    this.#ctx?.log.debug(`vsock ${this.guestCid}: malformed tx packet (${why}): op ${hdr.op} len ${hdr.len} ${hdr.src_cid}:${hdr.src_port} -> ${hdr.dst_cid}:${hdr.dst_port}`);
    this.#replyRst(hdr, 'malformed');
    return undefined;
  }

  /** Handles one valid-sized packet. Returns false when it must wait (its destination is full). */
  #handle(hdr: VirtioVsockHdr, data: Uint8Array | undefined): boolean {
    let bad: keyof VsockMalformedCounts | undefined;
    if (hdr.src_cid !== BigInt(this.guestCid)) bad = 'badSrcCid';
    else if (hdr.type !== VIRTIO_VSOCK_TYPE_STREAM || !this.#streamAllowed) bad = 'badType';
    else if (hdr.op < VIRTIO_VSOCK_OP_REQUEST || hdr.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) bad = 'badOp';
    if (bad !== undefined) {
      this.#refuse(hdr, bad);
      return true;
    }
    if (hdr.op === VIRTIO_VSOCK_OP_RST) this.#resets.fromGuest++;
    if (hdr.dst_cid === BigInt(VMADDR_CID_HOST)) {
      this.#fromGuestToHost(hdr, data);
      return true;
    }
    return this.#fromGuestToPeer(hdr, data);
  }

  // ---- guest ↔ guest ------------------------------------------------------------------------

  #fromGuestToPeer(hdr: VirtioVsockHdr, data: Uint8Array | undefined): boolean {
    const route = this.fabric.route(this, hdr.dst_cid);
    if (route.kind !== 'ok') {
      this.#replyRst(hdr, route.kind);
      return true;
    }
    const dst = route.dst;
    if (!dst.isActive) {
      if (hdr.op !== VIRTIO_VSOCK_OP_RST) this.fabric.close(hdr);
      this.#replyRst(hdr, 'noRoute');
      return true;
    }
    const open = this.fabric.isOpen(hdr);
    if (hdr.op === VIRTIO_VSOCK_OP_REQUEST) {
      if (open) {
        this.#replyRst(hdr, 'protocol');
        return true;
      }
      if (this.#conns.size + this.fabric.flowsOf(this.guestCid) >= this.#maxConns) {
        this.#replyRst(hdr, 'tooManyConnections');
        return true;
      }
    } else if (!open) {
      this.#replyRst(hdr, 'unknownConnection');
      return true;
    }
    const len = data?.byteLength ?? 0;
    if (!dst.hasRoomForPeer(len)) return false;
    if (hdr.op === VIRTIO_VSOCK_OP_REQUEST) {
      this.fabric.open(hdr);
      this.#counters.total++;
      this.#counters.guestInitiated++;
    } else if (hdr.op === VIRTIO_VSOCK_OP_RST) this.fabric.close(hdr);
    this.#counters.guestToPeer += len;
    dst.deliverFromPeer(hdr, data);
    return true;
  }

  // ---- guest ↔ host -------------------------------------------------------------------------

  #fromGuestToHost(hdr: VirtioVsockHdr, data: Uint8Array | undefined): void {
    const c = this.#conns.get(connKey(hdr.src_port, VMADDR_CID_HOST, hdr.dst_port));
    if (c === undefined) {
      if (hdr.op === VIRTIO_VSOCK_OP_REQUEST) this.#connectToHost(hdr);
      else this.#replyRst(hdr, 'unknownConnection');
      return;
    }
    if (hdr.op === VIRTIO_VSOCK_OP_RST) {
      this.#drop(c);
      return;
    }
    // "All packets associated with a stream flow MUST contain valid information in buf_alloc and fwd_cnt."
    c.peerBufAlloc = hdr.buf_alloc;
    c.peerFwdCnt = hdr.fwd_cnt;
    if (c.creditStalled && peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt) > 0) c.creditStalled = false;
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

  #connectToHost(hdr: VirtioVsockHdr): void {
    if (this.#host === undefined || this.#udsPath === undefined) {
      this.#replyRst(hdr, 'noListener');
      return;
    }
    if (this.#conns.size + this.fabric.flowsOf(this.guestCid) >= this.#maxConns) {
      this.#replyRst(hdr, 'tooManyConnections');
      return;
    }
    let fd: number;
    try {
      fd = this.#host.connect(hostPortPath(this.#udsPath, hdr.dst_port));
    } catch (e: unknown) {
      this.#ctx?.log.debug(`vsock ${this.guestCid}: port ${hdr.dst_port}: ${e instanceof Error ? e.message : String(e)}`);
      this.#replyRst(hdr, 'noListener');
      return;
    }
    const c = this.#newConn(hdr.src_port, hdr.dst_port, fd, 'guest');
    c.peerBufAlloc = hdr.buf_alloc;
    c.peerFwdCnt = hdr.fwd_cnt;
    this.#counters.guestInitiated++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_RESPONSE, 0);
    this.#updateWatch(c);
  }

  #newConn(guestPort: number, hostPort: number, fd: number, initiator: HostConn['initiator']): HostConn {
    const c: HostConn = {
      key: connKey(guestPort, VMADDR_CID_HOST, hostPort),
      guestPort,
      hostPort,
      fd,
      initiator,
      state: initiator === 'guest' ? 'established' : 'connecting',
      watch: undefined,
      timer: undefined,
      rxCnt: 0,
      fwdCnt: 0,
      lastFwdCntSent: 0,
      prefix: undefined,
      toHost: [],
      toHostBytes: 0,
      txCnt: 0,
      peerBufAlloc: 0,
      peerFwdCnt: 0,
      queued: 0,
      early: undefined,
      creditStalled: false,
      guestShut: 0,
      hostEof: false,
      hostWriteShut: false,
    };
    this.#conns.set(c.key, c);
    this.#counters.total++;
    return c;
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
    // "VIRTIO_VSOCK_OP_RW data packets MUST only be transmitted when the peer has sufficient free
    // buffer space": our space is buf_alloc minus what we hold.
    if (u32(c.rxCnt - c.fwdCnt) + len > this.#bufAlloc) {
      this.#ctx?.log.debug(`vsock ${this.guestCid}: port ${c.guestPort}: guest sent ${len} bytes beyond its credit`);
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
      c.timer = this.#ctx?.reactor.setTimer(this.#timeoutMs, () => this.#abort(c, 'timeout'));
    }
    this.#flushToHost(c);
  }

  /** Writes buffered guest data to the host socket; then shutdown, close or credit as due. */
  #flushToHost(c: HostConn): void {
    if (this.#conns.get(c.key) !== c || this.#host === undefined) return;
    try {
      if (c.prefix !== undefined) {
        const n = this.#host.write(c.fd, c.prefix);
        if (n !== null && n > 0) c.prefix = n >= c.prefix.byteLength ? undefined : c.prefix.subarray(n);
      }
      while (c.prefix === undefined && c.toHost.length > 0) {
        // Safe: the loop condition says the array is not empty.
        const chunk = c.toHost[0]!;
        const n = this.#host.write(c.fd, chunk);
        if (n === null || n === 0) break;
        c.fwdCnt = u32(c.fwdCnt + n);
        c.toHostBytes -= n;
        this.#counters.guestToHost += n;
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
        this.#host.shutdownWrite(c.fd);
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

  /** Sends a CREDIT_UPDATE when the guest's view of our free space has got low and we freed some. */
  #maybeCreditUpdate(c: HostConn): void {
    const guestView = this.#bufAlloc - u32(c.rxCnt - c.lastFwdCntSent);
    if (c.state === 'established' && c.fwdCnt !== c.lastFwdCntSent && guestView < this.#bufAlloc / 2) this.#sendCredit(c);
  }

  #sendCredit(c: HostConn): void {
    this.#counters.creditUpdatesSent++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
  }

  /** The guest's credit may have changed: resume reading the host socket if it can. */
  #creditChanged(c: HostConn): void {
    this.#updateWatch(c);
  }

  /** Bytes the device may read from the host socket for the guest now (0: do not read). */
  #readRoom(c: HostConn): number {
    if (c.state !== 'established' || c.hostEof || c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) return 0;
    if (this.#pendingCount() >= this.#maxPendingPackets - REPLY_RESERVE) return 0;
    const credit = peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt);
    return Math.max(0, Math.min(credit, HOST_READ_CHUNK, this.#bufAlloc - c.queued, this.#maxPendingBytes - this.#pendingBytes));
  }

  /** Watches the host socket for exactly what the connection can do now. */
  #updateWatch(c: HostConn): void {
    if (this.#conns.get(c.key) !== c || this.#ctx === undefined) return;
    const wantWrite = c.prefix !== undefined || c.toHostBytes > 0;
    let wantRead = this.#readRoom(c) > 0;
    if (!wantRead && c.state === 'established' && !c.hostEof && !(c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) && peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt) === 0) {
      this.#creditStall(c);
    }
    // A connection that waits for the guest still notices a host client that hangs up.
    if (c.state === 'connecting') wantRead = false;
    if (!wantRead && !wantWrite && c.state !== 'connecting') {
      // Nothing to do until the guest acts; a level-triggered hang-up would spin the loop.
      c.watch?.close();
      c.watch = undefined;
      return;
    }
    if (c.watch === undefined) c.watch = this.#ctx.reactor.watch(c.fd, (ready) => this.#hostReady(c, ready));
    c.watch.setReadable(wantRead);
    c.watch.setWritable(wantWrite);
  }

  #creditStall(c: HostConn): void {
    if (c.creditStalled) return;
    c.creditStalled = true;
    this.#counters.creditStalls++;
    this.#counters.creditRequestsSent++;
    this.#sendControl(c, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
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

  #readFromHost(c: HostConn): void {
    const room = this.#readRoom(c);
    if (room === 0 || this.#host === undefined) {
      this.#updateWatch(c);
      return;
    }
    const buf = new Uint8Array(room);
    let n: number | null;
    try {
      n = this.#host.read(c.fd, buf);
    } catch (e: unknown) {
      this.#hostFailed(c, e);
      return;
    }
    if (n === null) return;
    if (n === 0) this.#hostEnded(c);
    else {
      this.#counters.hostToGuest += n;
      this.#queueData(c, buf.subarray(0, n));
    }
    this.#updateWatch(c);
    this.#flushRx();
  }

  /** Queues host bytes for the guest as one RW packet (split to rx buffer sizes on delivery). */
  #queueData(c: HostConn, data: Uint8Array): void {
    c.txCnt = u32(c.txCnt + data.byteLength);
    c.queued += data.byteLength;
    this.#enqueue({ hdr: this.#hdrFor(c, VIRTIO_VSOCK_OP_RW, 0, data.byteLength), data, conn: c });
  }

  /** The host will send no more: tell the guest; close when the other direction is over too. */
  #hostEnded(c: HostConn): void {
    c.hostEof = true;
    this.#sendControl(c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_F_SEND);
    if (c.hostWriteShut) this.#close(c, true);
  }

  #hostFailed(c: HostConn, e: unknown): void {
    this.#ctx?.log.debug(`vsock ${this.guestCid}: port ${c.guestPort}: host socket failed: ${e instanceof Error ? e.message : String(e)}`);
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
      if (reason !== undefined) this.#resets[reason]++;
      this.#sendControl(c, VIRTIO_VSOCK_OP_RST, 0);
    }
    this.#conns.delete(c.key);
    c.watch?.close();
    c.watch = undefined;
    c.timer?.cancel();
    c.timer = undefined;
    try {
      this.#host?.close(c.fd);
    } catch {
      // Closing is best effort: the fd is forgotten either way.
    }
  }

  // ---- host-initiated connections -----------------------------------------------------------

  #acceptHost(): void {
    if (this.#host === undefined || this.#listenFd === undefined || this.#ctx === undefined) return;
    // A few per wake-up, so a flood of clients cannot monopolise the loop.
    for (let i = 0; i < 16; i++) {
      let fd: number | null;
      try {
        fd = this.#host.accept(this.#listenFd);
      } catch (e: unknown) {
        this.#ctx.log.warn(`vsock ${this.guestCid}: accept on ${this.#udsPath ?? ''} failed: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      if (fd === null) return;
      if (this.#handshakes.size >= MAX_HANDSHAKES) {
        this.#counters.handshakeErrors++;
        this.#host.close(fd);
        continue;
      }
      this.#startHandshake(fd, this.#ctx);
    }
  }

  #startHandshake(fd: number, ctx: DeviceContext): void {
    const hs: Handshake = {
      fd,
      buf: new Uint8Array(HANDSHAKE_MAX_LINE),
      len: 0,
      watch: ctx.reactor.watch(fd, () => this.#readHandshake(hs)),
      timer: ctx.reactor.setTimer(this.#timeoutMs, () => this.#endHandshake(hs, 'no CONNECT line in time')),
    };
    this.#handshakes.add(hs);
  }

  #readHandshake(hs: Handshake): void {
    if (!this.#handshakes.has(hs) || this.#host === undefined) return;
    let n: number | null;
    try {
      n = this.#host.read(hs.fd, hs.buf.subarray(hs.len));
    } catch (e: unknown) {
      this.#endHandshake(hs, e instanceof Error ? e.message : String(e));
      return;
    }
    if (n === null) return;
    if (n === 0) {
      this.#endHandshake(hs, 'closed before CONNECT');
      return;
    }
    hs.len += n;
    const p = parseHandshake(hs.buf.subarray(0, hs.len));
    if (p.kind === 'incomplete') return;
    if (p.kind === 'invalid') {
      this.#endHandshake(hs, p.reason);
      return;
    }
    this.#handshakes.delete(hs);
    hs.watch.close();
    hs.timer.cancel();
    this.#connectGuest(hs.fd, p.port, p.rest);
  }

  #endHandshake(hs: Handshake, why: string): void {
    if (!this.#handshakes.delete(hs)) return;
    this.#counters.handshakeErrors++;
    this.#ctx?.log.debug(`vsock ${this.guestCid}: host client dropped: ${why}`);
    hs.watch.close();
    hs.timer.cancel();
    this.#host?.close(hs.fd);
  }

  /** A host client asked for guest port `port`: send REQUEST; the guest's answer decides. */
  #connectGuest(fd: number, port: number, early: Uint8Array): void {
    const ctx = this.#ctx;
    if (ctx === undefined || this.#conns.size + this.fabric.flowsOf(this.guestCid) >= this.#maxConns) {
      this.#counters.handshakeErrors++;
      this.#host?.close(fd);
      return;
    }
    const hostPort = this.#allocHostPort(port);
    const c = this.#newConn(port, hostPort, fd, 'host');
    this.#counters.hostInitiated++;
    if (early.byteLength > 0) c.early = early;
    this.#sendControl(c, VIRTIO_VSOCK_OP_REQUEST, 0);
    c.timer = ctx.reactor.setTimer(this.#timeoutMs, () => {
      if (c.state === 'connecting') this.#abort(c, 'timeout');
    });
    // Watch for the client hanging up while the guest decides.
    c.watch = ctx.reactor.watch(c.fd, (ready) => this.#hostReady(c, ready));
    c.watch.setReadable(false);
    this.#flushRx();
  }

  #allocHostPort(guestPort: number): number {
    for (;;) {
      const p = this.#nextHostPort;
      this.#nextHostPort = p >= 0xffff_fffe ? FIRST_HOST_PORT : p + 1;
      if (!this.#conns.has(connKey(guestPort, VMADDR_CID_HOST, p))) return p;
    }
  }

  // ---- rx: packets for the guest ------------------------------------------------------------

  #hdrFor(c: HostConn, op: number, flags: number, len: number): VirtioVsockHdr {
    // Every packet carries our current credit; the guest's view of it is what we last sent.
    c.lastFwdCntSent = c.fwdCnt;
    return {
      src_cid: BigInt(VMADDR_CID_HOST),
      dst_cid: BigInt(this.guestCid),
      src_port: c.hostPort,
      dst_port: c.guestPort,
      len,
      type: VIRTIO_VSOCK_TYPE_STREAM,
      op,
      flags,
      buf_alloc: this.#bufAlloc,
      fwd_cnt: c.fwdCnt,
    };
  }

  #sendControl(c: HostConn, op: number, flags: number): void {
    this.#enqueue({ hdr: this.#hdrFor(c, op, flags, 0), data: undefined, conn: c });
  }

  /** RST for the flow of a packet the device refuses (never in answer to an RST). */
  #replyRst(hdr: VirtioVsockHdr, reason: VsockResetReason): void {
    if (hdr.op === VIRTIO_VSOCK_OP_RST) return;
    this.#resets[reason]++;
    this.#enqueue({
      hdr: { src_cid: hdr.dst_cid, dst_cid: BigInt(this.guestCid), src_port: hdr.dst_port, dst_port: hdr.src_port, len: 0, type: VIRTIO_VSOCK_TYPE_STREAM, op: VIRTIO_VSOCK_OP_RST, flags: 0, buf_alloc: 0, fwd_cnt: 0 },
      data: undefined,
      conn: undefined,
    });
  }

  #pendingCount(): number {
    return this.#pending.length - this.#pendingHead;
  }

  /**
   * Adds a packet to the rx backlog. Callers check room first (replies: tx pauses when the backlog
   * is full; host reads: `#readRoom`; peers: `hasRoomForPeer`), so the caps hold except for the few
   * control packets of a teardown, which are bounded by the number of connections.
   */
  #enqueue(p: Pending): void {
    this.#pending.push(p);
    this.#pendingBytes += p.data?.byteLength ?? 0;
    // Tx processing flushes once at its end; packets born of host events and timers go out now.
    if (!this.#inTx && !this.#inFlush) this.#flushRx();
  }

  #afterRxKick(): void {
    this.#flushRx();
    // Room came back: host sockets blocked on the backlog may read again, a paused tx may go on.
    for (const c of this.#conns.values()) this.#updateWatch(c);
    this.#processTx();
  }

  /** Moves backlog packets into rx buffers while both exist. */
  #flushRx(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VSOCK_RX_QUEUE);
    if (ctx === undefined || q === undefined || this.#pendingCount() === 0 || this.#inFlush) return;
    this.#inFlush = true;
    const before = this.#pendingBytes;
    const beforeCount = this.#pendingCount();
    try {
      while (this.#pendingCount() > 0) {
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
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
    if (this.#pendingBytes < before || this.#pendingCount() < beforeCount) {
      // Space freed: paused senders of the group may go on.
      this.fabric.wake(this);
    }
  }

  /** Writes the backlog's first packet (or its first part) into `chain`; returns the used length. */
  #fill(chain: DescriptorChain): number {
    // Safe: the caller checked the backlog is not empty.
    const p = this.#pending[this.#pendingHead]!;
    const room = chain.writableLength - VIRTIO_VSOCK_HDR_SIZE;
    const len = p.data?.byteLength ?? 0;
    if (room < 0 || (len > 0 && room === 0)) {
      this.#malformed.rxBufferTooSmall++;
      return 0;
    }
    const n = Math.min(len, room);
    const w = chain.writer();
    w.writeObj(virtioVsockHdr, { ...p.hdr, len: n });
    if (n > 0 && p.data !== undefined) w.write(p.data.subarray(0, n));
    this.#counters.rx++;
    this.#pendingBytes -= n;
    if (p.conn !== undefined) p.conn.queued -= n;
    if (n < len && p.data !== undefined) p.data = p.data.subarray(n);
    else {
      this.#pending[this.#pendingHead] = undefined;
      this.#pendingHead++;
    }
    return VIRTIO_VSOCK_HDR_SIZE + n;
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
    for (const c of [...this.#conns.values()]) this.#close(c, false);
    for (const hs of [...this.#handshakes]) this.#endHandshake(hs, 'device reset');
    this.#listenWatch?.close();
    this.#listenWatch = undefined;
    this.#pending = [];
    this.#pendingHead = 0;
    this.#pendingBytes = 0;
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
