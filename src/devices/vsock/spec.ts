// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-vsock constants and wire structs, VIRTIO 1.3 §5.10 "Socket Device".
 *
 * Owns: the device ID (§5.10.1), queue indexes (§5.10.2), feature bits (§5.10.3), the config
 * layout (§5.10.4), the packet header `struct virtio_vsock_hdr` (§5.10.6), its operation and type
 * constants, shutdown flags (§5.10.6.4), seqpacket flags (§5.10.6.5) and the event struct
 * (§5.10.6.6), with every field offset written out. Names are spelled as in the specification.
 * Does not own: any packet handling (`model.ts`).
 *
 * Every multi-byte field is little-endian (§1.4). CIDs are le64 on the wire with "the upper 32
 * bits ... reserved and zeroed"; they decode here as `bigint` so that a hostile non-zero upper
 * half is seen and refused, never silently dropped.
 */
import type { Codec } from '../../spec/codec.js';
import { VIRTIO_ID } from '../../spec/virtio.js';

export const VSOCK_DEVICE_ID = VIRTIO_ID.VSOCK;

/* Virtqueues, §5.10.2. */
export const VSOCK_RX_QUEUE = 0;
export const VSOCK_TX_QUEUE = 1;
export const VSOCK_EVENT_QUEUE = 2;
/** Largest queue the device accepts; QEMU's vhost-vsock uses 128 (VHOST_VSOCK_QUEUE_SIZE). */
export const VSOCK_QUEUE_MAX_SIZE = 256;

/* Feature bits, §5.10.3. Bit numbers, not masks. */
/** Stream socket type is supported. */
export const VIRTIO_VSOCK_F_STREAM = 0;
/** Seqpacket socket type is supported. */
export const VIRTIO_VSOCK_F_SEQPACKET = 1;
/** Stream socket type is not implied (only with STREAM negotiated is stream allowed). */
export const VIRTIO_VSOCK_F_NO_IMPLIED_STREAM = 2;

export const VSOCK_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_VSOCK_F_STREAM]: 'VSOCK_STREAM',
  [VIRTIO_VSOCK_F_SEQPACKET]: 'VSOCK_SEQPACKET',
  [VIRTIO_VSOCK_F_NO_IMPLIED_STREAM]: 'VSOCK_NO_IMPLIED_STREAM',
};

/* Well-known and reserved CIDs, §5.10.4. */
/** 0 and 1 are reserved; 2 is "the well-known CID for the host". */
export const VMADDR_CID_HOST = 2;
/** The lowest CID a guest may have. */
export const VSOCK_MIN_GUEST_CID = 3;
/** 0xffffffff is reserved (VMADDR_CID_ANY in Linux); the highest usable 32-bit CID is one less. */
export const VSOCK_MAX_GUEST_CID = 0xffff_fffe;

/** Config layout, §5.10.4: `struct virtio_vsock_config { le64 guest_cid; }`. */
export const VIRTIO_VSOCK_CONFIG_SIZE = 8;
export const VIRTIO_VSOCK_CONFIG_OFF = { guest_cid: 0 } as const;

/* Operations, §5.10.6. */
export const VIRTIO_VSOCK_OP_INVALID = 0;
export const VIRTIO_VSOCK_OP_REQUEST = 1;
export const VIRTIO_VSOCK_OP_RESPONSE = 2;
export const VIRTIO_VSOCK_OP_RST = 3;
export const VIRTIO_VSOCK_OP_SHUTDOWN = 4;
export const VIRTIO_VSOCK_OP_RW = 5;
export const VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6;
export const VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7;

export const VSOCK_OP_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_VSOCK_OP_INVALID]: 'INVALID',
  [VIRTIO_VSOCK_OP_REQUEST]: 'REQUEST',
  [VIRTIO_VSOCK_OP_RESPONSE]: 'RESPONSE',
  [VIRTIO_VSOCK_OP_RST]: 'RST',
  [VIRTIO_VSOCK_OP_SHUTDOWN]: 'SHUTDOWN',
  [VIRTIO_VSOCK_OP_RW]: 'RW',
  [VIRTIO_VSOCK_OP_CREDIT_UPDATE]: 'CREDIT_UPDATE',
  [VIRTIO_VSOCK_OP_CREDIT_REQUEST]: 'CREDIT_REQUEST',
};

/* Socket types, §5.10.6.2. */
export const VIRTIO_VSOCK_TYPE_STREAM = 1;
export const VIRTIO_VSOCK_TYPE_SEQPACKET = 2;

/*
 * Shutdown flags, §5.10.6.4. The specification's listing defines them as bit NUMBERS
 * ("VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE 0", "..._SEND 1"); the text says "bit 0 ... bit 1". These are
 * the masks of those bits, as the header's `flags` field carries them.
 */
/** The peer will not receive any more data. */
export const VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE = 1 << 0;
/** The peer will not send any more data. */
export const VIRTIO_VSOCK_SHUTDOWN_F_SEND = 1 << 1;
export const VIRTIO_VSOCK_SHUTDOWN_MASK = VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND;

/* Seqpacket flags, §5.10.6.5 (masks). */
export const VIRTIO_VSOCK_SEQ_EOM = 1 << 0;
export const VIRTIO_VSOCK_SEQ_EOR = 1 << 1;

/* Events, §5.10.6.6. */
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;
/** `struct virtio_vsock_event { le32 id; }`. */
export const VIRTIO_VSOCK_EVENT_SIZE = 4;

/** `struct virtio_vsock_hdr`, §5.10.6. */
export interface VirtioVsockHdr {
  src_cid: bigint;
  dst_cid: bigint;
  src_port: number;
  dst_port: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  buf_alloc: number;
  fwd_cnt: number;
}

/** Byte offsets of `struct virtio_vsock_hdr` (44 bytes, packed). */
export const VIRTIO_VSOCK_HDR_OFF = {
  src_cid: 0,
  dst_cid: 8,
  src_port: 16,
  dst_port: 20,
  len: 24,
  type: 28,
  op: 30,
  flags: 32,
  buf_alloc: 36,
  fwd_cnt: 40,
} as const;
export const VIRTIO_VSOCK_HDR_SIZE = 44;

export const virtioVsockHdr: Codec<VirtioVsockHdr> = {
  size: VIRTIO_VSOCK_HDR_SIZE,
  decode(v, off) {
    const O = VIRTIO_VSOCK_HDR_OFF;
    return {
      src_cid: v.getBigUint64(off + O.src_cid, true),
      dst_cid: v.getBigUint64(off + O.dst_cid, true),
      src_port: v.getUint32(off + O.src_port, true),
      dst_port: v.getUint32(off + O.dst_port, true),
      len: v.getUint32(off + O.len, true),
      type: v.getUint16(off + O.type, true),
      op: v.getUint16(off + O.op, true),
      flags: v.getUint32(off + O.flags, true),
      buf_alloc: v.getUint32(off + O.buf_alloc, true),
      fwd_cnt: v.getUint32(off + O.fwd_cnt, true),
    };
  },
  encode(h, v, off) {
    const O = VIRTIO_VSOCK_HDR_OFF;
    v.setBigUint64(off + O.src_cid, h.src_cid, true);
    v.setBigUint64(off + O.dst_cid, h.dst_cid, true);
    v.setUint32(off + O.src_port, h.src_port >>> 0, true);
    v.setUint32(off + O.dst_port, h.dst_port >>> 0, true);
    v.setUint32(off + O.len, h.len >>> 0, true);
    v.setUint16(off + O.type, h.type & 0xffff, true);
    v.setUint16(off + O.op, h.op & 0xffff, true);
    v.setUint32(off + O.flags, h.flags >>> 0, true);
    v.setUint32(off + O.buf_alloc, h.buf_alloc >>> 0, true);
    v.setUint32(off + O.fwd_cnt, h.fwd_cnt >>> 0, true);
  },
};

/** `struct virtio_vsock_config`, §5.10.4. */
export interface VirtioVsockConfig {
  guest_cid: bigint;
}

export const virtioVsockConfig: Codec<VirtioVsockConfig> = {
  size: VIRTIO_VSOCK_CONFIG_SIZE,
  decode: (v, off) => ({ guest_cid: v.getBigUint64(off + VIRTIO_VSOCK_CONFIG_OFF.guest_cid, true) }),
  encode: (c, v, off) => v.setBigUint64(off + VIRTIO_VSOCK_CONFIG_OFF.guest_cid, c.guest_cid, true),
};

/**
 * `peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)` (§5.10.6.3), in the spec's u32 arithmetic.
 * A peer whose counters claim more in flight than it allocated has no free space (0), rather than
 * the huge number the u32 subtraction would give.
 */
export function peerFree(peerBufAlloc: number, txCnt: number, peerFwdCnt: number): number {
  const inFlight = (txCnt - peerFwdCnt) >>> 0;
  return inFlight >= peerBufAlloc ? 0 : (peerBufAlloc - inFlight) >>> 0;
}
