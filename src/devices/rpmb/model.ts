// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-rpmb device (VIRTIO 1.3 §5.19): an authenticated, replay-protected partition.
 *
 * Owns: the request rules. A chain is request frames (device-readable, whole 512-byte frames)
 * followed by room for response frames (device-writable). Operations:
 * - PROGRAM_KEY (+ optional RESULT_READ): stores the key once; a second attempt is GENERAL_FAILURE.
 * - GET_WRITE_COUNTER: the counter with the request's nonce, MACed; NO_AUTH_KEY before a key.
 * - DATA_WRITE × block_count (+ RESULT_READ): checked in the order §12a of device-wave-2 gives —
 *   key programmed (NO_AUTH_KEY), block count within max_wr_cnt (GENERAL_FAILURE), counter not
 *   expired (WRITE_FAILURE | EXPIRED), address range (ADDR_FAILURE), MAC (AUTH_FAILURE), counter
 *   equals the device's (COUNT_FAILURE: a replayed frame has an old counter) — then the data is
 *   written, the counter incremented and both persisted before the response says OK.
 * - DATA_READ: block_count response frames, each with data, nonce and address, MAC in the last.
 * - RESULT_READ alone: the result of the last PROGRAM_KEY or DATA_WRITE.
 * The response's used length is the bytes of response frames written (0 when there is no room).
 * Guest faults never throw: frames are copied out of guest memory (at most max_wr_cnt + 1 of
 * them, so a huge chain cannot make the host allocate), and a bad request gets a result code.
 * Does not own: the state file (`host.ts`), MAC arithmetic (`frames.ts`), rings.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { RpmbConfigError } from './errors.js';
import { macMatches, newFrame, signFrames } from './frames.js';
import type { RpmbState, RpmbStore } from './host.js';
import type { RpmbMetrics } from './metrics.js';
import {
  RPMB_BLOCK_SIZE,
  RPMB_CAPACITY_UNIT,
  RPMB_CONFIG_SIZE,
  RPMB_DEVICE_ID,
  RPMB_FRAME_SIZE,
  RPMB_KEY_SIZE,
  RPMB_MAX_CAPACITY,
  RPMB_NONCE_SIZE,
  RPMB_OFF_DATA,
  RPMB_OFF_KEY_MAC,
  RPMB_OFF_NONCE,
  RPMB_QUEUE_MAX_SIZE,
  RPMB_REQUESTQ,
  RPMB_WRITE_COUNTER_MAX,
  VIRTIO_RPMB_REQ_DATA_READ,
  VIRTIO_RPMB_REQ_DATA_WRITE,
  VIRTIO_RPMB_REQ_GET_WRITE_COUNTER,
  VIRTIO_RPMB_REQ_PROGRAM_KEY,
  VIRTIO_RPMB_REQ_RESULT_READ,
  VIRTIO_RPMB_RES_ADDR_FAILURE,
  VIRTIO_RPMB_RES_AUTH_FAILURE,
  VIRTIO_RPMB_RES_COUNT_FAILURE,
  VIRTIO_RPMB_RES_GENERAL_FAILURE,
  VIRTIO_RPMB_RES_NO_AUTH_KEY,
  VIRTIO_RPMB_RES_OK,
  VIRTIO_RPMB_RES_WRITE_COUNTER_EXPIRED,
  VIRTIO_RPMB_RES_WRITE_FAILURE,
  VIRTIO_RPMB_RESP_DATA_READ,
  VIRTIO_RPMB_RESP_DATA_WRITE,
  VIRTIO_RPMB_RESP_GET_COUNTER,
  VIRTIO_RPMB_RESP_PROGRAM_KEY,
  readFrameFields,
} from './spec.js';

export interface RpmbOptions {
  store: RpmbStore;
  /** Capacity in 128 KiB units (1..128; default 1). */
  capacity?: number;
  /** Blocks per DATA_WRITE (1..255; default 2). */
  maxWrite?: number;
  /** Blocks per DATA_READ (1..255; default 16). */
  maxRead?: number;
}

/** The result of the last PROGRAM_KEY or DATA_WRITE, for RESULT_READ. */
interface LastResult {
  reqResp: number;
  result: number;
  address: number;
}

export class RpmbDevice implements VirtioDevice {
  readonly deviceId = RPMB_DEVICE_ID;
  readonly name = 'rpmb';
  readonly queueMaxSizes = [RPMB_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  readonly configSize = RPMB_CONFIG_SIZE;
  readonly #store: RpmbStore;
  readonly #state: RpmbState;
  readonly #capacity: number;
  readonly #maxWrite: number;
  readonly #maxRead: number;
  #last: LastResult | undefined;
  #ctx: DeviceContext | undefined;
  #counters = { requests: 0, keyPrograms: 0, writes: 0, reads: 0, counterReads: 0, authFailures: 0, counterFailures: 0, otherFailures: 0, malformed: 0 };

  /** @throws RpmbConfigError RPMB_BAD_OPTION, or the store's load errors */
  constructor(opts: RpmbOptions) {
    this.#capacity = opts.capacity ?? 1;
    this.#maxWrite = opts.maxWrite ?? 2;
    this.#maxRead = opts.maxRead ?? 16;
    for (const [name, v, max] of [['capacity', this.#capacity, RPMB_MAX_CAPACITY], ['maxWrite', this.#maxWrite, 255], ['maxRead', this.#maxRead, 255]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > max) throw new RpmbConfigError('RPMB_BAD_OPTION', `${name} must be an integer from 1 to ${max}, got ${v}`);
    }
    this.#store = opts.store;
    this.#state = opts.store.load();
    if (this.#state.data.length !== this.#capacity * RPMB_CAPACITY_UNIT) throw new RpmbConfigError('RPMB_BAD_STATE_FILE', `the state holds ${this.#state.data.length} bytes, expected ${this.#capacity * RPMB_CAPACITY_UNIT}`);
  }

  /** Blocks of 256 bytes in the partition. */
  get blocks(): number {
    return (this.#capacity * RPMB_CAPACITY_UNIT) / RPMB_BLOCK_SIZE;
  }

  readConfig(offset: number, length: number): Uint8Array {
    return Uint8Array.of(this.#capacity, this.#maxWrite, this.#maxRead).slice(offset, offset + length);
  }

  /** §5.19.4: the configuration space is read-only. */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  queueNotify(index: number): void {
    if (index !== RPMB_REQUESTQ || this.#ctx === undefined) return;
    serveQueue(this.#ctx, index, (chain) => this.#serve(chain));
  }

  reset(): void {
    this.#ctx = undefined;
    this.#last = undefined;
  }

  metrics(): RpmbMetrics {
    const q = this.#ctx?.queue(RPMB_REQUESTQ);
    return {
      device: 'rpmb',
      ...this.#counters,
      writeCounter: this.#state.writeCounter,
      keyProgrammed: this.#state.key !== null,
      rejectedChains: q?.stats.chainsRejected ?? 0,
      notifications: q?.stats.notificationsSent ?? 0,
    };
  }

  #serve(chain: DescriptorChain): number {
    this.#counters.requests++;
    const nFrames = Math.floor(chain.readableLength / RPMB_FRAME_SIZE);
    if (nFrames === 0 || chain.readableLength % RPMB_FRAME_SIZE !== 0) {
      this.#counters.malformed++;
      this.#ctx?.log.warn(`rpmb: a request of ${chain.readableLength} readable bytes is not whole 512-byte frames`);
      return this.#respond(chain, [newFrame({ reqResp: 0, result: VIRTIO_RPMB_RES_GENERAL_FAILURE })]);
    }
    // Cap what we copy: a DATA_WRITE has at most maxWrite data frames plus a RESULT_READ.
    const copied = Math.min(nFrames, this.#maxWrite + 1);
    const reader = chain.reader();
    const frames = reader.readBytes(copied * RPMB_FRAME_SIZE);
    // Past the cap only the chain's last frame matters (a RESULT_READ after too many data frames).
    if (nFrames > copied) reader.skip((nFrames - copied - 1) * RPMB_FRAME_SIZE);
    const lastFrame = nFrames > copied ? reader.readBytes(RPMB_FRAME_SIZE) : frames.subarray((copied - 1) * RPMB_FRAME_SIZE);
    const first = readFrameFields(frames);
    switch (first.reqResp) {
      case VIRTIO_RPMB_REQ_PROGRAM_KEY:
        return this.#afterResultRead(chain, frames, lastFrame, 1, this.#programKey(frames));
      case VIRTIO_RPMB_REQ_GET_WRITE_COUNTER:
        return this.#respond(chain, [this.#counterFrame(frames)]);
      case VIRTIO_RPMB_REQ_DATA_WRITE: {
        const n = Math.max(1, first.blockCount);
        return this.#afterResultRead(chain, frames, lastFrame, n, this.#dataWrite(frames, nFrames));
      }
      case VIRTIO_RPMB_REQ_DATA_READ:
        return this.#respond(chain, this.#dataRead(frames, Math.floor(chain.writableLength / RPMB_FRAME_SIZE)));
      case VIRTIO_RPMB_REQ_RESULT_READ:
        return this.#respond(chain, [this.#resultFrame()]);
      default:
        this.#counters.otherFailures++;
        return this.#respond(chain, [newFrame({ reqResp: first.reqResp, result: VIRTIO_RPMB_RES_GENERAL_FAILURE })]);
    }
  }

  /**
   * When the frame after the operation's frames (index `at`) is a RESULT_READ, answers it with the
   * result just recorded; otherwise there is no response (the driver may send RESULT_READ later).
   * Frames past the copy cap are judged by the chain's last frame.
   */
  #afterResultRead(chain: DescriptorChain, frames: Uint8Array, lastFrame: Uint8Array, at: number, last: LastResult): number {
    this.#last = last;
    const next = (at + 1) * RPMB_FRAME_SIZE <= frames.length ? frames.subarray(at * RPMB_FRAME_SIZE) : lastFrame;
    if (readFrameFields(next).reqResp !== VIRTIO_RPMB_REQ_RESULT_READ) return 0;
    return this.#respond(chain, [this.#resultFrame()]);
  }

  #programKey(frames: Uint8Array): LastResult {
    const f = readFrameFields(frames);
    let result = VIRTIO_RPMB_RES_OK;
    if (this.#state.key !== null || f.blockCount > 1) result = VIRTIO_RPMB_RES_GENERAL_FAILURE;
    else {
      this.#state.key = frames.slice(RPMB_OFF_KEY_MAC, RPMB_OFF_KEY_MAC + RPMB_KEY_SIZE);
      result = this.#persist();
      if (result === VIRTIO_RPMB_RES_OK) this.#counters.keyPrograms++;
      else this.#state.key = null;
    }
    this.#count(result);
    return { reqResp: VIRTIO_RPMB_RESP_PROGRAM_KEY, result, address: 0 };
  }

  #counterFrame(frames: Uint8Array): Uint8Array {
    const key = this.#state.key;
    const result = key === null ? VIRTIO_RPMB_RES_NO_AUTH_KEY : VIRTIO_RPMB_RES_OK | this.#expired();
    const out = newFrame({ reqResp: VIRTIO_RPMB_RESP_GET_COUNTER, result, writeCounter: this.#state.writeCounter });
    out.set(frames.subarray(RPMB_OFF_NONCE, RPMB_OFF_NONCE + RPMB_NONCE_SIZE), RPMB_OFF_NONCE);
    if (key !== null) {
      signFrames(key, out);
      this.#counters.counterReads++;
    } else this.#count(result);
    return out;
  }

  /** DATA_WRITE's checks in the spec's order, then the write. `nFrames`: readable frames sent. */
  #dataWrite(frames: Uint8Array, nFrames: number): LastResult {
    const f = readFrameFields(frames);
    const done = (result: number): LastResult => {
      this.#count(result);
      return { reqResp: VIRTIO_RPMB_RESP_DATA_WRITE, result, address: f.address };
    };
    const key = this.#state.key;
    if (key === null) return done(VIRTIO_RPMB_RES_NO_AUTH_KEY);
    if (f.blockCount === 0 || f.blockCount > this.#maxWrite || f.blockCount > nFrames) return done(VIRTIO_RPMB_RES_GENERAL_FAILURE);
    if (this.#state.writeCounter >= RPMB_WRITE_COUNTER_MAX) return done(VIRTIO_RPMB_RES_WRITE_FAILURE | VIRTIO_RPMB_RES_WRITE_COUNTER_EXPIRED);
    if (f.address + f.blockCount > this.blocks) return done(VIRTIO_RPMB_RES_ADDR_FAILURE);
    const data = frames.subarray(0, f.blockCount * RPMB_FRAME_SIZE);
    if (!macMatches(key, data)) return done(VIRTIO_RPMB_RES_AUTH_FAILURE);
    if (f.writeCounter !== this.#state.writeCounter) return done(VIRTIO_RPMB_RES_COUNT_FAILURE);
    const offset = f.address * RPMB_BLOCK_SIZE;
    const before = this.#state.data.slice(offset, offset + f.blockCount * RPMB_BLOCK_SIZE);
    for (let i = 0; i < f.blockCount; i++) {
      const at = i * RPMB_FRAME_SIZE + RPMB_OFF_DATA;
      this.#state.data.set(frames.subarray(at, at + RPMB_BLOCK_SIZE), offset + i * RPMB_BLOCK_SIZE);
    }
    this.#state.writeCounter++;
    const result = this.#persist({ offset, length: f.blockCount * RPMB_BLOCK_SIZE });
    if (result !== VIRTIO_RPMB_RES_OK) {
      // Not persisted: the partition keeps its old contents and counter.
      this.#state.data.set(before, offset);
      this.#state.writeCounter--;
    } else this.#counters.writes++;
    return done(result);
  }

  #dataRead(frames: Uint8Array, room: number): Uint8Array[] {
    const f = readFrameFields(frames);
    const nonce = frames.subarray(RPMB_OFF_NONCE, RPMB_OFF_NONCE + RPMB_NONCE_SIZE);
    const failure = (result: number): Uint8Array[] => {
      this.#count(result);
      const out = newFrame({ reqResp: VIRTIO_RPMB_RESP_DATA_READ, result, address: f.address, blockCount: f.blockCount });
      out.set(nonce, RPMB_OFF_NONCE);
      return [out];
    };
    const key = this.#state.key;
    if (key === null) return failure(VIRTIO_RPMB_RES_NO_AUTH_KEY);
    const count = f.blockCount === 0 ? 1 : f.blockCount;
    if (count > this.#maxRead || count > room) return failure(VIRTIO_RPMB_RES_GENERAL_FAILURE);
    if (f.address + count > this.blocks) return failure(VIRTIO_RPMB_RES_ADDR_FAILURE);
    const all = new Uint8Array(count * RPMB_FRAME_SIZE);
    for (let i = 0; i < count; i++) {
      const off = i * RPMB_FRAME_SIZE;
      all.set(newFrame({ reqResp: VIRTIO_RPMB_RESP_DATA_READ, result: VIRTIO_RPMB_RES_OK, address: f.address, blockCount: count }), off);
      const src = (f.address + i) * RPMB_BLOCK_SIZE;
      all.set(this.#state.data.subarray(src, src + RPMB_BLOCK_SIZE), off + RPMB_OFF_DATA);
      all.set(nonce, off + RPMB_OFF_NONCE);
    }
    signFrames(key, all);
    this.#counters.reads++;
    return [all];
  }

  #resultFrame(): Uint8Array {
    const last = this.#last ?? { reqResp: 0, result: VIRTIO_RPMB_RES_GENERAL_FAILURE, address: 0 };
    const out = newFrame({ reqResp: last.reqResp, result: last.result, address: last.address, writeCounter: this.#state.writeCounter });
    if (this.#state.key !== null && last.reqResp === VIRTIO_RPMB_RESP_DATA_WRITE) signFrames(this.#state.key, out);
    return out;
  }

  #expired(): number {
    return this.#state.writeCounter >= RPMB_WRITE_COUNTER_MAX ? VIRTIO_RPMB_RES_WRITE_COUNTER_EXPIRED : 0;
  }

  #persist(changed?: { offset: number; length: number }): number {
    try {
      this.#store.save(this.#state, changed);
      return VIRTIO_RPMB_RES_OK;
    } catch (e: unknown) {
      this.#ctx?.log.error(`rpmb: saving the state failed: ${(e as Error).message}`);
      return VIRTIO_RPMB_RES_WRITE_FAILURE;
    }
  }

  #count(result: number): void {
    const r = result & ~VIRTIO_RPMB_RES_WRITE_COUNTER_EXPIRED;
    if (r === VIRTIO_RPMB_RES_OK) return;
    if (r === VIRTIO_RPMB_RES_AUTH_FAILURE) this.#counters.authFailures++;
    else if (r === VIRTIO_RPMB_RES_COUNT_FAILURE) this.#counters.counterFailures++;
    else this.#counters.otherFailures++;
  }

  /** Writes response frames while they fit; returns the bytes written. */
  #respond(chain: DescriptorChain, frames: readonly Uint8Array[]): number {
    const w = chain.writer();
    for (const f of frames) {
      if (w.remaining < f.length) {
        if (w.consumed === 0) this.#counters.malformed++;
        break;
      }
      w.write(f);
    }
    return w.consumed;
  }
}
