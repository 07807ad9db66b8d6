// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio block device (VIRTIO 1.3 §5.2).
 *
 * Owns: the options and their checks, the offered features, the config space (§5.2.4) with its one
 * writable field (`writeback`, with VIRTIO_BLK_F_CONFIG_WCE), the cache mode, the queues (every
 * request queue is served the same way; there is no per-queue state) and the metrics.
 * Does not own: parsing and serving each request, the statuses and used lengths (`requests.ts`),
 * the image (`host.ts`), rings and hostile-chain handling (`queue/`), transports.
 *
 * Cache mode: the `writeback` byte and the mode in force are here (`#mode`); what each mode means
 * for a write is in `requests.ts`.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask, hasFeature } from '../../spec/virtio.js';
import type { BlockHost } from './host.js';
import { BlkConfigError } from './errors.js';
import type { BlkMetrics } from './metrics.js';
import { BlkRequestHandler } from './requests.js';
import {
  BLK_DEVICE_ID,
  BLK_MAX_QUEUES,
  BLK_QUEUE_MAX_SIZE_DEFAULT,
  VIRTIO_BLK_CONFIG_OFF,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_SECTOR_SIZE,
  type VirtioBlkConfig,
  type VirtioBlkTopology,
  virtioBlkConfig,
} from './spec.js';

export interface BlkOptions {
  /** The image. */
  host: BlockHost;
  /** Device ID string returned by GET_ID: printable ASCII, at most 20 bytes (default: none, 20 zero bytes). */
  serial?: string;
  /** Request queues (default 1); VIRTIO_BLK_F_MQ is offered when more than 1. */
  numQueues?: number;
  /** Largest size of every queue (default 256). */
  queueMaxSize?: number;
  /** Offer VIRTIO_BLK_F_RO and refuse every write (default: `host.readOnly`; must be true for a read-only host). */
  readOnly?: boolean;
  /** `blk_size` (default 512): a power of 2 from 512 to 65536. Linux 6.1 accepts up to its page size. */
  blkSize?: number;
  /** `seg_max` (default min(queueMaxSize, 128) - 2, see `defaultSegMax`). */
  segMax?: number;
  /** `size_max` in bytes (default 1 MiB). */
  sizeMax?: number;
  /** Offer VIRTIO_BLK_F_TOPOLOGY with these values (default: not offered). */
  topology?: VirtioBlkTopology;
  /** Offer DISCARD (default: when the host can discard and the device is writable). */
  discard?: boolean;
  /** Offer WRITE_ZEROES (default: when the host can write zeroes and the device is writable). */
  writeZeroes?: boolean;
  /** `max_discard_sectors`, per segment (default 32768 = 16 MiB, as QEMU). */
  maxDiscardSectors?: number;
  /** `max_discard_seg` (default 16, at most 256). */
  maxDiscardSeg?: number;
  /** `max_write_zeroes_sectors`, per segment (default 32768, as QEMU). */
  maxWriteZeroesSectors?: number;
  /** `max_write_zeroes_seg` (default 16, at most 256). */
  maxWriteZeroesSeg?: number;
  /** Cache mode after reset: true = writeback (default), false = writethrough (§5.2.5 allows either). */
  writeback?: boolean;
}

/**
 * Default `seg_max`: two descriptors of a chain carry the header and the status, and QEMU 7.2's
 * vhost-user-blk-pci uses queue size 128, so at most 126 data segments fit a chain on a ring of
 * the front-end's default size even without indirect descriptors (qemu-storage-daemon advertises
 * the same 126).
 */
export function defaultSegMax(queueMaxSize: number): number {
  return Math.max(1, Math.min(queueMaxSize, 128) - 2);
}

/** Default `size_max`: 1 MiB per segment. */
export const BLK_SIZE_MAX_DEFAULT = 1 << 20;
/** Default `max_discard_sectors` / `max_write_zeroes_sectors` (QEMU's VIRTIO_BLK_MAX_*_SECTORS). */
export const BLK_MAX_RANGE_SECTORS_DEFAULT = 32768;
/** Default `max_discard_seg` / `max_write_zeroes_seg`. */
export const BLK_MAX_RANGE_SEG_DEFAULT = 16;
/**
 * Upper bound on `max_*_seg`: the device copies the segments out of guest memory, 16 bytes each,
 * so this caps that copy at 4 KiB (Linux 6.1 never sends more than MAX_DISCARD_SEGMENTS = 256).
 */
export const BLK_MAX_RANGE_SEG_LIMIT = 256;

interface Settings {
  numQueues: number;
  queueMaxSize: number;
  readOnly: boolean;
  blkSize: number;
  segMax: number;
  sizeMax: number;
  topology: VirtioBlkTopology | undefined;
  discard: boolean;
  writeZeroes: boolean;
  maxDiscardSectors: number;
  maxDiscardSeg: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSeg: number;
  writeback: boolean;
  id: Uint8Array;
}
function bad(message: string): BlkConfigError {
  return new BlkConfigError('BLK_BAD_OPTION', message);
}

function isPowerOf2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** @throws BlkConfigError BLK_BAD_OPTION unless `v` is an integer in [min, max]. */
function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw bad(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** The GET_ID answer: the serial's ASCII bytes, NUL-padded to 20 (no NUL when exactly 20, §5.2.6). */
function encodeSerial(serial: string | undefined): Uint8Array {
  const id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  if (serial === undefined) return id;
  if (serial.length > VIRTIO_BLK_ID_BYTES) throw bad(`serial must be at most ${VIRTIO_BLK_ID_BYTES} bytes, got ${serial.length}`);
  for (let i = 0; i < serial.length; i++) {
    const c = serial.charCodeAt(i);
    // §5.2.6 "an ASCII string"; NUL would end it early, so printable ASCII only.
    if (c < 0x20 || c > 0x7e) throw bad(`serial must be printable ASCII; character ${i} is U+${c.toString(16).padStart(4, '0')}`);
    id[i] = c;
  }
  return id;
}

/** Validates options against the host and fills in defaults. @throws BlkConfigError BLK_BAD_OPTION naming the option. */
function resolveSettings(opts: BlkOptions): Settings {
  const { host } = opts;
  const readOnly = opts.readOnly ?? host.readOnly;
  if (host.readOnly && !readOnly) throw bad('readOnly: false needs a writable host; this host is read-only');
  if (!Number.isSafeInteger(host.size) || host.size < 0) throw bad(`host size must be a non-negative safe integer, got ${host.size}`);
  const queueMaxSize = opts.queueMaxSize ?? BLK_QUEUE_MAX_SIZE_DEFAULT;
  if (!isPowerOf2(queueMaxSize) || queueMaxSize > 32768) throw bad(`queueMaxSize must be a power of 2 in 1..32768, got ${queueMaxSize}`);
  const blkSize = opts.blkSize ?? VIRTIO_BLK_SECTOR_SIZE;
  if (!isPowerOf2(blkSize) || blkSize < VIRTIO_BLK_SECTOR_SIZE || blkSize > 65536) throw bad(`blkSize must be a power of 2 in 512..65536, got ${blkSize}`);
  const feature = (name: 'discard' | 'writeZeroes', hostCan: boolean): boolean => {
    const asked = opts[name];
    const on = (asked ?? true) && hostCan && !readOnly;
    if (asked === true && !on) throw bad(`${name}: true needs a writable device whose host supports it`);
    return on;
  };
  const topology = opts.topology;
  if (topology !== undefined) {
    checkInt('topology.physicalBlockExp', topology.physicalBlockExp, 0, 0xff);
    checkInt('topology.alignmentOffset', topology.alignmentOffset, 0, 0xff);
    checkInt('topology.minIoSize', topology.minIoSize, 0, 0xffff);
    checkInt('topology.optIoSize', topology.optIoSize, 0, 0xffff_ffff);
  }
  return {
    numQueues: checkInt('numQueues', opts.numQueues ?? 1, 1, BLK_MAX_QUEUES),
    queueMaxSize,
    readOnly,
    blkSize,
    segMax: checkInt('segMax', opts.segMax ?? defaultSegMax(queueMaxSize), 1, 0xffff_ffff),
    sizeMax: checkInt('sizeMax', opts.sizeMax ?? BLK_SIZE_MAX_DEFAULT, 512, 0xffff_ffff),
    topology,
    discard: feature('discard', host.canDiscard),
    writeZeroes: feature('writeZeroes', host.canWriteZeroes),
    maxDiscardSectors: checkInt('maxDiscardSectors', opts.maxDiscardSectors ?? BLK_MAX_RANGE_SECTORS_DEFAULT, 1, 0xffff_ffff),
    maxDiscardSeg: checkInt('maxDiscardSeg', opts.maxDiscardSeg ?? BLK_MAX_RANGE_SEG_DEFAULT, 1, BLK_MAX_RANGE_SEG_LIMIT),
    maxWriteZeroesSectors: checkInt('maxWriteZeroesSectors', opts.maxWriteZeroesSectors ?? BLK_MAX_RANGE_SECTORS_DEFAULT, 1, 0xffff_ffff),
    maxWriteZeroesSeg: checkInt('maxWriteZeroesSeg', opts.maxWriteZeroesSeg ?? BLK_MAX_RANGE_SEG_DEFAULT, 1, BLK_MAX_RANGE_SEG_LIMIT),
    writeback: opts.writeback ?? true,
    id: encodeSerial(opts.serial),
  };
}

export class BlkDevice implements VirtioDevice {
  readonly deviceId = BLK_DEVICE_ID;
  readonly name = 'blk';
  readonly queueMaxSizes: readonly number[];
  readonly offeredFeatures: bigint;
  readonly configSize = VIRTIO_BLK_CONFIG_SIZE;
  /** Reads and writes can be repeated after a back-end restart: offer inflight tracking. */
  readonly inflightTracking = true;
  /** Capacity in 512-byte sectors: floor(host.size / 512); a partial last sector is not exposed. */
  readonly capacity: number;
  readonly readOnly: boolean;
  readonly #host: BlockHost;
  readonly #s: Settings;
  /** Sectors per `blk_size` block: requests must start on a block boundary. */
  readonly #sectorsPerBlock: number;
  #ctx: DeviceContext | undefined;
  /** The `writeback` byte as last set (initial option or a driver write); see `#mode` for the mode in force. */
  #writeback: number;
  readonly #requests: BlkRequestHandler;

  /** @throws BlkConfigError BLK_BAD_OPTION for an option that is out of range or does not fit the host. */
  constructor(opts: BlkOptions) {
    this.#s = resolveSettings(opts);
    this.#host = opts.host;
    this.readOnly = this.#s.readOnly;
    this.capacity = Math.floor(opts.host.size / VIRTIO_BLK_SECTOR_SIZE);
    this.#sectorsPerBlock = this.#s.blkSize / VIRTIO_BLK_SECTOR_SIZE;
    this.queueMaxSizes = Array.from({ length: this.#s.numQueues }, () => this.#s.queueMaxSize);
    this.offeredFeatures = this.#features();
    this.#writeback = this.#s.writeback ? 1 : 0;
    this.#requests = new BlkRequestHandler({ host: this.#host, limits: this.#s, capacity: this.capacity, mode: () => this.#mode() });
  }

  #features(): bigint {
    const s = this.#s;
    let f = featureMask(
      VIRTIO_F_VERSION_1,
      VIRTIO_F_INDIRECT_DESC,
      VIRTIO_F_EVENT_IDX,
      VIRTIO_BLK_F_SIZE_MAX,
      VIRTIO_BLK_F_SEG_MAX,
      VIRTIO_BLK_F_BLK_SIZE,
      // §5.2.5.2: "Devices SHOULD always offer VIRTIO_BLK_F_FLUSH, and MUST offer it if they offer
      // VIRTIO_BLK_F_CONFIG_WCE."
      VIRTIO_BLK_F_FLUSH,
      VIRTIO_BLK_F_CONFIG_WCE,
    );
    if (s.topology !== undefined) f |= featureBit(VIRTIO_BLK_F_TOPOLOGY);
    if (s.discard) f |= featureBit(VIRTIO_BLK_F_DISCARD);
    if (s.writeZeroes) f |= featureBit(VIRTIO_BLK_F_WRITE_ZEROES);
    if (s.numQueues > 1) f |= featureBit(VIRTIO_BLK_F_MQ);
    if (s.readOnly) f |= featureBit(VIRTIO_BLK_F_RO);
    return f;
  }

  /** The current config space as a struct. */
  config(): VirtioBlkConfig {
    const s = this.#s;
    const t = s.topology;
    return {
      capacity: this.capacity,
      sizeMax: s.sizeMax,
      segMax: s.segMax,
      // VIRTIO_BLK_F_GEOMETRY is not offered: a raw image has no CHS geometry worth inventing.
      geometry: { cylinders: 0, heads: 0, sectors: 0 },
      blkSize: s.blkSize,
      topology: t ?? { physicalBlockExp: 0, alignmentOffset: 0, minIoSize: 0, optIoSize: 0 },
      writeback: this.#mode(),
      numQueues: s.numQueues,
      maxDiscardSectors: s.discard ? s.maxDiscardSectors : 0,
      maxDiscardSeg: s.discard ? s.maxDiscardSeg : 0,
      discardSectorAlignment: s.discard ? this.#sectorsPerBlock : 0,
      maxWriteZeroesSectors: s.writeZeroes ? s.maxWriteZeroesSectors : 0,
      maxWriteZeroesSeg: s.writeZeroes ? s.maxWriteZeroesSeg : 0,
      // §5.2.6.2: "SHOULD clear the write_zeroes_may_unmap field ... if and only if a write zeroes
      // request cannot result in deallocating one or more sectors".
      writeZeroesMayUnmap: s.writeZeroes && this.#host.mayUnmap ? 1 : 0,
    };
  }

  /** Any slice of the 60-byte layout (QEMU 7.2 asks for 57 or 60 bytes); bytes past the end read 0. */
  readConfig(offset: number, length: number): Uint8Array {
    const all = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
    virtioBlkConfig.encode(this.config(), new DataView(all.buffer), 0);
    const out = new Uint8Array(Math.max(0, length));
    if (offset >= 0 && offset < all.length) out.set(all.subarray(offset, Math.min(all.length, offset + out.length)));
    return out;
  }

  /**
   * Only `writeback` (offset 32) is writable (§5.2.5 step 5: with VIRTIO_BLK_F_CONFIG_WCE "the cache
   * mode can be read or set through the writeback field"). Other bytes of the write are ignored.
   * Before activation the negotiated features are unknown (vhost-user may send SET_CONFIG any
   * time), so the write is taken; after it, only if CONFIG_WCE was negotiated.
   */
  writeConfig(offset: number, data: Uint8Array): void {
    const at = VIRTIO_BLK_CONFIG_OFF.writeback - offset;
    const value = at >= 0 ? data[at] : undefined;
    if (value === undefined) {
      this.#ctx?.log.debug(`blk: config write at ${offset} (+${data.length}) ignored: only writeback (offset 32) is writable`);
      return;
    }
    if (this.#ctx !== undefined && !hasFeature(this.#ctx.features, VIRTIO_BLK_F_CONFIG_WCE)) {
      this.#ctx.log.warn('blk: writeback write ignored: VIRTIO_BLK_F_CONFIG_WCE was not negotiated');
      return;
    }
    // §5.2.6.1: the driver writes 0 (writethrough) or 1 (writeback); anything else counts as 1.
    this.#writeback = value === 0 ? 0 : 1;
  }

  /** Starts serving with the negotiated features (they decide the cache mode, see `#mode`). */
  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  /**
   * The cache mode in force: 1 writeback, 0 writethrough. Without a negotiated FLUSH it is always
   * writethrough: with CONFIG_WCE alone §5.2.5.2 says "the device MUST initialize writeback to 0",
   * and with neither bit §5.2.6.2 case 1 makes every completed write stable. With FLUSH it is the
   * `writeback` byte, whether or not CONFIG_WCE lets the driver change it (a FLUSH-only driver
   * "SHOULD assume presence of a writeback cache", §5.2.5.1, and flushes; if the device is in fact
   * writethrough, those flushes are merely redundant). Derived on each use rather than stored at
   * activation, so a transport that restarts the device with other features (SeaBIOS, then Linux)
   * does not inherit the first driver's mode.
   */
  #mode(): number {
    const ctx = this.#ctx;
    if (ctx !== undefined && !hasFeature(ctx.features, VIRTIO_BLK_F_FLUSH)) return 0;
    return this.#writeback;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined || index < 0 || index >= this.#s.numQueues) return;
    serveQueue(ctx, index, (chain) => this.#requests.serve(ctx.log, index, chain));
  }

  reset(): void {
    this.#ctx = undefined;
    this.#writeback = this.#s.writeback ? 1 : 0;
  }

  metrics(): BlkMetrics {
    let rejectedChains = 0;
    let notifications = 0;
    let suppressedNotifications = 0;
    for (let i = 0; i < this.#s.numQueues; i++) {
      const q = this.#ctx?.queue(i);
      rejectedChains += q?.stats.chainsRejected ?? 0;
      notifications += q?.stats.notificationsSent ?? 0;
      suppressedNotifications += q?.stats.notificationsSuppressed ?? 0;
    }
    return {
      device: 'blk',
      queues: this.#s.numQueues,
      writeback: this.#mode(),
      requests: this.#requests.requests,
      ...this.#requests.counters,
      errors: this.#requests.errors,
      rejectedChains,
      notifications,
      suppressedNotifications,
    };
  }
}
