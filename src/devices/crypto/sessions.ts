// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto sessions: what a session holds, the table of live ones (capped), their creation
 * from the spec's parameters, and the algorithms behind them (node:crypto).
 *
 * Owns: the supported algorithms, each checked at creation (a key of the wrong length, an
 * unknown algorithm, a hash result longer than the digest: refused with the spec's status, never
 * an exception), session ids (from 1, never reused while the device lives), and running one
 * operation of a session. Supported: AES-ECB, AES-CBC and AES-CTR with 128/192/256-bit keys;
 * hashes MD5, SHA-1, SHA-224/256/384/512; HMAC over the same. AEAD, asymmetric ciphers and
 * algorithm chaining answer NOTSUPP.
 * Does not own: request layouts (model.ts for the queues, qemu-session.ts for vhost-user's).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import {
  AES_BLOCK,
  VIRTIO_CRYPTO_BADMSG,
  VIRTIO_CRYPTO_CIPHER_AES_CBC,
  VIRTIO_CRYPTO_CIPHER_AES_CTR,
  VIRTIO_CRYPTO_CIPHER_AES_ECB,
  VIRTIO_CRYPTO_INVSESS,
  VIRTIO_CRYPTO_NOSPC,
  VIRTIO_CRYPTO_NOTSUPP,
  VIRTIO_CRYPTO_OK,
  VIRTIO_CRYPTO_OP_DECRYPT,
  VIRTIO_CRYPTO_OP_ENCRYPT,
} from './spec.js';

/** node:crypto names of the AES modes, by VIRTIO algorithm. */
const AES_MODES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_CRYPTO_CIPHER_AES_ECB, 'ecb'],
  [VIRTIO_CRYPTO_CIPHER_AES_CBC, 'cbc'],
  [VIRTIO_CRYPTO_CIPHER_AES_CTR, 'ctr'],
]);

/** node:crypto digest names and lengths, by VIRTIO hash (and HMAC: the same numbers) algorithm. */
const DIGESTS: ReadonlyMap<number, { name: string; len: number }> = new Map([
  [1, { name: 'md5', len: 16 }],
  [2, { name: 'sha1', len: 20 }],
  [3, { name: 'sha224', len: 28 }],
  [4, { name: 'sha256', len: 32 }],
  [5, { name: 'sha384', len: 48 }],
  [6, { name: 'sha512', len: 64 }],
]);

/** Bit masks for the config space: the algorithms above. */
export const CIPHER_ALGO_MASK = [...AES_MODES.keys()].reduce((m, a) => m | (1 << a), 0);
export const DIGEST_ALGO_MASK = [...DIGESTS.keys()].reduce((m, a) => m | (1 << a), 0);
export const MAX_CIPHER_KEY_LEN = 32;
/** Longest HMAC key accepted (QEMU's vhost-user session message carries up to 512). */
export const MAX_AUTH_KEY_LEN = 512;

export type Session =
  | { readonly service: 'cipher'; readonly algo: number; readonly key: Uint8Array; readonly direction: number }
  | { readonly service: 'hash'; readonly algo: number; readonly resultLen: number }
  | { readonly service: 'mac'; readonly algo: number; readonly key: Uint8Array; readonly resultLen: number };

/** A status, or a session id with status OK. */
export type CreateResult = { readonly status: number; readonly id?: bigint };

/** Checks a cipher session's parameters: VIRTIO_CRYPTO_OK or the refusal. */
export function checkCipher(algo: number, keyLen: number, direction: number): number {
  if (!AES_MODES.has(algo)) return VIRTIO_CRYPTO_NOTSUPP;
  if (keyLen !== 16 && keyLen !== 24 && keyLen !== 32) return VIRTIO_CRYPTO_BADMSG;
  if (direction !== VIRTIO_CRYPTO_OP_ENCRYPT && direction !== VIRTIO_CRYPTO_OP_DECRYPT) return VIRTIO_CRYPTO_BADMSG;
  return VIRTIO_CRYPTO_OK;
}

/** Checks a hash or HMAC session's parameters. */
export function checkDigest(algo: number, resultLen: number, keyLen = 0): number {
  const d = DIGESTS.get(algo);
  if (d === undefined) return VIRTIO_CRYPTO_NOTSUPP;
  if (resultLen < 1 || resultLen > d.len || keyLen > MAX_AUTH_KEY_LEN) return VIRTIO_CRYPTO_BADMSG;
  return VIRTIO_CRYPTO_OK;
}

/** The live sessions of one device, at most `max` of them. */
export class SessionTable {
  readonly max: number;
  readonly #sessions = new Map<bigint, Session>();
  #next = 1n;
  created = 0;
  closed = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(id: bigint): Session | undefined {
    return this.#sessions.get(id);
  }

  /** Adds a checked session; NOSPC when the table is full. */
  add(s: Session): CreateResult {
    if (this.#sessions.size >= this.max) return { status: VIRTIO_CRYPTO_NOSPC };
    const id = this.#next++;
    this.#sessions.set(id, s);
    this.created++;
    return { status: VIRTIO_CRYPTO_OK, id };
  }

  /** Closes a session: OK, or INVSESS for an id that is not live. */
  remove(id: bigint): number {
    if (!this.#sessions.delete(id)) return VIRTIO_CRYPTO_INVSESS;
    this.closed++;
    return VIRTIO_CRYPTO_OK;
  }

  clear(): void {
    this.#sessions.clear();
  }
}

/**
 * Runs a cipher session over `src` with `iv`: the output (as long as `src`), or a status. CBC and
 * ECB need whole blocks; CBC and CTR a 16-byte IV (ECB takes none).
 */
export function runCipher(s: Extract<Session, { service: 'cipher' }>, iv: Uint8Array, src: Uint8Array): Uint8Array | number {
  const mode = AES_MODES.get(s.algo);
  if (mode === undefined) return VIRTIO_CRYPTO_NOTSUPP;
  if (mode !== 'ctr' && src.length % AES_BLOCK !== 0) return VIRTIO_CRYPTO_BADMSG;
  if (mode === 'ecb' ? iv.length !== 0 : iv.length !== AES_BLOCK) return VIRTIO_CRYPTO_BADMSG;
  const name = `aes-${s.key.length * 8}-${mode}`;
  const c = s.direction === VIRTIO_CRYPTO_OP_ENCRYPT ? createCipheriv(name, s.key, mode === 'ecb' ? null : iv) : createDecipheriv(name, s.key, mode === 'ecb' ? null : iv);
  c.setAutoPadding(false);
  const out = Buffer.concat([c.update(src), c.final()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Runs a hash or HMAC session: the result truncated to the session's length. */
export function runDigest(s: Extract<Session, { service: 'hash' | 'mac' }>, src: Uint8Array): Uint8Array | number {
  const d = DIGESTS.get(s.algo);
  if (d === undefined) return VIRTIO_CRYPTO_NOTSUPP;
  const h = s.service === 'mac' ? createHmac(d.name, s.key) : createHash(d.name);
  return new Uint8Array(h.update(src).digest()).subarray(0, s.resultLen);
}
