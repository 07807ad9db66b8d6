// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto constants and wire layouts, VIRTIO 1.3 §5.9 "Crypto Device", spelled as in the
 * spec (and Linux's include/uapi/linux/virtio_crypto.h, which matches it).
 *
 * Device ID 20. Queues: data queues 0..N-1, then the control queue. Opcodes are
 * `(service << 8) | op`. Layouts, offsets in bytes, little-endian:
 * - control request `virtio_crypto_op_ctrl_req` (72): header `{opcode, algo, flag, queue_id}`
 *   (16) + a 56-byte union (`sym_create_session`: a 48-byte union of the cipher para `{algo,
 *   keylen, op}` and others, then `op_type` at 48; `hash_create_session`: `{algo,
 *   hash_result_len}`; `mac_create_session`: `{algo, hash_result_len, auth_key_len}`;
 *   `destroy_session`: `{le64 session_id}`). Keys follow as device-readable bytes. The answer is
 *   `virtio_crypto_session_input {le64 session_id; le32 status; le32 padding}` (16) for a create,
 *   `virtio_crypto_inhdr {u8 status}` for a destroy.
 * - data request `virtio_crypto_op_data_req` (72): header `{opcode, algo, le64 session_id, flag,
 *   padding}` (24) + a 48-byte union (`sym_req`: cipher para `{iv_len, src_data_len,
 *   dst_data_len}` at 24, `op_type` at 64; `hash_req`/`mac_req`: `{src_data_len,
 *   hash_result_len}` at 24). Then IV and source data (device-readable), destination data and the
 *   status byte, the last device-writable byte.
 * - config (60): status, max_dataqueues, crypto_services, cipher_algo_l/h, hash_algo,
 *   mac_algo_l/h, aead_algo, max_cipher_key_len, max_auth_key_len, akcipher_algo (le32 each),
 *   max_size (le64).
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const CRYPTO_DEVICE_ID = VIRTIO_ID.CRYPTO;
/** One data queue (QEMU's cryptodev-vhost-user `queues=1` default), then the control queue. */
export const CRYPTO_DATAQ = 0;
export const CRYPTO_CONTROLQ = 1;
/** QEMU makes data and control queues 1024 entries. */
export const CRYPTO_QUEUE_MAX_SIZE = 1024;

export const VIRTIO_CRYPTO_SERVICE_CIPHER = 0;
export const VIRTIO_CRYPTO_SERVICE_HASH = 1;
export const VIRTIO_CRYPTO_SERVICE_MAC = 2;
export const VIRTIO_CRYPTO_SERVICE_AEAD = 3;
export const VIRTIO_CRYPTO_SERVICE_AKCIPHER = 4;

const op = (service: number, o: number): number => (service << 8) | o;
export const VIRTIO_CRYPTO_CIPHER_CREATE_SESSION = op(VIRTIO_CRYPTO_SERVICE_CIPHER, 0x02);
export const VIRTIO_CRYPTO_CIPHER_DESTROY_SESSION = op(VIRTIO_CRYPTO_SERVICE_CIPHER, 0x03);
export const VIRTIO_CRYPTO_HASH_CREATE_SESSION = op(VIRTIO_CRYPTO_SERVICE_HASH, 0x02);
export const VIRTIO_CRYPTO_HASH_DESTROY_SESSION = op(VIRTIO_CRYPTO_SERVICE_HASH, 0x03);
export const VIRTIO_CRYPTO_MAC_CREATE_SESSION = op(VIRTIO_CRYPTO_SERVICE_MAC, 0x02);
export const VIRTIO_CRYPTO_MAC_DESTROY_SESSION = op(VIRTIO_CRYPTO_SERVICE_MAC, 0x03);
export const VIRTIO_CRYPTO_AEAD_CREATE_SESSION = op(VIRTIO_CRYPTO_SERVICE_AEAD, 0x02);
export const VIRTIO_CRYPTO_AEAD_DESTROY_SESSION = op(VIRTIO_CRYPTO_SERVICE_AEAD, 0x03);
export const VIRTIO_CRYPTO_AKCIPHER_CREATE_SESSION = op(VIRTIO_CRYPTO_SERVICE_AKCIPHER, 0x04);
export const VIRTIO_CRYPTO_AKCIPHER_DESTROY_SESSION = op(VIRTIO_CRYPTO_SERVICE_AKCIPHER, 0x05);

export const VIRTIO_CRYPTO_CIPHER_ENCRYPT = op(VIRTIO_CRYPTO_SERVICE_CIPHER, 0x00);
export const VIRTIO_CRYPTO_CIPHER_DECRYPT = op(VIRTIO_CRYPTO_SERVICE_CIPHER, 0x01);
export const VIRTIO_CRYPTO_HASH = op(VIRTIO_CRYPTO_SERVICE_HASH, 0x00);
export const VIRTIO_CRYPTO_MAC = op(VIRTIO_CRYPTO_SERVICE_MAC, 0x00);

export const VIRTIO_CRYPTO_CIPHER_AES_ECB = 2;
export const VIRTIO_CRYPTO_CIPHER_AES_CBC = 3;
export const VIRTIO_CRYPTO_CIPHER_AES_CTR = 4;

export const VIRTIO_CRYPTO_HASH_MD5 = 1;
export const VIRTIO_CRYPTO_HASH_SHA1 = 2;
export const VIRTIO_CRYPTO_HASH_SHA_224 = 3;
export const VIRTIO_CRYPTO_HASH_SHA_256 = 4;
export const VIRTIO_CRYPTO_HASH_SHA_384 = 5;
export const VIRTIO_CRYPTO_HASH_SHA_512 = 6;

export const VIRTIO_CRYPTO_MAC_HMAC_MD5 = 1;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA1 = 2;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_224 = 3;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_256 = 4;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_384 = 5;
export const VIRTIO_CRYPTO_MAC_HMAC_SHA_512 = 6;

export const VIRTIO_CRYPTO_OP_ENCRYPT = 1;
export const VIRTIO_CRYPTO_OP_DECRYPT = 2;

export const VIRTIO_CRYPTO_SYM_OP_NONE = 0;
export const VIRTIO_CRYPTO_SYM_OP_CIPHER = 1;
export const VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING = 2;

export const VIRTIO_CRYPTO_OK = 0;
export const VIRTIO_CRYPTO_ERR = 1;
export const VIRTIO_CRYPTO_BADMSG = 2;
export const VIRTIO_CRYPTO_NOTSUPP = 3;
export const VIRTIO_CRYPTO_INVSESS = 4;
export const VIRTIO_CRYPTO_NOSPC = 5;

export const VIRTIO_CRYPTO_S_HW_READY = 1 << 0;

export const CRYPTO_CTRL_REQ_SIZE = 72;
export const CRYPTO_SESSION_INPUT_SIZE = 16;
export const CRYPTO_DATA_REQ_SIZE = 72;
export const CRYPTO_CONFIG_SIZE = 60;

/** Offsets in the control request. */
export const CTRL_OFF_OPCODE = 0;
export const CTRL_OFF_ALGO = 4;
/** The 56-byte union starts here. */
export const CTRL_OFF_U = 16;
/** `sym_create_session.op_type`, after its 48-byte union. */
export const CTRL_OFF_SYM_OP_TYPE = CTRL_OFF_U + 48;

/** Offsets in the data request. */
export const DATA_OFF_OPCODE = 0;
export const DATA_OFF_SESSION_ID = 8;
/** The 48-byte union starts here. */
export const DATA_OFF_U = 24;
/** `sym_req.op_type`, after its 40-byte union. */
export const DATA_OFF_SYM_OP_TYPE = DATA_OFF_U + 40;

/** AES block size: IV and CTR counter length, CBC/ECB data granularity. */
export const AES_BLOCK = 16;
