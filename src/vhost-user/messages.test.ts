// SPDX-License-Identifier: Apache-2.0
/**
 * Payload codecs and typed request/reply encoding: every type against hand-built bytes
 * (`testing/samples.ts`), round trips, and every validation rule with its error code.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeReply,
  decodeRequest,
  encodeFrame,
  encodeReply,
  encodeRequest,
  FRONTEND_REQUEST_TYPES,
  type FrontendRequestInit,
  hasOwnReply,
  memoryRegion,
  singleMemoryRegion,
  vhostUserInflight,
  vhostUserLog,
  vringAddr,
  vringArea,
  vringState,
} from './messages.js';
import { isVhostUserProtocolError, VhostUserProtocolError, type VhostUserProtocolErrorCode } from './errors.js';
import type { VhostUserHeader } from './protocol.js';
import { ByteBuilder, frameBytes } from './testing/byte-builder.js';
import { decodedReply, decodedRequest, REPLY_SAMPLES, REQUEST_SAMPLES } from './testing/samples.js';

/** Splits hand-built bytes into header and payload without the codec under test. */
function split(bytes: Uint8Array): { header: VhostUserHeader; payload: Uint8Array } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = { request: dv.getUint32(0, true), flags: dv.getUint32(4, true), size: dv.getUint32(8, true) };
  return { header, payload: bytes.subarray(12) };
}

function decodeBytes(bytes: Uint8Array, fds: readonly number[] = []): ReturnType<typeof decodeRequest> {
  const { header, payload } = split(bytes);
  return decodeRequest(header, payload, fds);
}

function assertCode(fn: () => unknown, code: VhostUserProtocolErrorCode, message?: RegExp): VhostUserProtocolError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof VhostUserProtocolError, `expected VhostUserProtocolError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}

const u64 = (v: bigint | number): Uint8Array => new ByteBuilder().u64(v).build();

describe('request samples', () => {
  test('there is a sample for every decoded request type', () => {
    const sampled = REQUEST_SAMPLES.map((s) => s.init.type).sort();
    assert.deepEqual(sampled, [...FRONTEND_REQUEST_TYPES].sort());
    assert.equal(FRONTEND_REQUEST_TYPES.length, 34);
  });

  for (const { init, bytes } of REQUEST_SAMPLES) {
    test(`${init.type}: encodes to the hand-built bytes`, () => {
      const encoded = encodeRequest(init);
      assert.deepEqual(encoded.bytes, bytes);
      assert.deepEqual(encoded.fds, init.fds);
    });

    test(`${init.type}: hand-built bytes decode to the typed message`, () => {
      assert.deepEqual(decodeBytes(bytes, init.fds), decodedRequest(init));
    });

    test(`${init.type}: decode(encode(m)) round-trips`, () => {
      const m = decodedRequest(init);
      const again = encodeRequest(m);
      assert.deepEqual(decodeBytes(again.bytes, again.fds), m);
    });
  }
});

describe('reply samples', () => {
  for (const { init, bytes } of REPLY_SAMPLES) {
    const label = init.type === 'ACK' ? `ACK(${init.request})` : init.type;
    test(`${label}: encodes to the hand-built bytes and decodes back`, () => {
      const encoded = encodeReply(init);
      assert.deepEqual(encoded.bytes, bytes);
      const { header, payload } = split(bytes);
      assert.deepEqual(decodeReply(header, payload, init.fds), decodedReply(init));
    });
  }

  test('a rust-vmm SET_LOG_BASE reply (the 16-byte log echoed back) is accepted', () => {
    const { header, payload } = split(frameBytes(6, 0x5, new ByteBuilder().u64(0x2000).u64(0).build()));
    assert.deepEqual(decodeReply(header, payload), { type: 'SET_LOG_BASE', flags: 0x5, body: 0x2000n, fds: [] });
  });

  test("rust-vmm's GET_CONFIG error form (config header with size 0) decodes as an empty config", () => {
    const { header, payload } = split(frameBytes(24, 0x5, new ByteBuilder().u32(0).u32(0).u32(0).build()));
    const r = decodeReply(header, payload);
    assert.equal(r.type, 'GET_CONFIG');
    assert.deepEqual(r.body, { offset: 0, flags: 0, payload: new Uint8Array(0) });
  });

  test('GET_INFLIGHT_FD reply: no fd needed when mmap_size is 0, one required otherwise', () => {
    const body = (size: number): Uint8Array => new ByteBuilder().u64(size).u64(0).u16(1).u16(128).zeros(4).build();
    const ok = split(frameBytes(31, 0x5, body(0)));
    assert.deepEqual(decodeReply(ok.header, ok.payload).fds, []);
    const bad = split(frameBytes(31, 0x5, body(0x1000)));
    assertCode(() => decodeReply(bad.header, bad.payload), 'VHOST_USER_MISSING_FD');
  });

  test('reply validation: REPLY flag, sizes, fds', () => {
    const noReplyFlag = split(frameBytes(1, 0x1, u64(1)));
    assertCode(() => decodeReply(noReplyFlag.header, noReplyFlag.payload), 'VHOST_USER_REPLY_FLAG_MISSING', /GET_FEATURES/);
    const short = split(frameBytes(1, 0x5, new ByteBuilder().u32(1).build()));
    assertCode(() => decodeReply(short.header, short.payload), 'VHOST_USER_BAD_SIZE', /GET_FEATURES: payload size 4 is wrong, expected 8/);
    const emptyAck = split(frameBytes(37, 0x5));
    assertCode(() => decodeReply(emptyAck.header, emptyAck.payload), 'VHOST_USER_BAD_SIZE', /ADD_MEM_REG/);
    const ackWithFd = split(frameBytes(37, 0x5, u64(0)));
    assertCode(() => decodeReply(ackWithFd.header, ackWithFd.payload, [7]), 'VHOST_USER_UNEXPECTED_FDS');
    const cfg = split(frameBytes(24, 0x5, new ByteBuilder().u32(0).u32(8).u32(0).zeros(4).build()));
    assertCode(() => decodeReply(cfg.header, cfg.payload), 'VHOST_USER_BAD_SIZE', /config size field \(8\)/);
  });

  test('hasOwnReply: GET_* and SET_LOG_BASE answer with their own reply, the rest with an ack', () => {
    for (const t of ['GET_FEATURES', 'GET_PROTOCOL_FEATURES', 'GET_QUEUE_NUM', 'GET_MAX_MEM_SLOTS', 'GET_STATUS', 'GET_VRING_BASE', 'GET_CONFIG', 'GET_INFLIGHT_FD', 'SET_LOG_BASE', 'CREATE_CRYPTO_SESSION'] as const) {
      assert.equal(hasOwnReply(t), true, t);
    }
    for (const t of ['ADD_MEM_REG', 'SET_MEM_TABLE', 'SET_BACKEND_REQ_FD', 'SET_VRING_ADDR', 'SET_FEATURES', 'CLOSE_CRYPTO_SESSION'] as const) {
      assert.equal(hasOwnReply(t), false, t);
    }
  });
});

describe('crypto sessions', () => {
  test('CREATE_CRYPTO_SESSION carries an opaque description of 8 to 2048 bytes, both ways', () => {
    const desc = Uint8Array.from({ length: 1072 }, (_, i) => i & 0xff);
    const req = split(frameBytes(26, 0x1, desc));
    assert.deepEqual(decodeRequest(req.header, req.payload), { type: 'CREATE_CRYPTO_SESSION', flags: 0x1, needReply: false, body: desc, fds: [] });
    const rep = split(frameBytes(26, 0x5, desc));
    assert.deepEqual(decodeReply(rep.header, rep.payload).body, desc);
    const empty = split(frameBytes(26, 0x5));
    assert.deepEqual(decodeReply(empty.header, empty.payload).body, new Uint8Array(0), 'the failure reply is empty');
    for (const size of [0, 7, 2049]) {
      const bad = split(frameBytes(26, 0x1, new Uint8Array(size)));
      assertCode(() => decodeRequest(bad.header, bad.payload), 'VHOST_USER_BAD_SIZE', /CREATE_CRYPTO_SESSION: payload size \d+ is wrong, expected 8 to 2048/);
    }
  });

  test('CLOSE_CRYPTO_SESSION carries the u64 session id', () => {
    const req = split(frameBytes(27, 0x1, u64(0x1234)));
    assert.deepEqual(decodeRequest(req.header, req.payload), { type: 'CLOSE_CRYPTO_SESSION', flags: 0x1, needReply: false, body: 0x1234n, fds: [] });
  });
});

describe('struct codecs', () => {
  test('sizes match the wire structs', () => {
    assert.equal(vringState.size, 8);
    assert.equal(vringAddr.size, 40);
    assert.equal(memoryRegion.size, 32);
    assert.equal(singleMemoryRegion.size, 40);
    assert.equal(vhostUserLog.size, 16);
    assert.equal(vhostUserInflight.size, 24);
    assert.equal(vringArea.size, 24);
  });

  test('vring area: u64 index/no-fd, size, offset', () => {
    const bytes = new ByteBuilder().u64(0x103).u64(0x1000).u64(0x2000).build();
    const view = new DataView(bytes.buffer);
    const v = vringArea.decode(view, 0);
    assert.deepEqual(v, { index: 3, noFd: true, size: 0x1000, offset: 0x2000 });
    const out = new Uint8Array(24);
    vringArea.encode(v, new DataView(out.buffer), 0);
    assert.deepEqual(out, bytes);
  });

  test('u64 addresses keep the high word: values >= 2^53 come back as non-safe numbers', () => {
    const bytes = frameBytes(9, 0x1, new ByteBuilder().u32(0).u32(0).u64(0xffff_ffff_ffff_f000n).u64(0x1_0000_0000n).u64(8).u64(0).build());
    const m = decodeBytes(bytes);
    assert.equal(m.type, 'SET_VRING_ADDR');
    if (m.type !== 'SET_VRING_ADDR') return;
    assert.ok(!Number.isSafeInteger(m.body.desc) && m.body.desc > 2 ** 63, String(m.body.desc));
    assert.equal(m.body.used, 2 ** 32);
  });

  test('kick/call/err: bits 9-63 are ignored, like libvhost-user and rust-vmm', () => {
    const m = decodeBytes(frameBytes(12, 0x1, new ByteBuilder().u32(0xffff_fe03).u32(0xffff_ffff).build()), [5]);
    assert.deepEqual(m, { type: 'SET_VRING_KICK', flags: 1, needReply: false, body: { index: 3, noFd: false }, fds: [5] });
  });

  test('decoded byte payloads are copies, not views of the input', () => {
    const bytes = frameBytes(25, 0x1, new ByteBuilder().u32(0).u32(2).u32(0).bytes([7, 8]).build());
    const m = decodeBytes(bytes);
    bytes.fill(0);
    assert.equal(m.type, 'SET_CONFIG');
    if (m.type === 'SET_CONFIG') assert.deepEqual(m.body.payload, Uint8Array.of(7, 8));
  });
});

describe('request validation', () => {
  test('BAD_VERSION (fatal): version bits other than 1', () => {
    for (const flags of [0x0, 0x2, 0x3]) {
      const e = assertCode(() => decodeBytes(frameBytes(1, flags)), 'VHOST_USER_BAD_VERSION', /version/);
      assert.equal(e.fatal, true);
      assert.equal(e.isFramingIntact(), false);
    }
  });

  test('PAYLOAD_TOO_LARGE (fatal): size over 0x1000', () => {
    const e = assertCode(() => decodeBytes(frameBytes(25, 0x1, new Uint8Array(0x1001))), 'VHOST_USER_PAYLOAD_TOO_LARGE', /4097 exceeds the limit of 4096/);
    assert.equal(e.fatal, true);
  });

  test('REPLY_FLAG_ON_REQUEST', () => {
    const e = assertCode(() => decodeBytes(frameBytes(1, 0x5)), 'VHOST_USER_REPLY_FLAG_ON_REQUEST', /GET_FEATURES/);
    assert.equal(e.fatal, false);
    assert.deepEqual(e.header, { request: 1, flags: 5, size: 0 });
  });

  test('RESERVED_FLAGS: bits 4-31', () => {
    assertCode(() => decodeBytes(frameBytes(1, 0x11)), 'VHOST_USER_RESERVED_FLAGS', /0x11/);
    assertCode(() => decodeBytes(frameBytes(1, 0x8000_0001)), 'VHOST_USER_RESERVED_FLAGS');
  });

  test('UNKNOWN_REQUEST: unknown codes and known codes this codec does not decode', () => {
    for (const code of [0, 45, 99, 0xffff_ffff]) {
      const e = assertCode(() => decodeBytes(frameBytes(code, 0x1)), 'VHOST_USER_UNKNOWN_REQUEST', /unknown request code/);
      assert.equal(e.fatal, false);
      assert.equal(e.header?.request, code);
    }
    assertCode(() => decodeBytes(frameBytes(22, 0x1, new Uint8Array(34))), 'VHOST_USER_UNKNOWN_REQUEST', /IOTLB_MSG: a request this codec does not decode/);
    assertCode(() => decodeBytes(frameBytes(44, 0x1)), 'VHOST_USER_UNKNOWN_REQUEST', /GET_SHMEM_CONFIG/);
  });

  test('BAD_SIZE names the message and expected vs actual size', () => {
    assertCode(() => decodeBytes(frameBytes(9, 0x1, new Uint8Array(32))), 'VHOST_USER_BAD_SIZE', /SET_VRING_ADDR: payload size 32 is wrong, expected 40/);
    // QEMU sends size 0 for payload-less requests; 8 is refused (rust-vmm refuses it too).
    assertCode(() => decodeBytes(frameBytes(1, 0x1, u64(0))), 'VHOST_USER_BAD_SIZE', /GET_FEATURES: payload size 8 is wrong, expected 0/);
    assertCode(() => decodeBytes(frameBytes(11, 0x1, new Uint8Array(4))), 'VHOST_USER_BAD_SIZE', /GET_VRING_BASE: payload size 4 is wrong, expected 8/);
    assertCode(() => decodeBytes(frameBytes(31, 0x1, new Uint8Array(20))), 'VHOST_USER_BAD_SIZE', /expected 24/);
  });

  test('SET_MEM_TABLE: 8 + 32·num bytes, 1 <= num <= 8, one fd per region', () => {
    const region = (b: ByteBuilder): ByteBuilder => b.u64(0).u64(0x1000).u64(0x7000_0000).u64(0);
    const table = (num: number, regions: number): Uint8Array => {
      const b = new ByteBuilder().u32(num).u32(0);
      for (let i = 0; i < regions; i++) region(b);
      return frameBytes(5, 0x1, b.build());
    };
    assert.equal(decodeBytes(table(8, 8), [1, 2, 3, 4, 5, 6, 7, 8]).type, 'SET_MEM_TABLE');
    assertCode(() => decodeBytes(table(0, 0)), 'VHOST_USER_BAD_REGION_COUNT', /0 regions, expected 1 to 8/);
    assertCode(() => decodeBytes(table(9, 9), [1, 2, 3, 4, 5, 6, 7, 8, 9]), 'VHOST_USER_BAD_REGION_COUNT', /9 regions/);
    assertCode(() => decodeBytes(table(2, 3), [1, 2]), 'VHOST_USER_BAD_SIZE', /SET_MEM_TABLE: payload size 104 is wrong, expected 72 \(8 \+ 32 × 2 regions\)/);
    assertCode(() => decodeBytes(frameBytes(5, 0x1, new Uint8Array(10))), 'VHOST_USER_BAD_SIZE', /8 \+ 32 × regions/);
    assertCode(() => decodeBytes(table(2, 2), [1]), 'VHOST_USER_MISSING_FD', /1 fd\(s\) attached, but one per region \(2\)/);
    assertCode(() => decodeBytes(table(2, 2), [1, 2, 3]), 'VHOST_USER_UNEXPECTED_FDS', /3 fd\(s\)/);
  });

  test('GET_CONFIG/SET_CONFIG: 12 + size, size <= 256', () => {
    const cfg = (code: number, sizeField: number, bytes: number): Uint8Array =>
      frameBytes(code, 0x1, new ByteBuilder().u32(0).u32(sizeField).u32(0).zeros(bytes).build());
    assert.equal(decodeBytes(cfg(24, 256, 256)).type, 'GET_CONFIG');
    assert.equal(decodeBytes(cfg(25, 0, 0)).type, 'SET_CONFIG');
    assertCode(() => decodeBytes(cfg(24, 257, 257)), 'VHOST_USER_BAD_SIZE', /GET_CONFIG: payload size 269 is wrong, expected 12 to 268/);
    assertCode(() => decodeBytes(cfg(25, 10, 4)), 'VHOST_USER_BAD_SIZE', /SET_CONFIG: payload size 16 is wrong, expected 12 \+ the config size field \(10\)/);
    assertCode(() => decodeBytes(frameBytes(24, 0x1, new Uint8Array(8))), 'VHOST_USER_BAD_SIZE', /expected 12 to 268/);
  });

  test('SET_VRING_KICK/CALL/ERR: an fd unless bit 8 is set', () => {
    for (const code of [12, 13, 14]) {
      assertCode(() => decodeBytes(frameBytes(code, 0x1, u64(0))), 'VHOST_USER_MISSING_FD', /exactly one is required/);
      assertCode(() => decodeBytes(frameBytes(code, 0x1, u64(0)), [1, 2]), 'VHOST_USER_UNEXPECTED_FDS', /exactly one is allowed/);
      assertCode(() => decodeBytes(frameBytes(code, 0x1, u64(0x100)), [1]), 'VHOST_USER_UNEXPECTED_FDS', /bit 8 \(no fd\) is set/);
      assert.deepEqual(decodeBytes(frameBytes(code, 0x1, u64(0x100))).fds, []);
    }
  });

  test('fds on a message type that carries none', () => {
    assertCode(() => decodeBytes(frameBytes(8, 0x1, new Uint8Array(8)), [3]), 'VHOST_USER_UNEXPECTED_FDS', /SET_VRING_NUM: 1 fd\(s\) attached, but this message carries none/);
    assertCode(() => decodeBytes(frameBytes(1, 0x1), [3]), 'VHOST_USER_UNEXPECTED_FDS');
  });

  test('single-fd messages: exactly one', () => {
    const region = new ByteBuilder().zeros(8).u64(0).u64(0x1000).u64(0x7000_0000).u64(0).build();
    assertCode(() => decodeBytes(frameBytes(37, 0x9, region)), 'VHOST_USER_MISSING_FD', /ADD_MEM_REG/);
    assertCode(() => decodeBytes(frameBytes(37, 0x9, region), [1, 2]), 'VHOST_USER_UNEXPECTED_FDS', /ADD_MEM_REG/);
    assertCode(() => decodeBytes(frameBytes(7, 0x1)), 'VHOST_USER_MISSING_FD', /SET_LOG_FD/);
    assertCode(() => decodeBytes(frameBytes(21, 0x1)), 'VHOST_USER_MISSING_FD', /SET_BACKEND_REQ_FD/);
    const inflight = new ByteBuilder().u64(0x1000).u64(0).u16(1).u16(128).zeros(4).build();
    assertCode(() => decodeBytes(frameBytes(32, 0x1, inflight)), 'VHOST_USER_MISSING_FD', /SET_INFLIGHT_FD/);
  });

  test('SET_LOG_BASE: the fd is optional (present only with LOG_SHMFD)', () => {
    const log = new ByteBuilder().u64(0x1000).u64(0).build();
    assert.deepEqual(decodeBytes(frameBytes(6, 0x1, log)).fds, []);
    assert.deepEqual(decodeBytes(frameBytes(6, 0x1, log), [9]).fds, [9]);
    assertCode(() => decodeBytes(frameBytes(6, 0x1, log), [9, 10]), 'VHOST_USER_UNEXPECTED_FDS');
  });

  test('REM_MEM_REG: one stray fd is tolerated and not handed over (the caller closes it)', () => {
    const region = new ByteBuilder().zeros(8).u64(0).u64(0x1000).u64(0x7000_0000).u64(0).build();
    assert.deepEqual(decodeBytes(frameBytes(38, 0x1, region), [9]).fds, []);
    assertCode(() => decodeBytes(frameBytes(38, 0x1, region), [9, 10]), 'VHOST_USER_UNEXPECTED_FDS');
  });

  test('the payload given must match the header size', () => {
    assertCode(() => decodeRequest({ request: 8, flags: 1, size: 8 }, new Uint8Array(4)), 'VHOST_USER_BAD_SIZE');
  });

  test('isVhostUserProtocolError', () => {
    assert.equal(isVhostUserProtocolError(new VhostUserProtocolError('VHOST_USER_BAD_SIZE', 'x')), true);
    assert.equal(isVhostUserProtocolError(new Error('x')), false);
    assert.equal(isVhostUserProtocolError(Object.assign(new Error('x'), { code: 'EBADF' })), false);
  });
});

describe('encoder checks', () => {
  const region = { guestAddr: 0, size: 0x1000, userAddr: 0x7000_0000, mmapOffset: 0 };

  test('values the field cannot carry: UNENCODABLE', () => {
    const addr = { index: 0, flags: 0, desc: 2 ** 53, used: 0, avail: 0, log: 0 };
    assertCode(() => encodeRequest({ type: 'SET_VRING_ADDR', body: addr, fds: [] }), 'VHOST_USER_UNENCODABLE', /desc/);
    assertCode(() => encodeRequest({ type: 'SET_VRING_NUM', body: { index: -1, num: 0 }, fds: [] }), 'VHOST_USER_UNENCODABLE');
    assertCode(() => encodeRequest({ type: 'SET_VRING_NUM', body: { index: 0, num: 1.5 }, fds: [] }), 'VHOST_USER_UNENCODABLE');
    assertCode(() => encodeRequest({ type: 'SET_FEATURES', body: 1n << 64n, fds: [] }), 'VHOST_USER_UNENCODABLE');
    assertCode(() => encodeRequest({ type: 'SET_FEATURES', body: -1n, fds: [] }), 'VHOST_USER_UNENCODABLE');
    assertCode(() => encodeRequest({ type: 'SET_VRING_KICK', body: { index: 256, noFd: true }, fds: [] }), 'VHOST_USER_UNENCODABLE');
    assertCode(() => encodeRequest({ type: 'SEND_RARP', body: { mac: new Uint8Array(5) }, fds: [] }), 'VHOST_USER_UNENCODABLE');
  });

  test('messages the decoder would reject are refused with the same code', () => {
    const regions = (n: number): (typeof region)[] => Array.from({ length: n }, () => region);
    assertCode(() => encodeRequest({ type: 'SET_MEM_TABLE', body: { regions: [] }, fds: [] }), 'VHOST_USER_BAD_REGION_COUNT');
    assertCode(
      () => encodeRequest({ type: 'SET_MEM_TABLE', body: { regions: regions(9) }, fds: [1, 2, 3, 4, 5, 6, 7, 8, 9] }),
      'VHOST_USER_BAD_REGION_COUNT',
    );
    assertCode(() => encodeRequest({ type: 'SET_MEM_TABLE', body: { regions: regions(2) }, fds: [1] }), 'VHOST_USER_MISSING_FD');
    assertCode(() => encodeRequest({ type: 'SET_CONFIG', body: { offset: 0, flags: 0, payload: new Uint8Array(257) }, fds: [] }), 'VHOST_USER_BAD_SIZE');
    // Deliberately ill-typed: a hostile or buggy caller.
    const addNoFd = { type: 'ADD_MEM_REG', body: region, fds: [] } as unknown as FrontendRequestInit;
    assertCode(() => encodeRequest(addNoFd), 'VHOST_USER_MISSING_FD');
    assertCode(() => encodeRequest({ type: 'SET_VRING_CALL', body: { index: 0, noFd: true }, fds: [3] }), 'VHOST_USER_UNEXPECTED_FDS');
    const remWithFd = { type: 'REM_MEM_REG', body: region, fds: [3] } as unknown as FrontendRequestInit;
    assertCode(() => encodeRequest(remWithFd), 'VHOST_USER_UNEXPECTED_FDS', /keeps none/);
  });

  test('encodeFrame writes any header and payload unchecked', () => {
    const e = encodeFrame(99, 0x11, Uint8Array.of(1, 2, 3), [4]);
    assert.deepEqual(e.bytes, frameBytes(99, 0x11, Uint8Array.of(1, 2, 3)));
    assert.deepEqual(e.fds, [4]);
    assertCode(() => encodeFrame(1, 1, new Uint8Array(0x1001)), 'VHOST_USER_UNENCODABLE');
  });
});
