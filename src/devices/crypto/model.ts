// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-crypto device (VIRTIO 1.3 §5.9): symmetric ciphers, hashes and MACs on node:crypto.
 *
 * Owns: both ways sessions are made and the data path.
 * - the control queue (a complete virtio-crypto device, as the in-process harness and a
 *   front-end that forwards the queue use it): CIPHER/HASH/MAC CREATE_SESSION with the key after
 *   the 72-byte request, answered with `virtio_crypto_session_input`; DESTROY_SESSION answered
 *   with a status byte; AEAD and asymmetric sessions NOTSUPP.
 * - out-of-band sessions (`sessions`, qemu-session.ts): QEMU's virtio-crypto keeps the control
 *   queue and forwards sessions over vhost-user; both paths share one session table.
 * - the data queue: CIPHER_ENCRYPT/DECRYPT (the session's direction must match the opcode), HASH
 *   and MAC requests. The output goes at the start of the device-writable part and the status in
 *   its last byte; the used length is the whole device-writable part, as QEMU's own virtio-crypto
 *   reports it. Statuses: INVSESS for an id that is not live, BADMSG for lengths that do not fit
 *   the chain or the algorithm (or a request past the size cap: nothing is allocated by a
 *   guest-claimed length), NOTSUPP for other opcodes and for algorithm chaining.
 * Guest faults never throw; a chain without a writable byte cannot be answered (used length 0).
 * QEMU's front-end forwards none of the guest's features and never enables the data ring (both
 * verified on QEMU 10.0): `featuresWhenUndisclosed` makes the vhost-user transport run the device
 * with VERSION_1, INDIRECT_DESC and EVENT_IDX, which QEMU's guest has negotiated.
 * Does not own: algorithms and the table (sessions.ts), QEMU's message (qemu-session.ts).
 */
import type { DeviceContext, DeviceLog, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import type { CryptoMetrics } from './metrics.js';
import { QemuSessionControl } from './qemu-session.js';
import { CIPHER_ALGO_MASK, DIGEST_ALGO_MASK, MAX_AUTH_KEY_LEN, MAX_CIPHER_KEY_LEN, SessionTable, checkCipher, checkDigest, runCipher, runDigest, type CreateResult, type Session } from './sessions.js';
import {
  CRYPTO_CONFIG_SIZE,
  CRYPTO_CONTROLQ,
  CRYPTO_CTRL_REQ_SIZE,
  CRYPTO_DATAQ,
  CRYPTO_DATA_REQ_SIZE,
  CRYPTO_DEVICE_ID,
  CRYPTO_QUEUE_MAX_SIZE,
  CRYPTO_SESSION_INPUT_SIZE,
  CTRL_OFF_SYM_OP_TYPE,
  CTRL_OFF_U,
  DATA_OFF_SESSION_ID,
  DATA_OFF_SYM_OP_TYPE,
  DATA_OFF_U,
  VIRTIO_CRYPTO_AEAD_CREATE_SESSION,
  VIRTIO_CRYPTO_AEAD_DESTROY_SESSION,
  VIRTIO_CRYPTO_AKCIPHER_CREATE_SESSION,
  VIRTIO_CRYPTO_AKCIPHER_DESTROY_SESSION,
  VIRTIO_CRYPTO_BADMSG,
  VIRTIO_CRYPTO_CIPHER_CREATE_SESSION,
  VIRTIO_CRYPTO_CIPHER_DECRYPT,
  VIRTIO_CRYPTO_CIPHER_DESTROY_SESSION,
  VIRTIO_CRYPTO_CIPHER_ENCRYPT,
  VIRTIO_CRYPTO_ERR,
  VIRTIO_CRYPTO_HASH,
  VIRTIO_CRYPTO_HASH_CREATE_SESSION,
  VIRTIO_CRYPTO_HASH_DESTROY_SESSION,
  VIRTIO_CRYPTO_INVSESS,
  VIRTIO_CRYPTO_MAC,
  VIRTIO_CRYPTO_MAC_CREATE_SESSION,
  VIRTIO_CRYPTO_MAC_DESTROY_SESSION,
  VIRTIO_CRYPTO_NOTSUPP,
  VIRTIO_CRYPTO_OK,
  VIRTIO_CRYPTO_OP_DECRYPT,
  VIRTIO_CRYPTO_OP_ENCRYPT,
  VIRTIO_CRYPTO_SERVICE_CIPHER,
  VIRTIO_CRYPTO_SERVICE_HASH,
  VIRTIO_CRYPTO_SERVICE_MAC,
  VIRTIO_CRYPTO_SYM_OP_CIPHER,
  VIRTIO_CRYPTO_S_HW_READY,
} from './spec.js';

export interface CryptoOptions {
  /** Live sessions at most (default 1024); more get NOSPC. */
  readonly maxSessions?: number;
  /** Largest source of one request in bytes (default 1 MiB); larger get BADMSG. */
  readonly maxRequestBytes?: number;
}

const le32 = (v: DataView, off: number): number => v.getUint32(off, true);

export class CryptoDevice implements VirtioDevice {
  readonly deviceId = CRYPTO_DEVICE_ID;
  readonly name = 'crypto';
  readonly queueMaxSizes = [CRYPTO_QUEUE_MAX_SIZE, CRYPTO_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  /**
   * QEMU's cryptodev-vhost-user sends SET_FEATURES with bit 30 only, never SET_VRING_ENABLE, while
   * its guest negotiated VERSION_1, INDIRECT_DESC and EVENT_IDX (seen on QEMU 10.0): run with those.
   */
  readonly featuresWhenUndisclosed = this.offeredFeatures;
  readonly configSize = CRYPTO_CONFIG_SIZE;
  readonly sessions: QemuSessionControl;
  readonly #table: SessionTable;
  readonly #maxRequest: number;
  #ctx: DeviceContext | undefined;
  #log: DeviceLog | undefined;
  #counters = { dataRequests: 0, encrypted: 0, decrypted: 0, hashed: 0, maced: 0, bytes: 0, invalidSession: 0, badMessages: 0, notSupported: 0, malformed: 0, controlRequests: 0, forwardedSessions: 0, refusedSessions: 0 };

  constructor(opts: CryptoOptions = {}) {
    this.#table = new SessionTable(opts.maxSessions ?? 1024);
    this.#maxRequest = opts.maxRequestBytes ?? 1 << 20;
    this.sessions = new QemuSessionControl(this.#table, (what, status) => {
      this.#counters.forwardedSessions++;
      if (status !== VIRTIO_CRYPTO_OK) {
        this.#counters.refusedSessions++;
        this.#log?.warn(`crypto: ${what}: refused with status ${status}`);
      }
    });
  }

  readConfig(offset: number, length: number): Uint8Array {
    const cfg = new Uint8Array(CRYPTO_CONFIG_SIZE);
    const v = new DataView(cfg.buffer);
    v.setUint32(0, VIRTIO_CRYPTO_S_HW_READY, true);
    v.setUint32(4, 1, true); // max_dataqueues
    v.setUint32(8, (1 << VIRTIO_CRYPTO_SERVICE_CIPHER) | (1 << VIRTIO_CRYPTO_SERVICE_HASH) | (1 << VIRTIO_CRYPTO_SERVICE_MAC), true);
    v.setUint32(12, CIPHER_ALGO_MASK, true); // cipher_algo_l
    v.setUint32(20, DIGEST_ALGO_MASK, true); // hash_algo
    v.setUint32(24, DIGEST_ALGO_MASK, true); // mac_algo_l (HMAC ids match the hash ids)
    v.setUint32(36, MAX_CIPHER_KEY_LEN, true);
    v.setUint32(40, MAX_AUTH_KEY_LEN, true);
    v.setBigUint64(52, BigInt(this.#maxRequest), true);
    return cfg.slice(offset, offset + length);
  }

  /** The config space is read-only (§5.9.4). */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#log = ctx.log;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === CRYPTO_DATAQ) serveQueue(ctx, index, (chain) => this.#data(chain));
    else if (index === CRYPTO_CONTROLQ) serveQueue(ctx, index, (chain) => this.#control(chain));
  }

  /** A device reset destroys the guest's sessions (they are the driver's state). */
  reset(): void {
    this.#ctx = undefined;
    this.#table.clear();
  }

  metrics(): CryptoMetrics {
    const q = this.#ctx?.queue(CRYPTO_DATAQ);
    return {
      device: 'crypto',
      ...this.#counters,
      sessions: this.#table.size,
      sessionsCreated: this.#table.created,
      sessionsClosed: this.#table.closed,
      rejectedChains: q?.stats.chainsRejected ?? 0,
      notifications: q?.stats.notificationsSent ?? 0,
    };
  }

  /* ---- control queue ----------------------------------------------------------------------- */

  #control(chain: DescriptorChain): number {
    this.#counters.controlRequests++;
    if (chain.readableLength < CRYPTO_CTRL_REQ_SIZE || chain.writableLength < 1) {
      this.#counters.malformed++;
      return 0;
    }
    const reader = chain.reader();
    const req = reader.readBytes(CRYPTO_CTRL_REQ_SIZE);
    const v = new DataView(req.buffer);
    const opcode = le32(v, 0);
    const extra = chain.readableLength - CRYPTO_CTRL_REQ_SIZE;
    const key = (n: number): Uint8Array | undefined => (n <= extra && n <= MAX_AUTH_KEY_LEN ? reader.readBytes(n) : undefined);
    switch (opcode) {
      case VIRTIO_CRYPTO_CIPHER_CREATE_SESSION: {
        const algo = le32(v, CTRL_OFF_U);
        const keyLen = le32(v, CTRL_OFF_U + 4);
        const direction = le32(v, CTRL_OFF_U + 8);
        if (le32(v, CTRL_OFF_SYM_OP_TYPE) !== VIRTIO_CRYPTO_SYM_OP_CIPHER) return this.#created(chain, { status: VIRTIO_CRYPTO_NOTSUPP });
        const k = keyLen <= MAX_CIPHER_KEY_LEN ? key(keyLen) : undefined;
        const status = k === undefined ? VIRTIO_CRYPTO_BADMSG : checkCipher(algo, keyLen, direction);
        return this.#created(chain, status === VIRTIO_CRYPTO_OK && k !== undefined ? this.#table.add({ service: 'cipher', algo, key: k, direction }) : { status });
      }
      case VIRTIO_CRYPTO_HASH_CREATE_SESSION: {
        const algo = le32(v, CTRL_OFF_U);
        const resultLen = le32(v, CTRL_OFF_U + 4);
        const status = checkDigest(algo, resultLen);
        return this.#created(chain, status === VIRTIO_CRYPTO_OK ? this.#table.add({ service: 'hash', algo, resultLen }) : { status });
      }
      case VIRTIO_CRYPTO_MAC_CREATE_SESSION: {
        const algo = le32(v, CTRL_OFF_U);
        const resultLen = le32(v, CTRL_OFF_U + 4);
        const keyLen = le32(v, CTRL_OFF_U + 8);
        const k = key(keyLen);
        const status = k === undefined ? VIRTIO_CRYPTO_BADMSG : checkDigest(algo, resultLen, keyLen);
        return this.#created(chain, status === VIRTIO_CRYPTO_OK && k !== undefined ? this.#table.add({ service: 'mac', algo, key: k, resultLen }) : { status });
      }
      case VIRTIO_CRYPTO_AEAD_CREATE_SESSION:
      case VIRTIO_CRYPTO_AKCIPHER_CREATE_SESSION:
        return this.#created(chain, { status: VIRTIO_CRYPTO_NOTSUPP });
      case VIRTIO_CRYPTO_CIPHER_DESTROY_SESSION:
      case VIRTIO_CRYPTO_HASH_DESTROY_SESSION:
      case VIRTIO_CRYPTO_MAC_DESTROY_SESSION:
        return this.#status(chain, this.#table.remove(v.getBigUint64(CTRL_OFF_U, true)));
      case VIRTIO_CRYPTO_AEAD_DESTROY_SESSION:
      case VIRTIO_CRYPTO_AKCIPHER_DESTROY_SESSION:
        return this.#status(chain, VIRTIO_CRYPTO_INVSESS);
      default:
        return chain.writableLength >= CRYPTO_SESSION_INPUT_SIZE ? this.#created(chain, { status: VIRTIO_CRYPTO_NOTSUPP }) : this.#status(chain, VIRTIO_CRYPTO_NOTSUPP);
    }
  }

  /** Answers a create with `virtio_crypto_session_input`, or with a bare status when it does not fit. */
  #created(chain: DescriptorChain, r: CreateResult): number {
    if (r.status === VIRTIO_CRYPTO_NOTSUPP) this.#counters.notSupported++;
    if (r.status !== VIRTIO_CRYPTO_OK) this.#counters.refusedSessions++;
    if (chain.writableLength < CRYPTO_SESSION_INPUT_SIZE) return this.#status(chain, r.status === VIRTIO_CRYPTO_OK ? VIRTIO_CRYPTO_ERR : r.status);
    const out = new Uint8Array(CRYPTO_SESSION_INPUT_SIZE);
    const v = new DataView(out.buffer);
    v.setBigUint64(0, r.id ?? 0n, true);
    v.setUint32(8, r.status, true);
    const w = chain.writer();
    w.write(out);
    return w.consumed;
  }

  /* ---- data queue -------------------------------------------------------------------------- */

  #data(chain: DescriptorChain): number {
    this.#counters.dataRequests++;
    if (chain.writableLength < 1) {
      this.#counters.malformed++;
      return 0;
    }
    if (chain.readableLength < CRYPTO_DATA_REQ_SIZE) return this.#status(chain, VIRTIO_CRYPTO_BADMSG);
    const reader = chain.reader();
    const v = new DataView(reader.readBytes(CRYPTO_DATA_REQ_SIZE).buffer);
    const opcode = le32(v, 0);
    const id = v.getBigUint64(DATA_OFF_SESSION_ID, true);
    if (opcode !== VIRTIO_CRYPTO_CIPHER_ENCRYPT && opcode !== VIRTIO_CRYPTO_CIPHER_DECRYPT && opcode !== VIRTIO_CRYPTO_HASH && opcode !== VIRTIO_CRYPTO_MAC) return this.#status(chain, VIRTIO_CRYPTO_NOTSUPP);
    const s = this.#table.get(id);
    if (s === undefined) return this.#status(chain, VIRTIO_CRYPTO_INVSESS);
    const readable = chain.readableLength - CRYPTO_DATA_REQ_SIZE;
    const writable = chain.writableLength - 1;
    if (opcode === VIRTIO_CRYPTO_CIPHER_ENCRYPT || opcode === VIRTIO_CRYPTO_CIPHER_DECRYPT) {
      if (s.service !== 'cipher') return this.#status(chain, VIRTIO_CRYPTO_INVSESS);
      if (le32(v, DATA_OFF_SYM_OP_TYPE) !== VIRTIO_CRYPTO_SYM_OP_CIPHER) return this.#status(chain, VIRTIO_CRYPTO_NOTSUPP);
      const ivLen = le32(v, DATA_OFF_U);
      const srcLen = le32(v, DATA_OFF_U + 4);
      const dstLen = le32(v, DATA_OFF_U + 8);
      const direction = opcode === VIRTIO_CRYPTO_CIPHER_ENCRYPT ? VIRTIO_CRYPTO_OP_ENCRYPT : VIRTIO_CRYPTO_OP_DECRYPT;
      if (direction !== s.direction || ivLen > 64 || srcLen > this.#maxRequest || ivLen + srcLen > readable || dstLen < srcLen || dstLen > writable) return this.#status(chain, VIRTIO_CRYPTO_BADMSG);
      const iv = reader.readBytes(ivLen);
      const out = runCipher(s, iv, reader.readBytes(srcLen));
      if (typeof out === 'number') return this.#status(chain, out);
      this.#counters[direction === VIRTIO_CRYPTO_OP_ENCRYPT ? 'encrypted' : 'decrypted']++;
      this.#counters.bytes += srcLen;
      return this.#output(chain, out);
    }
    const wanted: Session['service'] = opcode === VIRTIO_CRYPTO_HASH ? 'hash' : 'mac';
    if (s.service !== wanted) return this.#status(chain, VIRTIO_CRYPTO_INVSESS);
    const srcLen = le32(v, DATA_OFF_U);
    const resultLen = le32(v, DATA_OFF_U + 4);
    if (srcLen > this.#maxRequest || srcLen > readable || resultLen !== s.resultLen || resultLen > writable) return this.#status(chain, VIRTIO_CRYPTO_BADMSG);
    const out = runDigest(s, reader.readBytes(srcLen));
    if (typeof out === 'number') return this.#status(chain, out);
    this.#counters[s.service === 'hash' ? 'hashed' : 'maced']++;
    this.#counters.bytes += srcLen;
    return this.#output(chain, out);
  }

  /** Output at the start of the writable part, OK in its last byte; the used length is all of it. */
  #output(chain: DescriptorChain, out: Uint8Array): number {
    const w = chain.writer();
    w.write(out);
    w.skip(chain.writableLength - 1 - out.length);
    w.writeU8(VIRTIO_CRYPTO_OK);
    return w.consumed;
  }

  /** A status alone, in the last writable byte. */
  #status(chain: DescriptorChain, status: number): number {
    if (status === VIRTIO_CRYPTO_INVSESS) this.#counters.invalidSession++;
    else if (status === VIRTIO_CRYPTO_BADMSG) this.#counters.badMessages++;
    else if (status === VIRTIO_CRYPTO_NOTSUPP) this.#counters.notSupported++;
    const w = chain.writer();
    w.skip(chain.writableLength - 1);
    w.writeU8(status);
    return w.consumed;
  }
}
