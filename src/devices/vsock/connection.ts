// SPDX-License-Identifier: Apache-2.0
/**
 * One connection between a guest port and a host Unix socket (hybrid vsock, see host.ts): its
 * state and the arithmetic of its credit-based flow control each way (VIRTIO 1.3 §5.10.6.3).
 *
 * Owns: `HostConn` and the functions that read or move its counters. Does not own: the table of
 * connections, the host socket calls and the packets they cause (`host-connections.ts`).
 *
 * Flow control (`peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)`):
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
 *
 * Disconnects: guest SHUTDOWN flags accumulate (§5.10.6.4 "permanent once sent"); SEND shuts the host
 * socket's write side once its buffer drained; both flags (the guest closed) make the device answer
 * with RST and close the host socket, the spec's clean disconnect. Host EOF sends SHUTDOWN(SEND) to
 * the guest; when both directions are finished the device sends RST and closes. A host socket error
 * resets the connection.
 */
import type { HostTimer, HostWatch } from '../../device/contract.js';
import type { RxBacklog } from './rx-backlog.js';
import { peerFree, VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE, VIRTIO_VSOCK_TYPE_STREAM, VMADDR_CID_HOST, type VirtioVsockHdr } from './spec.js';

/** Largest single read from a host socket. */
const HOST_READ_CHUNK = 64 * 1024;

export /** A connection between a guest port and a host Unix socket. */
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

export function connKey(guestPort: number, peerCid: number, peerPort: number): string {
  return `${guestPort}/${peerCid}/${peerPort}`;
}

export const u32 = (n: number): number => n >>> 0;

/** A new connection: established at once when the guest asked for it, else waiting for the guest. */
export function newHostConn(guestPort: number, hostPort: number, fd: number, initiator: HostConn['initiator']): HostConn {
  return {
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
}

/**
 * Takes the guest's credit from a packet of the flow ("All packets associated with a stream flow
 * MUST contain valid information in buf_alloc and fwd_cnt"); new free credit ends a stall.
 */
export function takeGuestCredit(c: HostConn, hdr: VirtioVsockHdr): void {
  c.peerBufAlloc = hdr.buf_alloc;
  c.peerFwdCnt = hdr.fwd_cnt;
  if (c.creditStalled && peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt) > 0) c.creditStalled = false;
}

/**
 * True when `len` more bytes from the guest exceed our buffer ("VIRTIO_VSOCK_OP_RW data packets
 * MUST only be transmitted when the peer has sufficient free buffer space"): our space is
 * buf_alloc minus what we hold.
 */
export function beyondOurCredit(c: HostConn, len: number, bufAlloc: number): boolean {
  return u32(c.rxCnt - c.fwdCnt) + len > bufAlloc;
}

/** True when the guest's view of our free space has got low and we freed some: send CREDIT_UPDATE. */
export function creditUpdateDue(c: HostConn, bufAlloc: number): boolean {
  const guestView = bufAlloc - u32(c.rxCnt - c.lastFwdCntSent);
  return c.state === 'established' && c.fwdCnt !== c.lastFwdCntSent && guestView < bufAlloc / 2;
}

/** True when the connection could carry host data to the guest (whether or not it has credit). */
function mayReadHost(c: HostConn): boolean {
  return c.state === 'established' && !c.hostEof && !(c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE);
}

/** Bytes the device may read from the host socket for the guest now (0: do not read). */
export function readRoom(c: HostConn, bufAlloc: number, backlog: RxBacklog): number {
  if (!mayReadHost(c)) return 0;
  if (!backlog.hasDataSlot) return 0;
  const credit = peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt);
  return Math.max(0, Math.min(credit, HOST_READ_CHUNK, bufAlloc - c.queued, backlog.freeBytes));
}

/** True when host data could flow but the guest has no free credit at all. */
export function outOfGuestCredit(c: HostConn): boolean {
  return mayReadHost(c) && peerFree(c.peerBufAlloc, c.txCnt, c.peerFwdCnt) === 0;
}

/** Counts `n` host bytes queued for the guest (our tx_cnt, and what sits in the backlog). */
export function queuedForGuest(c: HostConn, n: number): void {
  c.txCnt = u32(c.txCnt + n);
  c.queued += n;
}

/** The header of a packet for the guest on this connection. */
export function packetHeader(c: HostConn, guestCid: number, bufAlloc: number, op: number, flags: number, len: number): VirtioVsockHdr {
  // Every packet carries our current credit; the guest's view of it is what we last sent.
  c.lastFwdCntSent = c.fwdCnt;
  return {
    src_cid: BigInt(VMADDR_CID_HOST),
    dst_cid: BigInt(guestCid),
    src_port: c.hostPort,
    dst_port: c.guestPort,
    len,
    type: VIRTIO_VSOCK_TYPE_STREAM,
    op,
    flags,
    buf_alloc: bufAlloc,
    fwd_cnt: c.fwdCnt,
  };
}
