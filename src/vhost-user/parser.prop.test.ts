// SPDX-License-Identifier: Apache-2.0
/**
 * Property tests of the codec and parser (fast-check). `AVP_PROPERTY_RUNS` sets the number of cases
 * per property (default 200; `npm run test:props` uses 100000).
 *
 * - Random valid requests and replies, random chunking (as Linux delivers fds: a read ends after a
 *   message with fds) → exactly the same messages out, no fd closed.
 * - Random bytes and random fds → never a throw, only `VhostUserProtocolError` items, the buffer
 *   never above 12 + VHOST_USER_MAX_PAYLOAD bytes, every fd either owned by an emitted message or
 *   closed, exactly once.
 * - Random well-framed messages (valid or not) → one item per message: per-message errors never
 *   lose the framing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type ParseItem, VhostUserReplyParser, VhostUserRequestParser } from './parser.js';
import {
  type BackendReplyInit,
  encodeReply,
  encodeRequest,
  type FrontendRequest,
  type FrontendRequestInit,
  type FrontendRequestType,
} from './messages.js';
import { VhostUserProtocolError } from './errors.js';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_PAYLOAD } from './protocol.js';
import { frameBytes } from './testing/byte-builder.js';
import { decodedReply, decodedRequest } from './testing/samples.js';

const RUNS = Number(process.env['AVP_PROPERTY_RUNS'] ?? 200);

/* ---- arbitraries for valid messages ---- */

/** Records with an ordinary prototype, so `deepStrictEqual` compares them with decoded messages. */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const addr = fc.maxSafeNat();
const region = rec({ guestAddr: addr, size: addr, userAddr: addr, mmapOffset: addr });
const state = rec({ index: u32, num: u32 });
const vringFd = rec({ index: fc.integer({ min: 0, max: 0xff }), noFd: fc.boolean() });
const config = rec({ offset: u32, flags: u32, payload: fc.uint8Array({ maxLength: 256 }) });
const inflight = rec({ mmapSize: addr, mmapOffset: addr, numQueues: u16, queueSize: u16 });

type BodyOf<T extends FrontendRequestType> = Extract<FrontendRequest, { type: T }>['body'];
/** A request body and how many fds it needs. */
interface Draft<B> {
  readonly body: B;
  readonly fds: number;
}

const plain = <B>(body: fc.Arbitrary<B>, fds = 0): fc.Arbitrary<Draft<B>> => body.map((b) => ({ body: b, fds }));
const empty = (fds = 0): fc.Arbitrary<Draft<null>> => fc.constant({ body: null, fds });
const withVringFd = vringFd.map((b) => ({ body: b, fds: b.noFd ? 0 : 1 }));

/** One generator per request type; the mapped type makes the compiler insist on all of them. */
const DRAFTS: { readonly [T in FrontendRequestType]: fc.Arbitrary<Draft<BodyOf<T>>> } = {
  GET_FEATURES: empty(),
  SET_FEATURES: plain(u64),
  SET_OWNER: empty(),
  RESET_OWNER: empty(),
  SET_MEM_TABLE: fc.array(region, { minLength: 1, maxLength: 8 }).map((regions) => ({ body: { regions }, fds: regions.length })),
  SET_LOG_BASE: fc.tuple(rec({ mmapSize: addr, mmapOffset: addr }), fc.integer({ min: 0, max: 1 })).map(([body, fds]) => ({ body, fds })),
  SET_LOG_FD: empty(1),
  SET_VRING_NUM: plain(state),
  SET_VRING_ADDR: plain(rec({ index: u32, flags: u32, desc: addr, used: addr, avail: addr, log: addr })),
  SET_VRING_BASE: plain(state),
  GET_VRING_BASE: plain(state),
  SET_VRING_KICK: withVringFd,
  SET_VRING_CALL: withVringFd,
  SET_VRING_ERR: withVringFd,
  GET_PROTOCOL_FEATURES: empty(),
  SET_PROTOCOL_FEATURES: plain(u64),
  GET_QUEUE_NUM: empty(),
  SET_VRING_ENABLE: plain(state),
  SEND_RARP: plain(fc.uint8Array({ minLength: 6, maxLength: 6 }).map((mac) => ({ mac }))),
  NET_SET_MTU: plain(u64),
  SET_BACKEND_REQ_FD: empty(1),
  GET_CONFIG: plain(config),
  SET_CONFIG: plain(config),
  RESET_DEVICE: empty(),
  GET_MAX_MEM_SLOTS: empty(),
  ADD_MEM_REG: plain(region, 1),
  REM_MEM_REG: plain(region),
  SET_STATUS: plain(u64),
  GET_STATUS: empty(),
  GET_INFLIGHT_FD: plain(inflight),
  SET_INFLIGHT_FD: plain(inflight, 1),
  CREATE_CRYPTO_SESSION: plain(fc.uint8Array({ minLength: 8, maxLength: 2048 })),
  CLOSE_CRYPTO_SESSION: plain(u64),
  GPU_SET_SOCKET: empty(1),
};

interface AnyDraft {
  readonly type: FrontendRequestType;
  readonly body: unknown;
  readonly fds: number;
  readonly needReply: boolean;
}

const anyDraft: fc.Arbitrary<AnyDraft> = fc.oneof(
  // Safe cast: Object.entries loses the key type; the keys are exactly FrontendRequestType.
  ...(Object.entries(DRAFTS) as Array<[FrontendRequestType, fc.Arbitrary<Draft<unknown>>]>).map(([type, arb]) =>
    fc.tuple(arb, fc.boolean()).map(([d, needReply]) => ({ type, body: d.body, fds: d.fds, needReply })),
  ),
);

/** Turns drafts into requests with unique fd numbers. */
function toInits(drafts: readonly AnyDraft[], firstFd = 1000): FrontendRequestInit[] {
  let next = firstFd;
  return drafts.map((d) => {
    const fds = Array.from({ length: d.fds }, () => next++);
    // Safe cast: DRAFTS produced `body` and the fd count for exactly this `type`.
    return { type: d.type, body: d.body, fds, needReply: d.needReply } as FrontendRequestInit;
  });
}

/* ---- chunking ---- */

interface Chunk {
  readonly bytes: Uint8Array;
  readonly fds: number[];
}

/**
 * Splits the concatenated messages at `rawCuts` (taken modulo the length). The fds of a message go
 * with the chunk in which its header begins. With `kernelOrder`, a chunk also ends where the
 * message after one with fds begins, as a Linux read does.
 */
function chunk(messages: ReadonlyArray<{ bytes: Uint8Array; fds: readonly number[] }>, rawCuts: readonly number[], kernelOrder: boolean): Chunk[] {
  const starts: number[] = [];
  let total = 0;
  for (const m of messages) {
    starts.push(total);
    total += m.bytes.length;
  }
  if (total === 0) return [];
  const cuts = new Set(rawCuts.map((c) => c % total).filter((c) => c > 0));
  if (kernelOrder) {
    messages.forEach((m, i) => {
      const next = starts[i + 1];
      if (m.fds.length > 0 && next !== undefined && next < total) cuts.add(next);
    });
  }
  const all = new Uint8Array(total);
  messages.forEach((m, i) => all.set(m.bytes, starts[i]));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), total];
  const chunks: Chunk[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    // Safe: i + 1 < bounds.length, so both entries exist.
    const from = bounds[i] as number;
    const to = bounds[i + 1] as number;
    const fds = messages.flatMap((m, j) => {
      const s = starts[j] as number; // Safe: starts has one entry per message.
      return s >= from && s < to ? [...m.fds] : [];
    });
    chunks.push({ bytes: all.subarray(from, to), fds });
  }
  return chunks;
}

/* ---- fd bookkeeping ---- */

function checkItems<M extends { fds: readonly number[] }>(items: readonly ParseItem<M>[], owned: number[]): void {
  for (const item of items) {
    if (item.kind === 'message') owned.push(...item.message.fds);
    else assert.ok(item.error instanceof VhostUserProtocolError, `not a protocol error: ${String(item.error)}`);
  }
}

/** Every fd handed in is owned by an emitted message or closed, exactly once. */
function assertConserved(given: readonly number[], owned: readonly number[], closed: readonly number[]): void {
  const seen = [...owned, ...closed].sort((a, b) => a - b);
  assert.deepEqual(seen, [...given].sort((a, b) => a - b));
}

const CAP = VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD;

/* ---- properties ---- */

test('property: random valid requests, random chunking → the same requests out', () => {
  fc.assert(
    fc.property(fc.array(anyDraft, { maxLength: 16 }), fc.array(fc.nat(), { maxLength: 40 }), (drafts, rawCuts) => {
      const inits = toInits(drafts);
      const closed: number[] = [];
      const parser = new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) });
      const items: ParseItem<FrontendRequest>[] = [];
      for (const c of chunk(inits.map(encodeRequest), rawCuts, true)) items.push(...parser.push(c.bytes, c.fds));
      items.push(...parser.end());
      const got = items.map((i) => (i.kind === 'message' ? i.message : assert.fail(`${i.error.code}: ${i.error.message}`)));
      assert.deepEqual(got, inits.map(decodedRequest));
      assert.deepEqual(closed, []);
      assert.equal(parser.bufferedBytes, 0);
    }),
    { numRuns: RUNS },
  );
});

const anyReply: fc.Arbitrary<BackendReplyInit> = fc.oneof(
  fc.tuple(fc.constantFrom(...(['GET_FEATURES', 'GET_PROTOCOL_FEATURES', 'GET_QUEUE_NUM', 'GET_MAX_MEM_SLOTS', 'GET_STATUS', 'SET_LOG_BASE'] as const)), u64).map(
    ([type, body]) => ({ type, body, fds: [] as const }),
  ),
  state.map((body) => ({ type: 'GET_VRING_BASE' as const, body, fds: [] as const })),
  fc.option(config, { nil: null }).map((body) => ({ type: 'GET_CONFIG' as const, body, fds: [] as const })),
  inflight.map((body) => ({ type: 'GET_INFLIGHT_FD' as const, body, fds: body.mmapSize === 0 ? ([] as const) : ([0] as const) })),
  fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 8, maxLength: 2048 })).map((body) => ({ type: 'CREATE_CRYPTO_SESSION' as const, body, fds: [] as const })),
  fc.tuple(u32, u64).map(([request, body]) => ({ type: 'ACK' as const, request, body, fds: [] as const })),
);

test('property: random valid replies, random chunking → the same replies out', () => {
  fc.assert(
    fc.property(fc.array(anyReply, { maxLength: 16 }), fc.array(fc.nat(), { maxLength: 40 }), (replies, rawCuts) => {
      // An ACK for a code that has its own reply would decode as that reply: not a valid ACK.
      const valid = replies.filter((r) => r.type !== 'ACK' || ![1, 6, 11, 15, 17, 24, 26, 31, 36, 40].includes(r.request));
      let nextFd = 2000;
      const inits = valid.map((r): BackendReplyInit => (r.type === 'GET_INFLIGHT_FD' && r.fds.length === 1 ? { ...r, fds: [nextFd++] } : r));
      const parser = new VhostUserReplyParser({ closeFd: () => assert.fail('nothing to close') });
      const items = chunk(inits.map(encodeReply), rawCuts, true).flatMap((c) => parser.push(c.bytes, c.fds));
      const got = items.map((i) => (i.kind === 'message' ? i.message : assert.fail(`${i.error.code}: ${i.error.message}`)));
      assert.deepEqual(got, inits.map(decodedReply));
    }),
    { numRuns: RUNS },
  );
});

test('property: random bytes and fds → only protocol errors, bounded buffer, every fd accounted for', () => {
  const chunkArb = rec({ bytes: fc.uint8Array({ maxLength: 64 }), fds: fc.nat(3) });
  fc.assert(
    fc.property(fc.array(chunkArb, { maxLength: 24 }), (chunks) => {
      const closed: number[] = [];
      const owned: number[] = [];
      const given: number[] = [];
      const parser = new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) });
      let nextFd = 3000;
      for (const c of chunks) {
        const fds = Array.from({ length: c.fds }, () => nextFd++);
        given.push(...fds);
        checkItems(parser.push(c.bytes, fds), owned);
        assert.ok(parser.bufferedBytes <= CAP, `buffered ${parser.bufferedBytes}`);
      }
      checkItems(parser.end(), owned);
      assertConserved(given, owned, closed);
    }),
    { numRuns: RUNS },
  );
});

/** A well-framed message: version 1, honest size, anything else random (valid messages mixed in). */
const framed: fc.Arbitrary<{ bytes: Uint8Array; fds: readonly number[] }> = fc.oneof(
  fc
    .record({
      request: fc.oneof(fc.integer({ min: 0, max: 46 }), u32),
      flags: fc.oneof(fc.constantFrom(0x1, 0x5, 0x9, 0xd, 0x11), u32).map((f) => ((f & ~0x3) | 0x1) >>> 0),
      payload: fc.uint8Array({ maxLength: 300 }),
      fds: fc.nat(3),
    })
    .map((f) => ({ bytes: frameBytes(f.request, f.flags, f.payload), fds: Array.from({ length: f.fds }, () => 0) })),
  anyDraft.map((d) => encodeRequest(toInits([d], 0)[0] as FrontendRequestInit)), // Safe: one draft in, one init out.
);

test('property: well-framed messages, valid or not → exactly one item each; every fd accounted for', () => {
  fc.assert(
    fc.property(fc.array(framed, { maxLength: 16 }), fc.array(fc.nat(), { maxLength: 40 }), fc.boolean(), (frames, rawCuts, kernelOrder) => {
      let nextFd = 5000;
      const numbered = frames.map((f) => ({ bytes: f.bytes, fds: f.fds.map(() => nextFd++) }));
      const closed: number[] = [];
      const owned: number[] = [];
      const parser = new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) });
      const items: ParseItem<FrontendRequest>[] = [];
      for (const c of chunk(numbered, rawCuts, kernelOrder)) {
        items.push(...parser.push(c.bytes, c.fds));
        assert.ok(parser.bufferedBytes <= CAP);
      }
      items.push(...parser.end());
      checkItems(items, owned);
      assert.equal(items.length, frames.length);
      assert.ok(items.every((i) => i.kind === 'message' || !i.error.fatal));
      assertConserved(
        numbered.flatMap((f) => f.fds),
        owned,
        closed,
      );
    }),
    { numRuns: RUNS },
  );
});
