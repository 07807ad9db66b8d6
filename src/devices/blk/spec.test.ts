// SPDX-License-Identifier: Apache-2.0
/** virtio-blk wire codecs (VIRTIO 1.3 §5.2.4, §5.2.6) against bytes built by hand with DataView. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_SECURE_ERASE,
  VIRTIO_BLK_T_WRITE_ZEROES,
  virtioBlkConfig,
  virtioBlkDiscardWriteZeroes,
  virtioBlkReqHeader,
} from './spec.js';
import { reqHeaderBytes, segmentBytes } from './testing.js';

test('blk spec: constants have their §5.2 values', () => {
  assert.deepEqual(
    [VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES],
    [1, 2, 5, 9, 11, 12, 13, 14],
  );
  assert.deepEqual([VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_T_SECURE_ERASE], [8, 10, 11, 13, 14]);
});

test('blk spec: request header decodes type, reserved and a 64-bit sector', () => {
  const h = reqHeaderBytes(0x0d, 0x1234_5678_9an, 0xdead_beef);
  assert.equal(virtioBlkReqHeader.size, 16);
  assert.deepEqual(virtioBlkReqHeader.decode(new DataView(h.buffer), 0), { type: 13, reserved: 0xdead_beef, sector: 0x1234_5678_9a });
  const out = new Uint8Array(16);
  virtioBlkReqHeader.encode({ type: 13, reserved: 0xdead_beef, sector: 0x1234_5678_9a }, new DataView(out.buffer), 0);
  assert.deepEqual(out, h);
});

test('blk spec: a sector at or above 2^53 decodes to a non-safe number (never truncated)', () => {
  for (const s of [2n ** 53n, 2n ** 64n - 1n, 2n ** 63n]) {
    const d = virtioBlkReqHeader.decode(new DataView(reqHeaderBytes(0, s).buffer), 0);
    assert.equal(Number.isSafeInteger(d.sector), false, `sector ${s}`);
    assert.ok(d.sector >= 2 ** 53);
  }
});

test('blk spec: discard/write-zeroes segment decodes sector, num_sectors and flags', () => {
  const b = segmentBytes(0x1_0000_0002n, 0xffff_fffe, 0x8000_0001);
  assert.deepEqual(virtioBlkDiscardWriteZeroes.decode(new DataView(b.buffer), 0), { sector: 0x1_0000_0002, numSectors: 0xffff_fffe, flags: 0x8000_0001 });
  const out = new Uint8Array(16);
  virtioBlkDiscardWriteZeroes.encode({ sector: 0x1_0000_0002, numSectors: 0xffff_fffe, flags: 0x8000_0001 }, new DataView(out.buffer), 0);
  assert.deepEqual(out, b);
});

test('blk spec: config layout puts every field at its §5.2.4 offset, 60 bytes, padding zero', () => {
  const value = {
    capacity: 0x0102_0304_0506,
    sizeMax: 0x1111_1111,
    segMax: 0x2222_2222,
    geometry: { cylinders: 0x3333, heads: 0x44, sectors: 0x55 },
    blkSize: 0x6666_6666,
    topology: { physicalBlockExp: 0x77, alignmentOffset: 0x88, minIoSize: 0x9999, optIoSize: 0xaaaa_aaaa },
    writeback: 1,
    numQueues: 0xbbbb,
    maxDiscardSectors: 0xcccc_cccc,
    maxDiscardSeg: 0xdddd_dddd,
    discardSectorAlignment: 0xeeee_eeee,
    maxWriteZeroesSectors: 0x1212_1212,
    maxWriteZeroesSeg: 0x3434_3434,
    writeZeroesMayUnmap: 1,
  };
  const expected = new Uint8Array(60);
  const v = new DataView(expected.buffer);
  v.setBigUint64(0, 0x0102_0304_0506n, true);
  v.setUint32(8, 0x1111_1111, true);
  v.setUint32(12, 0x2222_2222, true);
  v.setUint16(16, 0x3333, true);
  v.setUint8(18, 0x44);
  v.setUint8(19, 0x55);
  v.setUint32(20, 0x6666_6666, true);
  v.setUint8(24, 0x77);
  v.setUint8(25, 0x88);
  v.setUint16(26, 0x9999, true);
  v.setUint32(28, 0xaaaa_aaaa, true);
  v.setUint8(32, 1);
  v.setUint16(34, 0xbbbb, true);
  v.setUint32(36, 0xcccc_cccc, true);
  v.setUint32(40, 0xdddd_dddd, true);
  v.setUint32(44, 0xeeee_eeee, true);
  v.setUint32(48, 0x1212_1212, true);
  v.setUint32(52, 0x3434_3434, true);
  v.setUint8(56, 1);
  assert.equal(VIRTIO_BLK_CONFIG_SIZE, 60);
  const out = new Uint8Array(60).fill(0xff);
  virtioBlkConfig.encode(value, new DataView(out.buffer), 0);
  assert.deepEqual(out, expected, 'encode writes every field and zero padding (unused0 @33, unused1 @57..59)');
  assert.deepEqual(virtioBlkConfig.decode(new DataView(expected.buffer), 0), value);
});
