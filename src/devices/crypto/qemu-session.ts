// SPDX-License-Identifier: Apache-2.0
/**
 * QEMU's session description, as its virtio-crypto forwards a guest's CREATE_SESSION to a
 * vhost-user back-end (CREATE_CRYPTO_SESSION, `VhostUserCryptoSession` in hw/virtio/vhost-user.c):
 * the device side of `DeviceSessionControl`. The transport passes the bytes through untouched.
 *
 * Two layouts, told apart by size; both carry `CryptoDevBackendSymSessionInfo` at offset 8
 * (`cipher_alg u32 @8, key_len @12, hash_alg @16, hash_result_len @20, auth_key_len @24, add_len
 * @28, op_type u8 @32, direction u8 @33, hash_mode u8 @34, alg_chain_order u8 @35`, then two QEMU
 * pointers to ignore), `key[64]` at 56 and `auth_key[512]` at 120:
 * - 1072 bytes (QEMU 8.0 and later, verified on the wire with 10.0): `op_code u64 @0` (the
 *   virtio CREATE_SESSION opcode), a union sized for asymmetric keys, `session_id i64 @1064`;
 * - 632 bytes (QEMU 7.2): `session_id i64 @0`, no op_code (op_type 1 means a cipher session).
 * The reply is the message with `session_id` set: the new id, or a negative value (minus the
 * virtio status) on failure, which QEMU reports to the guest as an error. A message of another
 * size gets an empty reply (QEMU fails the session). Hostile lengths are capped by the layout:
 * key_len at most 64, auth_key_len at most 512.
 * Does not own: the transport (vhost-user), the session table and algorithms (sessions.ts).
 */
import type { DeviceSessionControl } from '../../device/contract.js';
import { MAX_AUTH_KEY_LEN, checkCipher, checkDigest, type CreateResult, type SessionTable } from './sessions.js';
import {
  VIRTIO_CRYPTO_BADMSG,
  VIRTIO_CRYPTO_CIPHER_CREATE_SESSION,
  VIRTIO_CRYPTO_HASH_CREATE_SESSION,
  VIRTIO_CRYPTO_MAC_CREATE_SESSION,
  VIRTIO_CRYPTO_NOTSUPP,
  VIRTIO_CRYPTO_OK,
  VIRTIO_CRYPTO_SYM_OP_CIPHER,
} from './spec.js';

/** QEMU ≥ 8.0's `sizeof(VhostUserCryptoSession)`. */
export const QEMU_SESSION_SIZE = 1072;
/** QEMU 7.2's. */
export const QEMU72_SESSION_SIZE = 632;

const OFF_INFO = 8;
const OFF_KEY = 56;
const OFF_AUTH_KEY = 120;
const MAX_KEY = 64;

/** The fields of a session description this device reads. */
export interface QemuSessionInfo {
  /** The virtio CREATE_SESSION opcode (QEMU 7.2: derived from op_type). */
  opCode: number;
  cipherAlg: number;
  keyLen: number;
  hashAlg: number;
  hashResultLen: number;
  authKeyLen: number;
  opType: number;
  direction: number;
  key: Uint8Array;
  authKey: Uint8Array;
}

/** Reads a description, or undefined for a size neither layout has. */
export function parseQemuSession(m: Uint8Array): QemuSessionInfo | undefined {
  if (m.length !== QEMU_SESSION_SIZE && m.length !== QEMU72_SESSION_SIZE) return undefined;
  const v = new DataView(m.buffer, m.byteOffset, m.length);
  const keyLen = v.getUint32(OFF_INFO + 4, true);
  const authKeyLen = v.getUint32(OFF_INFO + 16, true);
  const opType = v.getUint8(OFF_INFO + 24);
  const opCode = m.length === QEMU_SESSION_SIZE ? Number(v.getBigUint64(0, true) & 0xffff_ffffn) : opType === VIRTIO_CRYPTO_SYM_OP_CIPHER ? VIRTIO_CRYPTO_CIPHER_CREATE_SESSION : 0;
  return {
    opCode,
    cipherAlg: v.getUint32(OFF_INFO, true),
    keyLen,
    hashAlg: v.getUint32(OFF_INFO + 8, true),
    hashResultLen: v.getUint32(OFF_INFO + 12, true),
    authKeyLen,
    opType,
    direction: v.getUint8(OFF_INFO + 25),
    // Copies, capped by the layout: a hostile length never reads past the key arrays.
    key: m.slice(OFF_KEY, OFF_KEY + Math.min(keyLen, MAX_KEY)),
    authKey: m.slice(OFF_AUTH_KEY, OFF_AUTH_KEY + Math.min(authKeyLen, MAX_AUTH_KEY_LEN)),
  };
}

/** Builds a description in the QEMU ≥ 8.0 layout (the conformance front-end and tests send it). */
export function qemuSessionMessage(i: Partial<QemuSessionInfo> & { opCode: number }): Uint8Array {
  const m = new Uint8Array(QEMU_SESSION_SIZE);
  const v = new DataView(m.buffer);
  v.setBigUint64(0, BigInt(i.opCode), true);
  v.setUint32(OFF_INFO, i.cipherAlg ?? 0, true);
  v.setUint32(OFF_INFO + 4, i.keyLen ?? i.key?.length ?? 0, true);
  v.setUint32(OFF_INFO + 8, i.hashAlg ?? 0, true);
  v.setUint32(OFF_INFO + 12, i.hashResultLen ?? 0, true);
  v.setUint32(OFF_INFO + 16, i.authKeyLen ?? i.authKey?.length ?? 0, true);
  v.setUint8(OFF_INFO + 24, i.opType ?? 0);
  v.setUint8(OFF_INFO + 25, i.direction ?? 0);
  m.set((i.key ?? new Uint8Array(0)).subarray(0, MAX_KEY), OFF_KEY);
  m.set((i.authKey ?? new Uint8Array(0)).subarray(0, MAX_AUTH_KEY_LEN), OFF_AUTH_KEY);
  return m;
}

/** The session id of a reply (either layout): the id, or negative for a failure. */
export function qemuSessionId(reply: Uint8Array): bigint | undefined {
  if (reply.length !== QEMU_SESSION_SIZE && reply.length !== QEMU72_SESSION_SIZE) return undefined;
  const v = new DataView(reply.buffer, reply.byteOffset, reply.length);
  return v.getBigInt64(reply.length === QEMU_SESSION_SIZE ? QEMU_SESSION_SIZE - 8 : 0, true);
}

/** Creates the session a description asks for in `table`. */
export function createFromQemu(table: SessionTable, i: QemuSessionInfo): CreateResult {
  switch (i.opCode) {
    case VIRTIO_CRYPTO_CIPHER_CREATE_SESSION: {
      // Algorithm chaining (op_type 2) is not supported.
      if (i.opType !== VIRTIO_CRYPTO_SYM_OP_CIPHER) return { status: VIRTIO_CRYPTO_NOTSUPP };
      const status = i.keyLen > MAX_KEY ? VIRTIO_CRYPTO_BADMSG : checkCipher(i.cipherAlg, i.keyLen, i.direction);
      return status === VIRTIO_CRYPTO_OK ? table.add({ service: 'cipher', algo: i.cipherAlg, key: i.key, direction: i.direction }) : { status };
    }
    case VIRTIO_CRYPTO_HASH_CREATE_SESSION: {
      const status = checkDigest(i.hashAlg, i.hashResultLen);
      return status === VIRTIO_CRYPTO_OK ? table.add({ service: 'hash', algo: i.hashAlg, resultLen: i.hashResultLen }) : { status };
    }
    case VIRTIO_CRYPTO_MAC_CREATE_SESSION: {
      const status = checkDigest(i.hashAlg, i.hashResultLen, i.authKeyLen);
      return status === VIRTIO_CRYPTO_OK ? table.add({ service: 'mac', algo: i.hashAlg, key: i.authKey, resultLen: i.hashResultLen }) : { status };
    }
    default:
      return { status: VIRTIO_CRYPTO_NOTSUPP };
  }
}

/** `DeviceSessionControl` over a session table, for QEMU's messages. */
export class QemuSessionControl implements DeviceSessionControl {
  readonly #table: SessionTable;
  readonly #onResult: (what: string, status: number) => void;

  constructor(table: SessionTable, onResult: (what: string, status: number) => void = () => {}) {
    this.#table = table;
    this.#onResult = onResult;
  }

  createSession(message: Uint8Array): Uint8Array {
    const info = parseQemuSession(message);
    if (info === undefined) {
      this.#onResult(`a session description of ${message.length} bytes (neither QEMU layout)`, -1);
      return new Uint8Array(0);
    }
    const r = createFromQemu(this.#table, info);
    this.#onResult(`CREATE_CRYPTO_SESSION opcode 0x${info.opCode.toString(16)}`, r.status);
    const reply = message.slice();
    const v = new DataView(reply.buffer);
    v.setBigInt64(reply.length === QEMU_SESSION_SIZE ? QEMU_SESSION_SIZE - 8 : 0, r.id ?? -BigInt(r.status), true);
    return reply;
  }

  closeSession(id: bigint): boolean {
    return this.#table.remove(id) === VIRTIO_CRYPTO_OK;
  }
}
