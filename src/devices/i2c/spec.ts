// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-i2c constants and wire layouts, VIRTIO 1.3 §5.21 "I2C Adapter Device"
 * (device-types/i2c in oasis-tcs/virtio-spec), spelled as in the spec.
 *
 * Device ID 34; one queue, requestq; feature ZERO_LENGTH_REQUEST (bit 0), mandatory for both
 * sides; no config space. A request is `virtio_i2c_out_hdr { le16 addr; le16 padding; le32
 * flags; }` (device-readable), an optional `buf` (device-readable for a write, device-writable for
 * a read; absent for a zero-length request), and `virtio_i2c_in_hdr { u8 status; }`
 * (device-writable, last). A 7-bit address is sent as `addr << 1` (bit 0 and bits 8-15 zero); a
 * 10-bit one as `A7..A0` in bits 15-8 and `11110 A9 A8 0` in bits 7-0.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const I2C_DEVICE_ID = VIRTIO_ID.I2C_ADAPTER;
export const I2C_REQUESTQ = 0;
/** QEMU's vhost-user-i2c-pci asks for 4 entries (7.2); anything up to this is accepted. */
export const I2C_QUEUE_MAX_SIZE = 1024;

/** Feature bit: zero-length requests and the M_RD flag; mandatory (§5.21.3). */
export const VIRTIO_I2C_F_ZERO_LENGTH_REQUEST = 0;

export const I2C_OUT_HDR_SIZE = 8;
export const I2C_IN_HDR_SIZE = 1;

/** Flags (§5.21.6.1): group requests; mark a read. Every other bit is reserved (zero). */
export const VIRTIO_I2C_FLAGS_FAIL_NEXT = 1 << 0;
export const VIRTIO_I2C_FLAGS_M_RD = 1 << 1;
export const VIRTIO_I2C_FLAGS_KNOWN = VIRTIO_I2C_FLAGS_FAIL_NEXT | VIRTIO_I2C_FLAGS_M_RD;

export const VIRTIO_I2C_MSG_OK = 0;
export const VIRTIO_I2C_MSG_ERR = 1;

/** The lowest and highest 7-bit addresses a device may have (0x00-0x02 and 0x78-0x7f are reserved by I2C). */
export const I2C_FIRST_ADDRESS = 0x03;
export const I2C_LAST_ADDRESS = 0x77;

/** The 7-bit address in an `addr` field, or undefined when the field is not a 7-bit encoding (10-bit, bit 0 set, high bits set). */
export function sevenBitAddress(addr: number): number | undefined {
  if ((addr & 0xff01) !== 0) return undefined;
  return addr >> 1;
}
