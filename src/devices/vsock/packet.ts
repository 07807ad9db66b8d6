// SPDX-License-Identifier: Apache-2.0
/**
 * Reading and validating the packets a guest transmits (VIRTIO 1.3 §5.10.6), as functions of a tx
 * chain and the device's settings, and the RST header the device answers a refused packet with.
 *
 * Owns: the validation rules below. Does not own: counting, logging or sending the RST
 * (`model.ts`), what a valid packet does (`model.ts`, `host-connections.ts`, `fabric.ts`).
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
 * | `dst_cid` == 2, or a group member both allow-lists admit | RST `noRoute` / `notAllowed` (`fabric.ts`) |
 */
import type { DescriptorChain } from '../../queue/chain.js';
import type { VsockMalformedCounts } from './metrics.js';
import {
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_TYPE_STREAM,
  virtioVsockHdr,
  type VirtioVsockHdr,
} from './spec.js';

/** Largest payload accepted in one tx packet: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
export const VSOCK_MAX_PKT_PAYLOAD = 64 * 1024;

/** A packet the guest transmitted; `data` only for RW with payload. */
export interface TxPacket {
  hdr: VirtioVsockHdr;
  data: Uint8Array | undefined;
}

/** Why a packet with a header is refused. */
export type TxMalformedReason = Exclude<keyof VsockMalformedCounts, 'shortHeader' | 'rxBufferTooSmall'>;

export type TxRead =
  /** Fewer readable bytes than a header: nothing to answer. */
  | { kind: 'shortHeader' }
  | { kind: 'malformed'; hdr: VirtioVsockHdr; why: TxMalformedReason }
  | { kind: 'packet'; packet: TxPacket };

/** Copies one packet out of a tx chain, checking its length fields (the first rows of the table). */
export function readTxPacket(chain: DescriptorChain): TxRead {
  if (chain.readableLength < VIRTIO_VSOCK_HDR_SIZE) return { kind: 'shortHeader' };
  const r = chain.reader();
  const hdr = r.readObj(virtioVsockHdr);
  if (hdr.len > r.remaining) return { kind: 'malformed', hdr, why: 'badLength' };
  if (hdr.len > VSOCK_MAX_PKT_PAYLOAD) return { kind: 'malformed', hdr, why: 'tooLong' };
  // Only RW carries payload; other ops' bytes are ignored, never copied.
  const data = hdr.op === VIRTIO_VSOCK_OP_RW && hdr.len > 0 ? r.readBytes(hdr.len) : undefined;
  return { kind: 'packet', packet: { hdr, data } };
}

/** The header checks (source CID, type, op); undefined when the header passes. */
export function checkTxHeader(hdr: VirtioVsockHdr, guestCid: number, streamAllowed: boolean): TxMalformedReason | undefined {
  if (hdr.src_cid !== BigInt(guestCid)) return 'badSrcCid';
  if (hdr.type !== VIRTIO_VSOCK_TYPE_STREAM || !streamAllowed) return 'badType';
  if (hdr.op < VIRTIO_VSOCK_OP_REQUEST || hdr.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) return 'badOp';
  return undefined;
}

/** The RST for the flow of `hdr`, from its destination back to the guest. */
export function rstReplyHeader(hdr: VirtioVsockHdr, guestCid: number): VirtioVsockHdr {
  return { src_cid: hdr.dst_cid, dst_cid: BigInt(guestCid), src_port: hdr.dst_port, dst_port: hdr.src_port, len: 0, type: VIRTIO_VSOCK_TYPE_STREAM, op: VIRTIO_VSOCK_OP_RST, flags: 0, buf_alloc: 0, fwd_cnt: 0 };
}
