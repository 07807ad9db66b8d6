// SPDX-License-Identifier: Apache-2.0
/**
 * Protocol constants against the numbers in QEMU's `docs/interop/vhost-user.rst` (copied here by
 * hand from the document's tables), name tables, limits; and the test-only ByteBuilder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as P from './protocol.js';
import { ByteBuilder, concatBytes, frameBytes } from './testing/byte-builder.js';

/** "Front-end message types", in document order of ids. */
const DOC_FRONTEND: ReadonlyArray<[string, number]> = [
  ['GET_FEATURES', 1], ['SET_FEATURES', 2], ['SET_OWNER', 3], ['RESET_OWNER', 4], ['SET_MEM_TABLE', 5],
  ['SET_LOG_BASE', 6], ['SET_LOG_FD', 7], ['SET_VRING_NUM', 8], ['SET_VRING_ADDR', 9], ['SET_VRING_BASE', 10],
  ['GET_VRING_BASE', 11], ['SET_VRING_KICK', 12], ['SET_VRING_CALL', 13], ['SET_VRING_ERR', 14],
  ['GET_PROTOCOL_FEATURES', 15], ['SET_PROTOCOL_FEATURES', 16], ['GET_QUEUE_NUM', 17], ['SET_VRING_ENABLE', 18],
  ['SEND_RARP', 19], ['NET_SET_MTU', 20], ['SET_BACKEND_REQ_FD', 21], ['IOTLB_MSG', 22], ['SET_VRING_ENDIAN', 23],
  ['GET_CONFIG', 24], ['SET_CONFIG', 25], ['CREATE_CRYPTO_SESSION', 26], ['CLOSE_CRYPTO_SESSION', 27],
  ['POSTCOPY_ADVISE', 28], ['POSTCOPY_LISTEN', 29], ['POSTCOPY_END', 30], ['GET_INFLIGHT_FD', 31],
  ['SET_INFLIGHT_FD', 32], ['GPU_SET_SOCKET', 33], ['RESET_DEVICE', 34], ['VRING_KICK', 35], ['GET_MAX_MEM_SLOTS', 36],
  ['ADD_MEM_REG', 37], ['REM_MEM_REG', 38], ['SET_STATUS', 39], ['GET_STATUS', 40], ['GET_SHARED_OBJECT', 41],
  ['SET_DEVICE_STATE_FD', 42], ['CHECK_DEVICE_STATE', 43],
];

const DOC_PROTOCOL_FEATURES = [
  'MQ', 'LOG_SHMFD', 'RARP', 'REPLY_ACK', 'MTU', 'BACKEND_REQ', 'CROSS_ENDIAN', 'CRYPTO_SESSION', 'PAGEFAULT', 'CONFIG',
  'BACKEND_SEND_FD', 'HOST_NOTIFIER', 'INFLIGHT_SHMFD', 'RESET_DEVICE', 'INBAND_NOTIFICATIONS', 'CONFIGURE_MEM_SLOTS',
  'STATUS', 'XEN_MMAP', 'SHARED_OBJECT', 'DEVICE_STATE',
];

/** Reads an exported constant by name, for table-driven checks. */
function constant(name: string): unknown {
  // Safe cast: a module namespace object is a record of its exports.
  return (P as Record<string, unknown>)[name];
}

test('front-end request codes 1-43 match the document; 44 is the rust-vmm-only GET_SHMEM_CONFIG', () => {
  for (const [name, id] of DOC_FRONTEND) {
    assert.equal(constant(`VHOST_USER_${name}`), id, name);
    assert.equal(P.FRONTEND_REQUEST_CODES[name as P.FrontendRequestName], id, name);
    assert.equal(P.frontendRequestName(id), name);
  }
  assert.equal(P.VHOST_USER_GET_SHMEM_CONFIG, 44);
  assert.equal(Object.keys(P.FRONTEND_REQUEST_CODES).length, 44);
  assert.equal(P.frontendRequestName(99), 'request 99');
  assert.equal(P.frontendRequestNameOf(0), undefined);
});

test('back-end request codes match the document (9 and 10 are rust-vmm only)', () => {
  const doc: ReadonlyArray<[string, number]> = [
    ['IOTLB_MSG', 1], ['CONFIG_CHANGE_MSG', 2], ['VRING_HOST_NOTIFIER_MSG', 3], ['VRING_CALL', 4], ['VRING_ERR', 5],
    ['SHARED_OBJECT_ADD', 6], ['SHARED_OBJECT_REMOVE', 7], ['SHARED_OBJECT_LOOKUP', 8], ['SHMEM_MAP', 9], ['SHMEM_UNMAP', 10],
  ];
  for (const [name, id] of doc) {
    assert.equal(constant(`VHOST_USER_BACKEND_${name}`), id, name);
    assert.equal(P.backendRequestName(id), `BACKEND_${name}`);
  }
  assert.equal(P.backendRequestName(11), 'backend request 11');
});

test('protocol feature bits 0-19 match the document', () => {
  DOC_PROTOCOL_FEATURES.forEach((name, bit) => {
    assert.equal(constant(`VHOST_USER_PROTOCOL_F_${name}`), bit, name);
    assert.equal(P.PROTOCOL_FEATURE_NAMES[bit], name);
  });
  assert.equal(P.VHOST_USER_PROTOCOL_F_NET_MTU, 4);
  assert.deepEqual(P.describeProtocolFeatures(0x8009n), ['MQ', 'REPLY_ACK', 'CONFIGURE_MEM_SLOTS']);
  assert.deepEqual(P.describeProtocolFeatures(0x8f2bn), [
    'MQ', 'LOG_SHMFD', 'REPLY_ACK', 'BACKEND_REQ', 'PAGEFAULT', 'CONFIG', 'BACKEND_SEND_FD', 'HOST_NOTIFIER', 'CONFIGURE_MEM_SLOTS',
  ]);
  assert.deepEqual(P.describeProtocolFeatures(1n << 40n), ['bit40']);
});

test('header flags and wire masks', () => {
  assert.equal(P.VHOST_USER_HDR_SIZE, 12);
  assert.equal(P.VHOST_USER_VERSION, 0x1);
  assert.equal(P.VHOST_USER_VERSION_MASK, 0x3);
  assert.equal(P.VHOST_USER_REPLY_MASK, 0x4);
  assert.equal(P.VHOST_USER_NEED_REPLY_MASK, 0x8);
  assert.equal((P.VHOST_USER_RESERVED_FLAGS_MASK | 0xf) >>> 0, 0xffff_ffff);
  assert.equal(P.VHOST_USER_VRING_IDX_MASK, 0xff);
  assert.equal(P.VHOST_USER_VRING_NOFD_MASK, 0x100);
  assert.equal(P.VHOST_F_LOG_ALL, 26);
});

test('limits: every decoded message fits the payload cap', () => {
  assert.equal(P.VHOST_USER_MAX_PAYLOAD, 0x1000);
  assert.equal(P.VHOST_USER_MAX_FDS, 32);
  assert.equal(P.VHOST_MEMORY_BASELINE_NREGIONS, 8);
  assert.ok(8 + 32 * P.VHOST_MEMORY_BASELINE_NREGIONS <= P.VHOST_USER_MAX_PAYLOAD);
  assert.ok(P.VHOST_USER_CONFIG_HDR_SIZE + P.VHOST_USER_MAX_CONFIG_SIZE <= P.VHOST_USER_MAX_PAYLOAD);
  assert.ok(P.VHOST_MEMORY_BASELINE_NREGIONS <= P.VHOST_USER_MAX_FDS);
});

test('ByteBuilder: little-endian integers, bytes, zeros; rejects values that do not fit', () => {
  const out = new ByteBuilder().u8(0x01).u16(0x0302).u32(0x07060504).u64(0x0f0e0d0c0b0a0908n).bytes([0xaa]).zeros(2).build();
  assert.deepEqual(out, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xaa, 0, 0));
  assert.deepEqual(new ByteBuilder().u64(2 ** 53 - 1).build(), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0));
  assert.throws(() => new ByteBuilder().u8(256), RangeError);
  assert.throws(() => new ByteBuilder().u32(-1), RangeError);
  assert.throws(() => new ByteBuilder().u64(1n << 64n), RangeError);
  assert.deepEqual(frameBytes(3, 1), Uint8Array.of(3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0));
  assert.deepEqual(frameBytes(3, 1, Uint8Array.of(9), 5).length, 13);
  assert.deepEqual(concatBytes([Uint8Array.of(1), Uint8Array.of(2, 3)]), Uint8Array.of(1, 2, 3));
});
