// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-fs device (VIRTIO 1.3 §5.11), without DAX and without the notification queue.
 *
 * Owns: the queue layout (hiprio = queue 0, then `numRequestQueues` request queues), the config
 * space (tag, NUL-padded to 36 bytes, and num_request_queues; QEMU's vhost-user-fs-pci builds its
 * own copy, the in-process harness and other front-ends read this one), feature offers, and
 * routing chains to the FUSE session: hiprio chains (FORGET, BATCH_FORGET, INTERRUPT) are never
 * answered, request-queue chains always are, when a reply header fits.
 * Does not own: FUSE semantics (session.ts), the host (host.ts).
 */
import type { DeviceContext, DeviceLog, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { FsConfigError } from './errors.js';
import type { FsHost } from './host.js';
import type { FsMetrics } from './metrics.js';
import { FuseSession } from './session.js';
import { FS_CONFIG_SIZE, FS_DEVICE_ID, FS_FIRST_REQUEST_QUEUE, FS_HIPRIO_QUEUE, FS_QUEUE_MAX_SIZE, FS_TAG_BYTES } from './spec.js';

export interface FsOptions {
  host: FsHost;
  /** The mount tag: 1 to 36 bytes of UTF-8 without NUL or newline. */
  tag: string;
  numRequestQueues?: number;
  readOnly?: boolean;
  allowDeviceNodes?: boolean;
  maxNodes?: number;
  maxHandles?: number;
  maxWrite?: number;
  queueMaxSize?: number;
  timeoutSec?: number;
  /** Log every FUSE request at info level (session.ts). */
  trace?: boolean;
}

const quietLog: DeviceLog = { debug() {}, info() {}, warn() {}, error() {} };

export class FsDevice implements VirtioDevice {
  readonly deviceId = FS_DEVICE_ID;
  readonly name = 'fs';
  readonly queueMaxSizes: readonly number[];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  readonly configSize = FS_CONFIG_SIZE;
  readonly #config = new Uint8Array(FS_CONFIG_SIZE);
  readonly #opts: FsOptions;
  readonly #log: { current: DeviceLog } = { current: quietLog };
  readonly #session: FuseSession;
  #ctx: DeviceContext | undefined;

  /** @throws FsConfigError FS_BAD_OPTION for a tag or a count out of range. */
  constructor(opts: FsOptions) {
    this.#opts = opts;
    const tag = new TextEncoder().encode(opts.tag);
    if (tag.byteLength < 1 || tag.byteLength > FS_TAG_BYTES || tag.includes(0) || tag.includes(0x0a)) {
      throw new FsConfigError('FS_BAD_OPTION', `--tag: expected 1 to ${FS_TAG_BYTES} bytes without NUL or newline, got ${JSON.stringify(opts.tag)}`);
    }
    const queues = opts.numRequestQueues ?? 1;
    if (!Number.isInteger(queues) || queues < 1 || queues > 64) throw new FsConfigError('FS_BAD_OPTION', `--num-request-queues: expected 1 to 64, got ${queues}`);
    this.#config.set(tag, 0);
    new DataView(this.#config.buffer).setUint32(FS_TAG_BYTES, queues, true);
    this.queueMaxSizes = new Array<number>(1 + queues).fill(opts.queueMaxSize ?? FS_QUEUE_MAX_SIZE);
    const log = this.#log;
    this.#session = new FuseSession({
      host: opts.host,
      readOnly: opts.readOnly ?? false,
      allowDeviceNodes: opts.allowDeviceNodes ?? false,
      maxNodes: opts.maxNodes ?? 65536,
      maxHandles: opts.maxHandles ?? 4096,
      maxWrite: opts.maxWrite ?? 1 << 20,
      timeoutSec: opts.timeoutSec ?? 1,
      trace: opts.trace ?? false,
      log: { debug: (m) => log.current.debug(m), info: (m) => log.current.info(m), warn: (m) => log.current.warn(m), error: (m) => log.current.error(m) },
    });
  }

  /** The FUSE session (tests look at its tables). */
  get session(): FuseSession {
    return this.#session;
  }

  readConfig(offset: number, length: number): Uint8Array {
    return this.#config.slice(offset, offset + length);
  }

  /** §5.11.4: every config field is read-only for the driver. */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#log.current = ctx.log;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined || index >= this.queueMaxSizes.length) return;
    if (index === FS_HIPRIO_QUEUE) serveQueue(ctx, index, (chain) => this.#session.hiprio(chain));
    else if (index >= FS_FIRST_REQUEST_QUEUE) serveQueue(ctx, index, (chain) => this.#session.handle(chain));
  }

  /** A device reset ends the FUSE session: handles closed, nodes forgotten, INIT needed again. */
  reset(): void {
    this.#ctx = undefined;
    this.#session.reset();
  }

  dispose(): void {
    this.#session.reset();
    this.#opts.host.dispose();
  }

  metrics(): FsMetrics {
    const c = this.#session.counters;
    let rejected = 0;
    let notifications = 0;
    for (let i = 0; i < this.queueMaxSizes.length; i++) {
      const q = this.#ctx?.queue(i);
      rejected += q?.stats.chainsRejected ?? 0;
      notifications += q?.stats.notificationsSent ?? 0;
    }
    return {
      device: 'fs',
      requests: c.requests,
      errors: c.errors,
      malformed: c.malformed,
      unknownNodes: c.unknownNodes,
      noReplyRoom: c.noReplyRoom,
      bytesRead: c.bytesRead,
      bytesWritten: c.bytesWritten,
      nodes: this.#session.nodes.size,
      handles: this.#session.handles.size,
      ops: Object.fromEntries([...c.ops].map(([k, v]) => [String(k), v])),
      rejectedChains: rejected,
      notifications,
    };
  }
}
