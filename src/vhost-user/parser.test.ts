// SPDX-License-Identifier: Apache-2.0
/**
 * The streaming parser: every sample split at every byte boundary, byte by byte, concatenated;
 * which message a chunk's fds belong to; every error through the parser, with the framing kept for
 * per-message errors; every rejected fd closed exactly once.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { type ParseItem, VhostUserReplyParser, VhostUserRequestParser } from './parser.js';
import type { VhostUserProtocolErrorCode } from './errors.js';
import type { BackendReply, FrontendRequest } from './messages.js';
import { ByteBuilder, concatBytes, frameBytes } from './testing/byte-builder.js';
import { decodedReply, decodedRequest, REPLY_SAMPLES, REQUEST_SAMPLES } from './testing/samples.js';

function requestParser(): { parser: VhostUserRequestParser; closed: number[] } {
  const closed: number[] = [];
  return { parser: new VhostUserRequestParser({ closeFd: (fd) => closed.push(fd) }), closed };
}

function messages<M>(items: readonly ParseItem<M>[]): M[] {
  return items.map((item) => {
    if (item.kind === 'error') assert.fail(`unexpected error ${item.error.code}: ${item.error.message}`);
    return item.message;
  });
}

function errorCodes<M>(items: readonly ParseItem<M>[]): Array<VhostUserProtocolErrorCode | 'message'> {
  return items.map((i) => (i.kind === 'error' ? i.error.code : 'message'));
}

/** Pushes `bytes` in chunks ending at `cuts`; `fds` go with the first chunk (where the header begins). */
function pushSplit<M>(parser: { push(c: Uint8Array, f?: readonly number[]): ParseItem<M>[] }, bytes: Uint8Array, cuts: readonly number[], fds: readonly number[]): ParseItem<M>[] {
  const items: ParseItem<M>[] = [];
  let start = 0;
  for (const end of [...cuts, bytes.length]) {
    items.push(...parser.push(bytes.subarray(start, end), start === 0 ? fds : []));
    start = end;
  }
  return items;
}

const u64 = (v: bigint | number): Uint8Array => new ByteBuilder().u64(v).build();
const NUM = frameBytes(8, 0x1, new ByteBuilder().u32(0).u32(4).build()); // SET_VRING_NUM 0 4
const NUM_MSG: FrontendRequest = { type: 'SET_VRING_NUM', flags: 1, needReply: false, body: { index: 0, num: 4 }, fds: [] };
const KICK = frameBytes(12, 0x1, u64(0)); // SET_VRING_KICK idx 0, fd expected

describe('split at every byte boundary', () => {
  for (const { init, bytes } of REQUEST_SAMPLES) {
    test(`${init.type} (${bytes.length} bytes): every two-way split`, () => {
      for (let cut = 1; cut < bytes.length; cut++) {
        const { parser, closed } = requestParser();
        const items = pushSplit(parser, bytes, [cut], init.fds);
        assert.deepEqual(messages(items), [decodedRequest(init)], `cut at ${cut}`);
        assert.deepEqual(closed, []);
        assert.equal(parser.bufferedBytes, 0);
      }
    });

    test(`${init.type}: one byte at a time`, () => {
      const { parser, closed } = requestParser();
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      assert.deepEqual(messages(pushSplit(parser, bytes, cuts, init.fds)), [decodedRequest(init)]);
      assert.deepEqual(closed, []);
    });
  }

  test('three-way splits at start, middle and end of header and payload', () => {
    for (const { init, bytes } of REQUEST_SAMPLES) {
      const points = [...new Set([1, 11, 12, 13, Math.floor(bytes.length / 2), bytes.length - 1])].filter((p) => p > 0 && p < bytes.length);
      for (const a of points) {
        for (const b of points) {
          if (b <= a) continue;
          const { parser } = requestParser();
          assert.deepEqual(messages(pushSplit(parser, bytes, [a, b], init.fds)), [decodedRequest(init)], `${init.type} cut at ${a}, ${b}`);
        }
      }
    }
  });

  for (const { init, bytes } of REPLY_SAMPLES) {
    const label = init.type === 'ACK' ? `ACK(${init.request})` : init.type;
    test(`reply ${label}: every two-way split`, () => {
      for (let cut = 1; cut < bytes.length; cut++) {
        const closed: number[] = [];
        const parser = new VhostUserReplyParser({ closeFd: (fd) => closed.push(fd) });
        const items = pushSplit<BackendReply>(parser, bytes, [cut], init.fds);
        assert.deepEqual(messages(items), [decodedReply(init)], `cut at ${cut}`);
        assert.deepEqual(closed, []);
      }
    });
  }
});

describe('several messages per chunk', () => {
  test('all fd-less samples concatenated in one chunk', () => {
    const fdLess = REQUEST_SAMPLES.filter((s) => s.init.fds.length === 0);
    const { parser, closed } = requestParser();
    const items = parser.push(concatBytes(fdLess.map((s) => s.bytes)));
    assert.deepEqual(messages(items), fdLess.map((s) => decodedRequest(s.init)));
    assert.deepEqual(closed, []);
  });

  test('all samples, chunked as Linux delivers them: each read ends after the message with fds', () => {
    const { parser, closed } = requestParser();
    const items: ParseItem<FrontendRequest>[] = [];
    let pending: Uint8Array[] = [];
    for (const { init, bytes } of REQUEST_SAMPLES) {
      pending.push(bytes);
      if (init.fds.length > 0) {
        items.push(...parser.push(concatBytes(pending), init.fds));
        pending = [];
      }
    }
    items.push(...parser.push(concatBytes(pending)));
    assert.deepEqual(messages(items), REQUEST_SAMPLES.map((s) => decodedRequest(s.init)));
    assert.deepEqual(closed, []);
  });

  test('the fds of a chunk belong to the last header that begins in it', () => {
    const { parser, closed } = requestParser();
    const items = parser.push(concatBytes([NUM, NUM, KICK]), [7]);
    assert.deepEqual(messages(items), [
      NUM_MSG,
      NUM_MSG,
      { type: 'SET_VRING_KICK', flags: 1, needReply: false, body: { index: 0, noFd: false }, fds: [7] },
    ]);
    assert.deepEqual(closed, []);
  });

  test('fds attach to a header that begins in the chunk but ends in the next', () => {
    const { parser, closed } = requestParser();
    const bytes = concatBytes([NUM, KICK]);
    const first = parser.push(bytes.subarray(0, NUM.length + 5), [7]);
    assert.deepEqual(messages(first), [NUM_MSG]);
    assert.equal(parser.heldFdCount, 1);
    const second = parser.push(bytes.subarray(NUM.length + 5));
    assert.deepEqual(messages(second).map((m) => m.fds), [[7]]);
    assert.deepEqual(closed, []);
  });

  test('a chunk that ends exactly at a message boundary leaves nothing buffered', () => {
    const { parser } = requestParser();
    assert.equal(parser.push(NUM).length, 1);
    assert.equal(parser.bufferedBytes, 0);
    assert.equal(parser.push(new Uint8Array(0)).length, 0);
  });

  test('the parser keeps no reference to the caller chunk', () => {
    const { parser } = requestParser();
    const chunk = frameBytes(25, 0x1, new ByteBuilder().u32(0).u32(4).u32(0).bytes([1, 2, 3, 4]).build());
    const first = parser.push(chunk.subarray(0, 20));
    chunk.fill(0xee, 0, 20); // the caller reuses its receive buffer
    const [m] = messages([...first, ...parser.push(chunk.subarray(20))]);
    assert.ok(m !== undefined && m.type === 'SET_CONFIG');
    assert.deepEqual(m.body.payload, Uint8Array.of(1, 2, 3, 4));
  });
});

describe('errors through the parser', () => {
  /** One bad message followed by a good one: per-message errors keep the framing. */
  const perMessage: Array<[string, Uint8Array, readonly number[], VhostUserProtocolErrorCode, number]> = [
    ['wrong fixed size', frameBytes(9, 0x1, new Uint8Array(32)), [], 'VHOST_USER_BAD_SIZE', 0],
    ['payload on GET_FEATURES', frameBytes(1, 0x1, u64(0)), [], 'VHOST_USER_BAD_SIZE', 0],
    ['REPLY flag on a request', frameBytes(15, 0x5), [], 'VHOST_USER_REPLY_FLAG_ON_REQUEST', 0],
    ['reserved flags', frameBytes(15, 0x21), [3], 'VHOST_USER_RESERVED_FLAGS', 1],
    ['unknown code with payload and fds', frameBytes(99, 0x9, new Uint8Array(100)), [3, 4], 'VHOST_USER_UNKNOWN_REQUEST', 2],
    ['IOTLB_MSG (not decoded)', frameBytes(22, 0x1, new Uint8Array(34)), [], 'VHOST_USER_UNKNOWN_REQUEST', 0],
    ['fd on SET_VRING_NUM', NUM, [3], 'VHOST_USER_UNEXPECTED_FDS', 1],
    ['two fds on SET_VRING_KICK', KICK, [3, 4], 'VHOST_USER_UNEXPECTED_FDS', 2],
    ['fd with the NOFD bit', frameBytes(13, 0x1, u64(0x100)), [3], 'VHOST_USER_UNEXPECTED_FDS', 1],
    ['kick without fd', KICK, [], 'VHOST_USER_MISSING_FD', 0],
    ['mem table with too few fds', frameBytes(5, 0x1, new ByteBuilder().u32(2).u32(0).zeros(64).build()), [3], 'VHOST_USER_MISSING_FD', 1],
    ['mem table with 0 regions', frameBytes(5, 0x1, new ByteBuilder().u32(0).u32(0).build()), [], 'VHOST_USER_BAD_REGION_COUNT', 0],
    ['mem table with 9 regions', frameBytes(5, 0x1, new ByteBuilder().u32(9).u32(0).zeros(288).build()), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'VHOST_USER_BAD_REGION_COUNT', 9],
    ['config size field mismatch', frameBytes(24, 0x1, new ByteBuilder().u32(0).u32(9).u32(0).zeros(4).build()), [], 'VHOST_USER_BAD_SIZE', 0],
  ];

  for (const [label, bad, fds, code, closes] of perMessage) {
    test(`${code}: ${label}; the next message still parses; ${closes} fd(s) closed`, () => {
      const bytes = concatBytes([bad, NUM]);
      // The fds arrive with the first chunk, where the bad message's header begins and no other does.
      for (const cut of new Set([1, 12, bad.length])) {
        const { parser, closed } = requestParser();
        const items = [...parser.push(bytes.subarray(0, cut), fds), ...parser.push(bytes.subarray(cut))];
        assert.deepEqual(errorCodes(items), [code, 'message'], `cut at ${cut}`);
        const [err, ok] = items;
        assert.ok(err?.kind === 'error' && ok?.kind === 'message');
        assert.equal(err.error.fatal, false);
        assert.equal(err.error.isFramingIntact(), true);
        assert.deepEqual(err.error.header?.request, new DataView(bad.buffer, bad.byteOffset).getUint32(0, true));
        assert.deepEqual(ok.message, NUM_MSG);
        assert.deepEqual([...closed].sort(), [...fds].sort());
        assert.equal(closed.length, closes);
      }
    });
  }

  test('an unknown request is skipped without buffering its payload', () => {
    const { parser } = requestParser();
    const bad = frameBytes(99, 0x1, new Uint8Array(0x1000));
    assert.deepEqual(parser.push(bad.subarray(0, 2000)), []);
    assert.equal(parser.bufferedBytes, 12);
    const items = parser.push(concatBytes([bad.subarray(2000), NUM]));
    assert.deepEqual(errorCodes(items), ['VHOST_USER_UNKNOWN_REQUEST', 'message']);
    const [err] = items;
    assert.ok(err?.kind === 'error');
    assert.deepEqual(err.error.header, { request: 99, flags: 1, size: 0x1000 });
  });

  test('PAYLOAD_TOO_LARGE is fatal as soon as the header arrives, before any payload', () => {
    const { parser, closed } = requestParser();
    const header = new ByteBuilder().u32(25).u32(0x1).u32(0xffff_ffff).build();
    const items = parser.push(concatBytes([NUM, header]), [5]);
    assert.deepEqual(errorCodes(items), ['message', 'VHOST_USER_PAYLOAD_TOO_LARGE']);
    assert.equal(parser.bufferedBytes, 0);
    assert.deepEqual(closed, [5]);
    const last = items[1];
    assert.ok(last?.kind === 'error' && last.error.fatal);
    assert.match(last.error.message, /SET_CONFIG: payload size 4294967295 exceeds the limit of 4096 bytes/);
    // Afterwards: the same fatal error, and every fd handed in is closed.
    const again = parser.push(NUM, [6]);
    assert.deepEqual(errorCodes(again), ['VHOST_USER_PAYLOAD_TOO_LARGE']);
    assert.deepEqual(closed, [5, 6]);
  });

  test('BAD_VERSION is fatal; messages before it in the same chunk are delivered', () => {
    const { parser, closed } = requestParser();
    const items = parser.push(concatBytes([NUM, frameBytes(8, 0x2, new Uint8Array(8)), NUM]), [1]);
    assert.deepEqual(errorCodes(items), ['message', 'VHOST_USER_BAD_VERSION']);
    assert.deepEqual(closed, [1]);
    assert.equal(parser.failure?.code, 'VHOST_USER_BAD_VERSION');
  });

  test('regression: fds that arrived with the first bytes of a header that proves fatal are closed', () => {
    // Found by the random-bytes property: [0] + fd, then [0, 0, 0], then eight zeros (version 0).
    const { parser, closed } = requestParser();
    assert.deepEqual(parser.push(Uint8Array.of(0), [3000]), []);
    assert.deepEqual(parser.push(new Uint8Array(3)), []);
    assert.deepEqual(errorCodes(parser.push(new Uint8Array(8))), ['VHOST_USER_BAD_VERSION']);
    assert.deepEqual(closed, [3000]);
  });

  test('more than 32 fds: all closed, the message fails', () => {
    const { parser, closed } = requestParser();
    const fds = Array.from({ length: 33 }, (_, i) => 100 + i);
    const items = parser.push(concatBytes([KICK, NUM]), fds);
    // The fds go to the last header (SET_VRING_NUM), which fails; KICK has no fd.
    assert.deepEqual(errorCodes(items), ['VHOST_USER_MISSING_FD', 'VHOST_USER_UNEXPECTED_FDS']);
    assert.deepEqual(closed, fds);
    const last = items[1];
    assert.ok(last?.kind === 'error');
    assert.match(last.error.message, /33 fds arrived with one message, more than the 32 accepted/);
  });

  test('fds with bytes that begin no header: closed, and the message in progress fails', () => {
    const { parser, closed } = requestParser();
    assert.deepEqual(parser.push(KICK.subarray(0, 14), [7]), []);
    const items = parser.push(KICK.subarray(14), [8]);
    assert.deepEqual(errorCodes(items), ['VHOST_USER_UNEXPECTED_FDS']);
    assert.deepEqual(closed.sort(), [7, 8]);
    assert.deepEqual(messages(parser.push(NUM)), [NUM_MSG]);
  });

  test('fds with an empty chunk and no message in progress: closed, reported without a header', () => {
    const { parser, closed } = requestParser();
    const items = parser.push(new Uint8Array(0), [7, 8]);
    assert.deepEqual(errorCodes(items), ['VHOST_USER_UNEXPECTED_FDS']);
    const [err] = items;
    assert.ok(err?.kind === 'error' && err.error.header === null && !err.error.fatal);
    assert.deepEqual(closed, [7, 8]);
    assert.deepEqual(messages(parser.push(NUM)), [NUM_MSG]);
  });

  test('REM_MEM_REG with one fd: accepted, and the fd is closed, never handed over', () => {
    const { parser, closed } = requestParser();
    const region = new ByteBuilder().u64(0).u64(0).u64(0x1000).u64(0x7000_0000).u64(0).build();
    const [m] = messages(parser.push(frameBytes(38, 0x1, region), [9]));
    assert.ok(m !== undefined && m.type === 'REM_MEM_REG');
    assert.deepEqual(m.fds, []);
    assert.deepEqual(closed, [9]);
  });

  test('end() inside a message: fatal TRUNCATED, its fds closed', () => {
    const { parser, closed } = requestParser();
    parser.push(KICK.subarray(0, 15), [4]);
    const items = parser.end();
    assert.deepEqual(errorCodes(items), ['VHOST_USER_TRUNCATED']);
    const [err] = items;
    assert.ok(err?.kind === 'error' && err.error.fatal);
    assert.match(err.error.message, /SET_VRING_KICK: after 3 of 8 payload bytes/);
    assert.deepEqual(closed, [4]);
    assert.deepEqual(requestParser().parser.end(), []);
  });

  test('end() inside a header', () => {
    const { parser } = requestParser();
    parser.push(NUM.subarray(0, 5));
    const [err] = parser.end();
    assert.ok(err?.kind === 'error');
    assert.match(err.error.message, /after 5 of 12 header bytes/);
  });

  test('reply parser: a request (no REPLY flag) is a per-message error', () => {
    const closed: number[] = [];
    const parser = new VhostUserReplyParser({ closeFd: (fd) => closed.push(fd) });
    const items = parser.push(concatBytes([frameBytes(1, 0x1, u64(1)), frameBytes(1, 0x5, u64(1))]));
    assert.deepEqual(errorCodes(items), ['VHOST_USER_REPLY_FLAG_MISSING', 'message']);
  });
});
