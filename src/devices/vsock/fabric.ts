// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock group: several vsock devices built together in one back-end thread (one per VM), which
 * forward packets between their guests in-process (vhost-device-vsock's "sibling VMs").
 *
 * Why in-process: every device of a back-end thread runs in the same event loop, so forwarding is a
 * function call that puts the packet in the peer's rx backlog, with no copy through a host socket,
 * no extra framing, and no locking. `avp run` starts all of a platform's devices in one supervisor
 * process, so all its VMs can share one group. Guests on different back-end processes cannot reach
 * each other (that would need a host-socket handshake carrying the source CID; not built).
 *
 * Rules:
 * - A packet from guest A (its `src_cid` already checked to be A's CID) to CID B is forwarded only
 *   when B is a member, A allows B and B allows A (each device's allow-list). Otherwise A gets an
 *   RST (`notAllowed`, or `noRoute` for a CID nobody has).
 * - Headers are forwarded unchanged: credit (`buf_alloc`, `fwd_cnt`) is end-to-end between the two
 *   guest drivers, as between two sockets of one kernel; the device is a wire, not an endpoint.
 * - Connections are tracked (REQUEST opens, RST closes) so that only REQUEST or packets of an open
 *   connection pass, a guest cannot hold more than `maxConnections`, and when a guest's device
 *   resets (reboot, disconnect) each peer gets an RST for every connection it had with it.
 * - Back-pressure: a packet is handed over only if the destination has room in its bounded rx
 *   backlog; otherwise the sender's tx processing pauses and resumes when the destination drains
 *   (VIRTIO 1.3 §5.10.6.1: processing stops when "additional resources" are exhausted "until the
 *   other side processes the virtqueue that it has neglected").
 *
 * Owns: membership, CID uniqueness, the allow-list decision, the connection table of guest-to-guest
 * flows, and handing a packet over under the rules above (`forward`). Does not own: packet
 * validation, the RSTs it asks for, delivery into the peer's rx queue (`model.ts`).
 */
import { VsockError } from './errors.js';
import { VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_TYPE_STREAM, type VirtioVsockHdr } from './spec.js';

/** What the group needs from a member device. */
export interface FabricMember {
  readonly guestCid: number;
  /** True when this device's allow-list admits `cid`. */
  allowsPeer(cid: number): boolean;
  /** True while the guest driver is live (the device is activated). */
  readonly isActive: boolean;
  /** True when a forwarded packet with `len` payload bytes fits in the rx backlog now. */
  hasRoomForPeer(len: number): boolean;
  /** Queues a packet from another guest for this guest. */
  deliverFromPeer(hdr: VirtioVsockHdr, data: Uint8Array | undefined): void;
  /** Another member drained its backlog: retry a paused tx queue. */
  resumeTx(): void;
}

/** An open guest-to-guest flow, between (cidA, portA) and (cidB, portB). */
interface PeerFlow {
  a: { cid: number; port: number };
  b: { cid: number; port: number };
}

export type RouteResult = { kind: 'ok'; dst: FabricMember } | { kind: 'notAllowed' } | { kind: 'noRoute' };

export type ForwardResult =
  /** Refused: the sender's guest gets an RST for the flow, counted under `reason`. */
  | { kind: 'rst'; reason: 'noRoute' | 'notAllowed' | 'protocol' | 'tooManyConnections' | 'unknownConnection' }
  /** The destination's backlog is full: the sender pauses its tx queue and retries this packet. */
  | { kind: 'wait' }
  /** Handed over; `opened` when it was a REQUEST that opened a flow. */
  | { kind: 'sent'; opened: boolean };

export class VsockFabric {
  readonly #members = new Map<number, FabricMember>();
  readonly #flows = new Map<string, PeerFlow>();

  /** @throws VsockError VSOCK_DUPLICATE_CID */
  join(m: FabricMember): void {
    const had = this.#members.get(m.guestCid);
    if (had !== undefined && had !== m) throw new VsockError('VSOCK_DUPLICATE_CID', `guest CID ${m.guestCid} is used by two vsock devices of one group`);
    this.#members.set(m.guestCid, m);
  }

  leave(m: FabricMember): void {
    if (this.#members.get(m.guestCid) === m) this.#members.delete(m.guestCid);
  }

  get size(): number {
    return this.#members.size;
  }

  /** Where a packet from `from` to `dstCid` may go. */
  route(from: FabricMember, dstCid: bigint): RouteResult {
    const cid = dstCid <= 0xffff_ffffn ? Number(dstCid) : -1;
    const dst = this.#members.get(cid);
    if (dst === undefined || dst === from) return { kind: 'noRoute' };
    if (!from.allowsPeer(cid) || !dst.allowsPeer(from.guestCid)) return { kind: 'notAllowed' };
    return { kind: 'ok', dst };
  }

  /**
   * Hands a valid packet from `from`'s guest to the peer guest it is addressed to, if the rules
   * above let it. `atLimit` says whether the sender already has as many connections as it may
   * (asked only for a REQUEST that would open a flow).
   */
  forward(from: FabricMember, hdr: VirtioVsockHdr, data: Uint8Array | undefined, atLimit: () => boolean): ForwardResult {
    const route = this.route(from, hdr.dst_cid);
    if (route.kind !== 'ok') return { kind: 'rst', reason: route.kind };
    const dst = route.dst;
    if (!dst.isActive) {
      if (hdr.op !== VIRTIO_VSOCK_OP_RST) this.close(hdr);
      return { kind: 'rst', reason: 'noRoute' };
    }
    const open = this.isOpen(hdr);
    const request = hdr.op === VIRTIO_VSOCK_OP_REQUEST;
    if (request) {
      if (open) return { kind: 'rst', reason: 'protocol' };
      if (atLimit()) return { kind: 'rst', reason: 'tooManyConnections' };
    } else if (!open) return { kind: 'rst', reason: 'unknownConnection' };
    if (!dst.hasRoomForPeer(data?.byteLength ?? 0)) return { kind: 'wait' };
    if (request) this.open(hdr);
    else if (hdr.op === VIRTIO_VSOCK_OP_RST) this.close(hdr);
    dst.deliverFromPeer(hdr, data);
    return { kind: 'sent', opened: request };
  }

  /** Key of the flow a packet belongs to, the same in both directions. */
  static flowKey(h: VirtioVsockHdr): string {
    const x = `${h.src_cid}:${h.src_port}`;
    const y = `${h.dst_cid}:${h.dst_port}`;
    return x < y ? `${x}|${y}` : `${y}|${x}`;
  }

  isOpen(h: VirtioVsockHdr): boolean {
    return this.#flows.has(VsockFabric.flowKey(h));
  }

  /** Flows `cid` takes part in. */
  flowsOf(cid: number): number {
    let n = 0;
    for (const f of this.#flows.values()) if (f.a.cid === cid || f.b.cid === cid) n++;
    return n;
  }

  /** Records a flow opened by a REQUEST (src → dst). Returns false when it was already open. */
  open(h: VirtioVsockHdr): boolean {
    const k = VsockFabric.flowKey(h);
    if (this.#flows.has(k)) return false;
    // Safe: route() accepted both CIDs as members' 32-bit CIDs before a flow is opened.
    this.#flows.set(k, { a: { cid: Number(h.src_cid), port: h.src_port }, b: { cid: Number(h.dst_cid), port: h.dst_port } });
    return true;
  }

  close(h: VirtioVsockHdr): void {
    this.#flows.delete(VsockFabric.flowKey(h));
  }

  /**
   * Forgets every flow of `m` (its guest is gone) and returns, per surviving peer, the RST headers
   * that tell it so.
   */
  memberGone(m: FabricMember): Array<{ to: FabricMember; hdr: VirtioVsockHdr }> {
    const out: Array<{ to: FabricMember; hdr: VirtioVsockHdr }> = [];
    for (const [k, f] of this.#flows) {
      const [mine, other] = f.a.cid === m.guestCid ? [f.a, f.b] : f.b.cid === m.guestCid ? [f.b, f.a] : [undefined, undefined];
      if (mine === undefined || other === undefined) continue;
      this.#flows.delete(k);
      const to = this.#members.get(other.cid);
      if (to === undefined) continue;
      out.push({
        to,
        hdr: { src_cid: BigInt(mine.cid), dst_cid: BigInt(other.cid), src_port: mine.port, dst_port: other.port, len: 0, type: VIRTIO_VSOCK_TYPE_STREAM, op: VIRTIO_VSOCK_OP_RST, flags: 0, buf_alloc: 0, fwd_cnt: 0 },
      });
    }
    return out;
  }

  /** Lets every member with a paused tx queue try again. */
  wake(except?: FabricMember): void {
    for (const m of this.#members.values()) if (m !== except) m.resumeTx();
  }
}
