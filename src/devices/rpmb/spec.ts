// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rpmb constants and the frame layout, VIRTIO 1.3 §5.19 "RPMB Device".
 *
 * Device ID 28; one virtqueue, `requestq`; no feature bits. Config (3 bytes): `capacity` (units of
 * 128 KiB, 0x00-0x80), `max_wr_cnt`, `max_rd_cnt` (256-byte blocks per request; 0 = no limit).
 * Frames are 512 bytes with BIG-ENDIAN fields (they copy the JEDEC eMMC RPMB frame):
 *
 * | offset | field |
 * |---|---|
 * | 0 | stuff[196] |
 * | 196 | key_mac[32] (the key in PROGRAM_KEY, else the HMAC-SHA256) |
 * | 228 | data[256] |
 * | 484 | nonce[16] |
 * | 500 | write_counter be32 |
 * | 504 | address be16 (256-byte half-sector units) |
 * | 506 | block_count be16 |
 * | 508 | result be16 |
 * | 510 | req_resp be16 |
 *
 * The MAC covers bytes 228..511 of each frame of a request or response, in order.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const RPMB_DEVICE_ID = VIRTIO_ID.RPMB;
export const RPMB_REQUESTQ = 0;
export const RPMB_QUEUE_MAX_SIZE = 1024;
export const RPMB_CONFIG_SIZE = 3;

export const RPMB_FRAME_SIZE = 512;
export const RPMB_BLOCK_SIZE = 256;
export const RPMB_KEY_SIZE = 32;
export const RPMB_NONCE_SIZE = 16;
/** One capacity unit: 128 KiB = 512 blocks. */
export const RPMB_CAPACITY_UNIT = 128 * 1024;
/** §5.19.4: capacity ranges 0x00 to 0x80 (16 MiB). */
export const RPMB_MAX_CAPACITY = 0x80;

export const RPMB_OFF_KEY_MAC = 196;
export const RPMB_OFF_DATA = 228;
export const RPMB_OFF_NONCE = 484;
export const RPMB_OFF_WRITE_COUNTER = 500;
export const RPMB_OFF_ADDRESS = 504;
export const RPMB_OFF_BLOCK_COUNT = 506;
export const RPMB_OFF_RESULT = 508;
export const RPMB_OFF_REQ_RESP = 510;

export const VIRTIO_RPMB_REQ_PROGRAM_KEY = 0x0001;
export const VIRTIO_RPMB_REQ_GET_WRITE_COUNTER = 0x0002;
export const VIRTIO_RPMB_REQ_DATA_WRITE = 0x0003;
export const VIRTIO_RPMB_REQ_DATA_READ = 0x0004;
export const VIRTIO_RPMB_REQ_RESULT_READ = 0x0005;

export const VIRTIO_RPMB_RESP_PROGRAM_KEY = 0x0100;
export const VIRTIO_RPMB_RESP_GET_COUNTER = 0x0200;
export const VIRTIO_RPMB_RESP_DATA_WRITE = 0x0300;
export const VIRTIO_RPMB_RESP_DATA_READ = 0x0400;

export const VIRTIO_RPMB_RES_OK = 0x0000;
export const VIRTIO_RPMB_RES_GENERAL_FAILURE = 0x0001;
export const VIRTIO_RPMB_RES_AUTH_FAILURE = 0x0002;
export const VIRTIO_RPMB_RES_COUNT_FAILURE = 0x0003;
export const VIRTIO_RPMB_RES_ADDR_FAILURE = 0x0004;
export const VIRTIO_RPMB_RES_WRITE_FAILURE = 0x0005;
export const VIRTIO_RPMB_RES_READ_FAILURE = 0x0006;
export const VIRTIO_RPMB_RES_NO_AUTH_KEY = 0x0007;
/** Or-ed into the result once the write counter has reached its maximum. */
export const VIRTIO_RPMB_RES_WRITE_COUNTER_EXPIRED = 0x0080;

/** The write counter's last value: a write at this value is refused (counter expired). */
export const RPMB_WRITE_COUNTER_MAX = 0xffff_ffff;

/** The fields of a frame besides stuff, key_mac, data and nonce (big-endian on the wire). */
export interface RpmbFrameFields {
  writeCounter: number;
  address: number;
  blockCount: number;
  result: number;
  reqResp: number;
}

/** Reads the big-endian fields of the frame at `off` in `buf`. */
export function readFrameFields(buf: Uint8Array, off = 0): RpmbFrameFields {
  const v = new DataView(buf.buffer, buf.byteOffset + off, RPMB_FRAME_SIZE);
  return {
    writeCounter: v.getUint32(RPMB_OFF_WRITE_COUNTER, false),
    address: v.getUint16(RPMB_OFF_ADDRESS, false),
    blockCount: v.getUint16(RPMB_OFF_BLOCK_COUNT, false),
    result: v.getUint16(RPMB_OFF_RESULT, false),
    reqResp: v.getUint16(RPMB_OFF_REQ_RESP, false),
  };
}

/** Writes the big-endian fields into the frame at `off` in `buf`. */
export function writeFrameFields(buf: Uint8Array, f: RpmbFrameFields, off = 0): void {
  const v = new DataView(buf.buffer, buf.byteOffset + off, RPMB_FRAME_SIZE);
  v.setUint32(RPMB_OFF_WRITE_COUNTER, f.writeCounter, false);
  v.setUint16(RPMB_OFF_ADDRESS, f.address, false);
  v.setUint16(RPMB_OFF_BLOCK_COUNT, f.blockCount, false);
  v.setUint16(RPMB_OFF_RESULT, f.result, false);
  v.setUint16(RPMB_OFF_REQ_RESP, f.reqResp, false);
}
