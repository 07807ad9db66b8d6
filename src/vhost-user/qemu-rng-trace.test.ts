// SPDX-License-Identifier: Apache-2.0
/**
 * Replays the QEMU 7.2 vhost-user-rng-pci connection observed against the AVP prototype
 * (shared/reference/vhost-user-protocol.md §9.1: realize, start, stop; 22 requests, 8 replies),
 * written out byte by byte, through the request parser, and the back-end's replies through the
 * reply parser. Two receive patterns: the prototype's (header with its fds, then the payload) and
 * whole Linux reads that end after each message carrying fds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ParseItem, VhostUserReplyParser, VhostUserRequestParser } from './parser.js';
import { type BackendReply, encodeReply, type FrontendRequest } from './messages.js';
import { ByteBuilder, concatBytes, frameBytes } from './testing/byte-builder.js';

const UA = 0x7f55_0000_0000; // front-end virtual address of guest RAM (made up; QEMU's is similar)
const DESC = UA + 0xc_0000 + 0x10_0000; // queue of size 4 in the high region
const LOW = { guestAddr: 0x0, size: 0xa_0000, userAddr: UA, mmapOffset: 0x0 };
const HIGH = { guestAddr: 0xc_0000, size: 0xff4_0000, userAddr: UA + 0xc_0000, mmapOffset: 0xc_0000 };

interface WireRequest {
  readonly bytes: Uint8Array;
  readonly fds: readonly number[];
  readonly expect: FrontendRequest;
}

let nextFd = 100;
const b = (): ByteBuilder => new ByteBuilder();

/** A request without the fields the wire header and ancillary data supply. */
type Expected = FrontendRequest extends infer R ? (R extends FrontendRequest ? Omit<R, 'fds' | 'flags' | 'needReply'> : never) : never;

function req(code: number, flags: number, payload: Uint8Array, withFd: boolean, expect: Expected): WireRequest {
  const fds = withFd ? [nextFd++] : [];
  // Safe cast: completes `expect` with the header-derived fields of the same union member.
  const full = { ...expect, flags, needReply: (flags & 0x8) !== 0, fds } as FrontendRequest;
  return { bytes: frameBytes(code, flags, payload), fds, expect: full };
}

const none = new Uint8Array(0);
const u64 = (v: bigint | number): Uint8Array => b().u64(v).build();
const region = (r: typeof LOW): Uint8Array => b().u64(0).u64(r.guestAddr).u64(r.size).u64(r.userAddr).u64(r.mmapOffset).build();

const TRACE: readonly WireRequest[] = [
  // realize (at QEMU start)
  req(1, 0x1, none, false, { type: 'GET_FEATURES', body: null }),
  req(15, 0x1, none, false, { type: 'GET_PROTOCOL_FEATURES', body: null }),
  req(16, 0x1, u64(0x8009), false, { type: 'SET_PROTOCOL_FEATURES', body: 0x8009n }),
  req(17, 0x1, none, false, { type: 'GET_QUEUE_NUM', body: null }),
  req(36, 0x1, none, false, { type: 'GET_MAX_MEM_SLOTS', body: null }),
  req(3, 0x1, none, false, { type: 'SET_OWNER', body: null }),
  req(1, 0x1, none, false, { type: 'GET_FEATURES', body: null }),
  req(13, 0x1, u64(0), true, { type: 'SET_VRING_CALL', body: { index: 0, noFd: false } }),
  req(14, 0x1, u64(0), true, { type: 'SET_VRING_ERR', body: { index: 0, noFd: false } }),
  // start (when the guest driver probes)
  req(13, 0x1, u64(0), true, { type: 'SET_VRING_CALL', body: { index: 0, noFd: false } }),
  req(2, 0x1, u64(0x1_7000_0000), false, { type: 'SET_FEATURES', body: 0x1_7000_0000n }),
  req(37, 0x9, region(LOW), true, { type: 'ADD_MEM_REG', body: LOW }),
  req(37, 0x9, region(HIGH), true, { type: 'ADD_MEM_REG', body: HIGH }),
  req(8, 0x1, b().u32(0).u32(4).build(), false, { type: 'SET_VRING_NUM', body: { index: 0, num: 4 } }),
  req(10, 0x1, b().u32(0).u32(0).build(), false, { type: 'SET_VRING_BASE', body: { index: 0, num: 0 } }),
  req(9, 0x1, b().u32(0).u32(0).u64(DESC).u64(DESC + 0x80).u64(DESC + 0x40).u64(0).build(), false, {
    type: 'SET_VRING_ADDR',
    body: { index: 0, flags: 0, desc: DESC, used: DESC + 0x80, avail: DESC + 0x40, log: 0 },
  }),
  req(12, 0x1, u64(0), true, { type: 'SET_VRING_KICK', body: { index: 0, noFd: false } }),
  req(18, 0x1, b().u32(0).u32(1).build(), false, { type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 } }),
  req(13, 0x1, u64(0), true, { type: 'SET_VRING_CALL', body: { index: 0, noFd: false } }),
  // stop (guest poweroff)
  req(18, 0x1, b().u32(0).u32(0).build(), false, { type: 'SET_VRING_ENABLE', body: { index: 0, num: 0 } }),
  req(11, 0x1, b().u32(0).u32(0).build(), false, { type: 'GET_VRING_BASE', body: { index: 0, num: 0 } }),
  req(13, 0x1, u64(0), true, { type: 'SET_VRING_CALL', body: { index: 0, noFd: false } }),
];

function messagesOf<M>(items: readonly ParseItem<M>[]): M[] {
  return items.map((i) => (i.kind === 'message' ? i.message : assert.fail(`${i.error.code}: ${i.error.message}`)));
}

test('QEMU 7.2 rng trace: 22 requests', () => {
  assert.equal(TRACE.length, 22);
  assert.equal(TRACE.filter((r) => r.fds.length > 0).length, 8);
});

test('QEMU 7.2 rng trace, received like the prototype: header with fds, then payload', () => {
  const closed: number[] = [];
  const parser = new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) });
  const got: FrontendRequest[] = [];
  for (const r of TRACE) {
    got.push(...messagesOf(parser.push(r.bytes.subarray(0, 12), r.fds)));
    if (r.bytes.length > 12) got.push(...messagesOf(parser.push(r.bytes.subarray(12))));
  }
  assert.deepEqual(got, TRACE.map((r) => r.expect));
  assert.deepEqual(parser.end(), []);
  assert.deepEqual(closed, []);
});

test('QEMU 7.2 rng trace, received as whole Linux reads ending after each message with fds', () => {
  const closed: number[] = [];
  const parser = new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) });
  const got: FrontendRequest[] = [];
  let pending: Uint8Array[] = [];
  for (const r of TRACE) {
    pending.push(r.bytes);
    if (r.fds.length > 0) {
      got.push(...messagesOf(parser.push(concatBytes(pending), r.fds)));
      pending = [];
    }
  }
  got.push(...messagesOf(parser.push(concatBytes(pending))));
  assert.deepEqual(got, TRACE.map((r) => r.expect));
  assert.deepEqual(closed, []);
});

test('QEMU 7.2 rng trace: the back-end replies, as bytes and through the reply parser', () => {
  const replies: Array<[Uint8Array, BackendReply]> = [
    [frameBytes(1, 0x5, u64(0x1_7000_0000)), { type: 'GET_FEATURES', flags: 5, body: 0x1_7000_0000n, fds: [] }],
    [frameBytes(15, 0x5, u64(0x8009)), { type: 'GET_PROTOCOL_FEATURES', flags: 5, body: 0x8009n, fds: [] }],
    [frameBytes(17, 0x5, u64(1)), { type: 'GET_QUEUE_NUM', flags: 5, body: 1n, fds: [] }],
    [frameBytes(36, 0x5, u64(32)), { type: 'GET_MAX_MEM_SLOTS', flags: 5, body: 32n, fds: [] }],
    [frameBytes(1, 0x5, u64(0x1_7000_0000)), { type: 'GET_FEATURES', flags: 5, body: 0x1_7000_0000n, fds: [] }],
    [frameBytes(37, 0x5, u64(0)), { type: 'ACK', request: 37, flags: 5, body: 0n, fds: [] }],
    [frameBytes(37, 0x5, u64(0)), { type: 'ACK', request: 37, flags: 5, body: 0n, fds: [] }],
    [frameBytes(11, 0x5, b().u32(0).u32(13805).build()), { type: 'GET_VRING_BASE', flags: 5, body: { index: 0, num: 13805 }, fds: [] }],
  ];
  for (const [bytes, reply] of replies) assert.deepEqual(encodeReply(reply).bytes, bytes);
  const parser = new VhostUserReplyParser({ closeFd: () => assert.fail('no fd to close') });
  const stream = concatBytes(replies.map(([bytes]) => bytes));
  const got: BackendReply[] = [];
  for (let off = 0; off < stream.length; off += 5) got.push(...messagesOf(parser.push(stream.subarray(off, off + 5))));
  assert.deepEqual(got, replies.map(([, reply]) => reply));
});
