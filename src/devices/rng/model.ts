// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-entropy device (VIRTIO 1.3 §5.4).
 *
 * Owns: serving `requestq`: for each chain, random bytes written directly into its device-writable
 * buffers (zero-copy views of guest memory), at most `maxBytesPerRequest`, used length = bytes
 * written. Device-readable buffers carry nothing for this device (§5.4.6.1: the driver MUST NOT
 * place driver-readable buffers) and are ignored: never read, never counted.
 * Does not own: the entropy source (`host.ts`), rings and hostile-chain handling (`queue/`),
 * transports.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { CryptoEntropySource, type EntropySource } from './host.js';
import { RngConfigError } from './errors.js';
import type { RngMetrics } from './metrics.js';
import { RNG_DEFAULT_MAX_BYTES_PER_REQUEST, RNG_DEVICE_ID, RNG_QUEUE_MAX_SIZE, RNG_REQUESTQ } from './spec.js';

export interface RngOptions {
  source?: EntropySource;
  /** Cap on bytes written per request (default 64 KiB). */
  maxBytesPerRequest?: number;
}

export class RngDevice implements VirtioDevice {
  readonly deviceId = RNG_DEVICE_ID;
  readonly name = 'rng';
  readonly queueMaxSizes = [RNG_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  readonly configSize = 0;
  readonly #source: EntropySource;
  readonly #maxBytes: number;
  #ctx: DeviceContext | undefined;
  #counters = { requests: 0, bytes: 0, emptyRequests: 0, cappedRequests: 0 };

  /** @throws RngConfigError RNG_BAD_OPTION */
  constructor(opts: RngOptions = {}) {
    this.#source = opts.source ?? new CryptoEntropySource();
    this.#maxBytes = opts.maxBytesPerRequest ?? RNG_DEFAULT_MAX_BYTES_PER_REQUEST;
    if (!Number.isSafeInteger(this.#maxBytes) || this.#maxBytes < 1) throw new RngConfigError('RNG_BAD_OPTION', `maxBytesPerRequest must be a positive integer, got ${this.#maxBytes}`);
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  queueNotify(index: number): void {
    if (index !== RNG_REQUESTQ || this.#ctx === undefined) return;
    serveQueue(this.#ctx, index, (chain) => this.#fill(chain));
  }

  #fill(chain: DescriptorChain): number {
    const n = Math.min(chain.writableLength, this.#maxBytes);
    if (chain.writableLength === 0) this.#counters.emptyRequests++;
    if (chain.writableLength > this.#maxBytes) this.#counters.cappedRequests++;
    for (const seg of chain.writer().segments(n)) this.#source.fill(seg);
    this.#counters.requests++;
    this.#counters.bytes += n;
    return n;
  }

  reset(): void {
    this.#ctx = undefined;
  }

  metrics(): RngMetrics {
    const q = this.#ctx?.queue(RNG_REQUESTQ);
    return {
      device: 'rng',
      ...this.#counters,
      rejectedChains: q?.stats.chainsRejected ?? 0,
      notifications: q?.stats.notificationsSent ?? 0,
      suppressedNotifications: q?.stats.notificationsSuppressed ?? 0,
    };
  }
}
