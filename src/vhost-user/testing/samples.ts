// SPDX-License-Identifier: Apache-2.0
/**
 * Test data: one sample of every request and reply `messages.ts` decodes, each with its wire bytes
 * written out by hand with `ByteBuilder` (request codes and flags as literal numbers from QEMU's
 * `docs/interop/vhost-user.rst`, not the constants under test). Values follow the QEMU 7.2 traces in
 * `shared/reference/vhost-user-protocol.md` §7.3 and §9 where there is one.
 *
 * Owns: the samples and `decodedRequest`/`decodedReply` (what decoding a sample must give).
 * Does not own: any codec logic. The fd numbers are fake and never opened.
 */
import type { BackendReply, BackendReplyInit, FrontendRequest, FrontendRequestInit } from '../messages.js';
import { ByteBuilder, frameBytes } from './byte-builder.js';

export interface RequestSample {
  readonly init: FrontendRequestInit;
  /** Header + payload, built by hand. */
  readonly bytes: Uint8Array;
}

export interface ReplySample {
  readonly init: BackendReplyInit;
  readonly bytes: Uint8Array;
}

const V1 = 0x1; // version 1
const V1_NEED_REPLY = 0x9; // version 1 | NEED_REPLY, as QEMU sends ADD_MEM_REG with REPLY_ACK
const V1_REPLY = 0x5; // version 1 | REPLY

const u64 = (v: bigint | number): Uint8Array => new ByteBuilder().u64(v).build();
const state = (index: number, num: number): Uint8Array => new ByteBuilder().u32(index).u32(num).build();

/** The two regions of a 256 MiB q35 guest (§7.3), from one memfd; user addresses made up. */
const UA = 0x7f12_3400_0000;
const REGION_LOW = { guestAddr: 0x0, size: 0xa_0000, userAddr: UA, mmapOffset: 0x0 };
const REGION_HIGH = { guestAddr: 0xc_0000, size: 0xff4_0000, userAddr: UA + 0xc_0000, mmapOffset: 0xc_0000 };

function regionBytes(b: ByteBuilder, r: typeof REGION_LOW): ByteBuilder {
  return b.u64(r.guestAddr).u64(r.size).u64(r.userAddr).u64(r.mmapOffset);
}

/** Queue of size 4 in the high region: desc at +0x1000, avail = desc + 0x40, used = desc + 0x80 (§7.3). */
const DESC = UA + 0xc_0000 + 0x1000;

const CONFIG_BYTES = Uint8Array.from({ length: 60 }, (_, i) => (i * 7) & 0xff);
/** A crypto session description of QEMU 8+'s size (1072 bytes); its contents are opaque to the codec. */
const SESSION_BYTES = Uint8Array.from({ length: 1072 }, (_, i) => (i * 13) & 0xff);

export const REQUEST_SAMPLES: readonly RequestSample[] = [
  { init: { type: 'GET_FEATURES', body: null, fds: [] }, bytes: frameBytes(1, V1) },
  { init: { type: 'SET_FEATURES', body: 0x1_7000_0000n, fds: [] }, bytes: frameBytes(2, V1, u64(0x1_7000_0000n)) },
  { init: { type: 'SET_OWNER', body: null, fds: [] }, bytes: frameBytes(3, V1) },
  { init: { type: 'RESET_OWNER', body: null, fds: [] }, bytes: frameBytes(4, V1) },
  {
    init: { type: 'SET_MEM_TABLE', needReply: true, body: { regions: [REGION_LOW, REGION_HIGH] }, fds: [40, 41] },
    bytes: frameBytes(5, V1_NEED_REPLY, regionBytes(regionBytes(new ByteBuilder().u32(2).u32(0), REGION_LOW), REGION_HIGH).build()),
  },
  {
    init: { type: 'SET_LOG_BASE', body: { mmapSize: 0x2000, mmapOffset: 0 }, fds: [42] },
    bytes: frameBytes(6, V1, new ByteBuilder().u64(0x2000).u64(0).build()),
  },
  { init: { type: 'SET_LOG_FD', body: null, fds: [43] }, bytes: frameBytes(7, V1) },
  { init: { type: 'SET_VRING_NUM', body: { index: 0, num: 4 }, fds: [] }, bytes: frameBytes(8, V1, state(0, 4)) },
  {
    init: { type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: DESC, used: DESC + 0x80, avail: DESC + 0x40, log: 0 }, fds: [] },
    // Wire order: index, flags, desc, used, avail, log (QEMU 7.2, 40 bytes).
    bytes: frameBytes(9, V1, new ByteBuilder().u32(0).u32(0).u64(DESC).u64(DESC + 0x80).u64(DESC + 0x40).u64(0).build()),
  },
  { init: { type: 'SET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] }, bytes: frameBytes(10, V1, state(0, 0)) },
  { init: { type: 'GET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] }, bytes: frameBytes(11, V1, state(0, 0)) },
  { init: { type: 'SET_VRING_KICK', body: { index: 0, noFd: false }, fds: [44] }, bytes: frameBytes(12, V1, u64(0)) },
  // Bit 8 set: no fd, the ring is polled.
  { init: { type: 'SET_VRING_CALL', body: { index: 1, noFd: true }, fds: [] }, bytes: frameBytes(13, V1, u64(0x101)) },
  { init: { type: 'SET_VRING_ERR', body: { index: 2, noFd: false }, fds: [45] }, bytes: frameBytes(14, V1, u64(2)) },
  { init: { type: 'GET_PROTOCOL_FEATURES', body: null, fds: [] }, bytes: frameBytes(15, V1) },
  // A high bit too, to show feature words keep all 64 bits.
  {
    init: { type: 'SET_PROTOCOL_FEATURES', body: 0x8000_0000_0000_8009n, fds: [] },
    bytes: frameBytes(16, V1, new ByteBuilder().u32(0x8009).u32(0x8000_0000).build()),
  },
  { init: { type: 'GET_QUEUE_NUM', body: null, fds: [] }, bytes: frameBytes(17, V1) },
  { init: { type: 'SET_VRING_ENABLE', body: { index: 1, num: 1 }, fds: [] }, bytes: frameBytes(18, V1, state(1, 1)) },
  {
    init: { type: 'SEND_RARP', body: { mac: Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56) }, fds: [] },
    bytes: frameBytes(19, V1, new ByteBuilder().bytes([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]).zeros(2).build()),
  },
  { init: { type: 'NET_SET_MTU', body: 1500n, fds: [] }, bytes: frameBytes(20, V1, u64(1500)) },
  { init: { type: 'SET_BACKEND_REQ_FD', needReply: true, body: null, fds: [46] }, bytes: frameBytes(21, V1_NEED_REPLY) },
  {
    init: { type: 'GET_CONFIG', body: { offset: 0, flags: 0, payload: new Uint8Array(60) }, fds: [] },
    bytes: frameBytes(24, V1, new ByteBuilder().u32(0).u32(60).u32(0).zeros(60).build()),
  },
  {
    init: { type: 'SET_CONFIG', body: { offset: 0x14, flags: 1, payload: Uint8Array.of(1, 0, 0, 0) }, fds: [] },
    bytes: frameBytes(25, V1, new ByteBuilder().u32(0x14).u32(4).u32(1).bytes([1, 0, 0, 0]).build()),
  },
  { init: { type: 'RESET_DEVICE', body: null, fds: [] }, bytes: frameBytes(34, V1) },
  { init: { type: 'GET_MAX_MEM_SLOTS', body: null, fds: [] }, bytes: frameBytes(36, V1) },
  {
    init: { type: 'ADD_MEM_REG', needReply: true, body: REGION_HIGH, fds: [47] },
    bytes: frameBytes(37, V1_NEED_REPLY, regionBytes(new ByteBuilder().u64(0), REGION_HIGH).build()),
  },
  {
    init: { type: 'REM_MEM_REG', body: REGION_LOW, fds: [] },
    bytes: frameBytes(38, V1, regionBytes(new ByteBuilder().u64(0), REGION_LOW).build()),
  },
  { init: { type: 'SET_STATUS', body: 0xfn, fds: [] }, bytes: frameBytes(39, V1, u64(0xf)) },
  { init: { type: 'GET_STATUS', body: null, fds: [] }, bytes: frameBytes(40, V1) },
  {
    init: { type: 'GET_INFLIGHT_FD', body: { mmapSize: 0, mmapOffset: 0, numQueues: 1, queueSize: 128 }, fds: [] },
    bytes: frameBytes(31, V1, new ByteBuilder().u64(0).u64(0).u16(1).u16(128).zeros(4).build()),
  },
  {
    init: { type: 'SET_INFLIGHT_FD', body: { mmapSize: 0x1_1000, mmapOffset: 0, numQueues: 1, queueSize: 128 }, fds: [48] },
    bytes: frameBytes(32, V1, new ByteBuilder().u64(0x1_1000).u64(0).u16(1).u16(128).zeros(4).build()),
  },
  { init: { type: 'CREATE_CRYPTO_SESSION', body: SESSION_BYTES, fds: [] }, bytes: frameBytes(26, V1, SESSION_BYTES) },
  { init: { type: 'CLOSE_CRYPTO_SESSION', body: 3n, fds: [] }, bytes: frameBytes(27, V1, u64(3)) },
  { init: { type: 'GPU_SET_SOCKET', body: null, fds: [49] }, bytes: frameBytes(33, V1) },
];

export const REPLY_SAMPLES: readonly ReplySample[] = [
  { init: { type: 'GET_FEATURES', body: 0x1_7000_0000n, fds: [] }, bytes: frameBytes(1, V1_REPLY, u64(0x1_7000_0000n)) },
  { init: { type: 'GET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] }, bytes: frameBytes(15, V1_REPLY, u64(0x8009)) },
  { init: { type: 'GET_QUEUE_NUM', body: 1n, fds: [] }, bytes: frameBytes(17, V1_REPLY, u64(1)) },
  { init: { type: 'GET_MAX_MEM_SLOTS', body: 32n, fds: [] }, bytes: frameBytes(36, V1_REPLY, u64(32)) },
  { init: { type: 'GET_STATUS', body: 0xfn, fds: [] }, bytes: frameBytes(40, V1_REPLY, u64(0xf)) },
  { init: { type: 'GET_VRING_BASE', body: { index: 0, num: 13805 }, fds: [] }, bytes: frameBytes(11, V1_REPLY, state(0, 13805)) },
  {
    init: { type: 'GET_CONFIG', body: { offset: 0, flags: 0, payload: CONFIG_BYTES }, fds: [] },
    bytes: frameBytes(24, V1_REPLY, new ByteBuilder().u32(0).u32(60).u32(0).bytes(CONFIG_BYTES).build()),
  },
  // The document's error form: a zero-length payload.
  { init: { type: 'GET_CONFIG', body: null, fds: [] }, bytes: frameBytes(24, V1_REPLY) },
  {
    init: { type: 'GET_INFLIGHT_FD', body: { mmapSize: 0x1_1000, mmapOffset: 0, numQueues: 1, queueSize: 128 }, fds: [49] },
    bytes: frameBytes(31, V1_REPLY, new ByteBuilder().u64(0x1_1000).u64(0).u16(1).u16(128).zeros(4).build()),
  },
  { init: { type: 'SET_LOG_BASE', body: 0n, fds: [] }, bytes: frameBytes(6, V1_REPLY, u64(0)) },
  { init: { type: 'CREATE_CRYPTO_SESSION', body: SESSION_BYTES, fds: [] }, bytes: frameBytes(26, V1_REPLY, SESSION_BYTES) },
  // The failure form: an empty payload.
  { init: { type: 'CREATE_CRYPTO_SESSION', body: new Uint8Array(0), fds: [] }, bytes: frameBytes(26, V1_REPLY) },
  // REPLY_ACK for ADD_MEM_REG (§9.1: "← ack 0").
  { init: { type: 'ACK', request: 37, body: 0n, fds: [] }, bytes: frameBytes(37, V1_REPLY, u64(0)) },
  // A failure ack for a request code nobody knows.
  { init: { type: 'ACK', request: 99, body: 1n, fds: [] }, bytes: frameBytes(99, V1_REPLY, u64(1)) },
];

/** What decoding an encoded `init` must give: the header flags filled in. */
export function decodedRequest(init: FrontendRequestInit): FrontendRequest {
  const needReply = init.needReply === true;
  // Safe cast: adds exactly the two fields FrontendRequestInit omits from the same union member.
  return { ...init, needReply, flags: needReply ? 0x9 : 0x1 } as FrontendRequest;
}

/** What decoding an encoded reply `init` must give. */
export function decodedReply(init: BackendReplyInit): BackendReply {
  // Safe cast: adds the one field BackendReplyInit omits from the same union member.
  return { ...init, flags: 0x5 } as BackendReply;
}
