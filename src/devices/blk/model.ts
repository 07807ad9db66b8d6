// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio block device (VIRTIO 1.3 §5.2).
 *
 * Owns: the offered features, the config space (§5.2.4) with its one writable field
 * (`writeback`, with VIRTIO_BLK_F_CONFIG_WCE), the cache mode, and serving every request queue:
 * parsing `struct virtio_blk_req` out of each chain, validating it, calling the host, and writing
 * the status byte (§5.2.6). Every queue is served the same way; there is no per-queue state.
 * Does not own: the image (`host.ts`), rings and hostile-chain handling (`queue/`), transports.
 *
 * Chain layout (§5.2.6, and §2.7.4 "the device MUST NOT make assumptions about the particular
 * arrangement of descriptors"): the header is the first 16 device-readable bytes, wherever the
 * descriptors split them; the status is the LAST device-writable byte, and may share a descriptor
 * with data. So for IN and GET_ID the data is the writable part minus its last byte, and for OUT,
 * DISCARD and WRITE_ZEROES the data is the readable part after the header.
 *
 * Statuses (§5.2.6: "VIRTIO_BLK_S_IOERR for device or driver error or VIRTIO_BLK_S_UNSUPP for a
 * request unsupported by device"):
 *
 * | request | status | why |
 * |---|---|---|
 * | no device-writable byte | none: used length 0, `malformed` | there is nowhere to put a status |
 * | fewer than 16 readable bytes | IOERR, `malformed` | no header: a driver error, reported where we can |
 * | unknown type, GET_LIFETIME, SECURE_ERASE | UNSUPP | not offered |
 * | IN/GET_ID with readable data after the header, OUT/DISCARD/WRITE_ZEROES with writable bytes before the status | IOERR | data in the wrong direction: a driver error (QEMU ignores the extra buffers; AVP is stricter) |
 * | OUT, DISCARD or WRITE_ZEROES on a read-only device | IOERR, host untouched | §5.2.6.2 "MUST set the status byte to VIRTIO_BLK_S_IOERR for a write request if the VIRTIO_BLK_F_RO feature if offered, and MUST NOT write any data" |
 * | IN/OUT length not a multiple of 512 | IOERR | §5.2.6.1 "The length of data MUST be a multiple of 512 bytes" |
 * | range past `capacity` (or a sector >= 2^53) | IOERR, host untouched | §5.2.6.1 "A driver MUST NOT submit a request which would cause a read or write beyond capacity" |
 * | sector not aligned to `blk_size` | IOERR | as QEMU's `virtio_blk_sect_range_ok` |
 * | DISCARD/WRITE_ZEROES not offered | UNSUPP | the device does not support it |
 * | DISCARD/WRITE_ZEROES data not a whole number (>= 1) of 16-byte segments | IOERR | §5.2.6.1 "MUST be a multiple of the size of struct virtio_blk_discard_write_zeroes" |
 * | more segments than `max_*_seg` | UNSUPP | as QEMU (`virtio_blk_discard_write_zeroes`: more than it supports → UNSUPP) |
 * | a reserved flag bit; `unmap` in a DISCARD | UNSUPP | §5.2.6.2 "MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard, secure erase and write zeroes commands if any unknown flag is set ... for discard commands if the unmap flag is set" |
 * | a segment above `max_*_sectors` | IOERR | as QEMU |
 * | the host throws | IOERR, one log line | the device never throws out of the request loop |
 *
 * Used length (§2.7.8.2: len counts "bytes written into the device-writable portion") = data bytes
 * written + the status byte: data + 1 for a successful IN, min(20, data) + 1 for GET_ID, and 1
 * otherwise. On an error the 1 counts the status byte even though it sits after the unwritten data
 * area; Firecracker and cloud-hypervisor do the same, QEMU reports the whole writable length, and
 * Linux and SeaBIOS ignore len for virtio-blk.
 *
 * Cache mode (§5.2.5, §5.2.6.2). `writeback` = 1: writes complete once in the image file (the host
 * page cache) and become durable at the next FLUSH. `writeback` = 0 (writethrough): every OUT and
 * WRITE_ZEROES is followed by a host flush (fdatasync) before it completes, so a completed write is
 * stable (§5.2.6.2 case 2); DISCARD is not flushed (its contents are undefined anyway; QEMU's
 * writethrough mode flushes writes and write-zeroes, not discards).
 */
import type { DeviceContext, DeviceLog, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { ChainReader, ChainWriter, DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask, hasFeature } from '../../spec/virtio.js';
import type { BlockHost } from './host.js';
import type { BlkMetrics, BlkRequestCounts } from './metrics.js';
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
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
  type VirtioBlkConfig,
  type VirtioBlkReqHeader,
  type VirtioBlkTopology,
  virtioBlkConfig,
  virtioBlkDiscardWriteZeroes,
  virtioBlkReqHeader,
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

/** What a request turned into: the status byte and the data bytes written before it. */
interface Outcome {
  status: number;
  written: number;
}

/** One parsed request: the header, and cursors positioned at its data. */
interface Request {
  queue: number;
  header: VirtioBlkReqHeader;
  /** Readable part, positioned just after the header. */
  reader: ChainReader;
  /** Writable part, positioned at its start. */
  writer: ChainWriter;
  /** Device-readable bytes after the header. */
  dataOut: number;
  /** Device-writable bytes before the status byte. */
  dataIn: number;
}

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

const HEADER_SIZE = virtioBlkReqHeader.size;
const SEGMENT_SIZE = virtioBlkDiscardWriteZeroes.size;
const TYPE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_BLK_T_IN]: 'IN',
  [VIRTIO_BLK_T_OUT]: 'OUT',
  [VIRTIO_BLK_T_FLUSH]: 'FLUSH',
  [VIRTIO_BLK_T_GET_ID]: 'GET_ID',
  [VIRTIO_BLK_T_DISCARD]: 'DISCARD',
  [VIRTIO_BLK_T_WRITE_ZEROES]: 'WRITE_ZEROES',
};

function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isPowerOf2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** @throws RangeError unless `v` is an integer in [min, max]. */
function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** The GET_ID answer: the serial's ASCII bytes, NUL-padded to 20 (no NUL when exactly 20, §5.2.6). */
function encodeSerial(serial: string | undefined): Uint8Array {
  const id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  if (serial === undefined) return id;
  if (serial.length > VIRTIO_BLK_ID_BYTES) throw new RangeError(`serial must be at most ${VIRTIO_BLK_ID_BYTES} bytes, got ${serial.length}`);
  for (let i = 0; i < serial.length; i++) {
    const c = serial.charCodeAt(i);
    // §5.2.6 "an ASCII string"; NUL would end it early, so printable ASCII only.
    if (c < 0x20 || c > 0x7e) throw new RangeError(`serial must be printable ASCII; character ${i} is U+${c.toString(16).padStart(4, '0')}`);
    id[i] = c;
  }
  return id;
}

/** Validates options against the host and fills in defaults. @throws RangeError naming the option. */
function resolveSettings(opts: BlkOptions): Settings {
  const { host } = opts;
  const readOnly = opts.readOnly ?? host.readOnly;
  if (host.readOnly && !readOnly) throw new RangeError('readOnly: false needs a writable host; this host is read-only');
  if (!Number.isSafeInteger(host.size) || host.size < 0) throw new RangeError(`host size must be a non-negative safe integer, got ${host.size}`);
  const queueMaxSize = opts.queueMaxSize ?? BLK_QUEUE_MAX_SIZE_DEFAULT;
  if (!isPowerOf2(queueMaxSize) || queueMaxSize > 32768) throw new RangeError(`queueMaxSize must be a power of 2 in 1..32768, got ${queueMaxSize}`);
  const blkSize = opts.blkSize ?? VIRTIO_BLK_SECTOR_SIZE;
  if (!isPowerOf2(blkSize) || blkSize < VIRTIO_BLK_SECTOR_SIZE || blkSize > 65536) throw new RangeError(`blkSize must be a power of 2 in 512..65536, got ${blkSize}`);
  const feature = (name: 'discard' | 'writeZeroes', hostCan: boolean): boolean => {
    const asked = opts[name];
    const on = (asked ?? true) && hostCan && !readOnly;
    if (asked === true && !on) throw new RangeError(`${name}: true needs a writable device whose host supports it`);
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

function emptyRequestCounts(): BlkRequestCounts {
  return { in: 0, out: 0, flush: 0, getId: 0, discard: 0, writeZeroes: 0, other: 0 };
}

export class BlkDevice implements VirtioDevice {
  readonly deviceId = BLK_DEVICE_ID;
  readonly name = 'blk';
  readonly queueMaxSizes: readonly number[];
  readonly offeredFeatures: bigint;
  readonly configSize = VIRTIO_BLK_CONFIG_SIZE;
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
  #requests = emptyRequestCounts();
  #counters = { bytesRead: 0, bytesWritten: 0, flushes: 0, discardSegments: 0, writeZeroesSegments: 0, malformed: 0 };
  #errors = { ioerr: 0, unsupp: 0, host: 0, internal: 0 };

  /** @throws RangeError for an option that is out of range or does not fit the host. */
  constructor(opts: BlkOptions) {
    this.#s = resolveSettings(opts);
    this.#host = opts.host;
    this.readOnly = this.#s.readOnly;
    this.capacity = Math.floor(opts.host.size / VIRTIO_BLK_SECTOR_SIZE);
    this.#sectorsPerBlock = this.#s.blkSize / VIRTIO_BLK_SECTOR_SIZE;
    this.queueMaxSizes = Array.from({ length: this.#s.numQueues }, () => this.#s.queueMaxSize);
    this.offeredFeatures = this.#features();
    this.#writeback = this.#s.writeback ? 1 : 0;
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
    serveQueue(ctx, index, (chain) => this.#serve(ctx.log, index, chain));
  }

  reset(): void {
    this.#ctx = undefined;
    this.#writeback = this.#s.writeback ? 1 : 0;
  }

  /** Never throws: an unexpected exception (an AVP bug, or guest memory gone) abandons the chain with length 0. */
  #serve(log: DeviceLog, queue: number, chain: DescriptorChain): number {
    try {
      return this.#handle(log, queue, chain);
    } catch (e: unknown) {
      this.#errors.internal++;
      log.error(`blk: queue ${queue} chain ${chain.head}: request abandoned: ${message(e)}`);
      return 0;
    }
  }

  #handle(log: DeviceLog, queue: number, chain: DescriptorChain): number {
    if (chain.writableLength === 0) {
      this.#counters.malformed++;
      log.warn(`blk: queue ${queue} chain ${chain.head}: no device-writable byte for the status; returned with length 0`);
      return 0;
    }
    const writer = chain.writer();
    const statusAt = chain.writableLength - 1;
    if (chain.readableLength < HEADER_SIZE) {
      this.#counters.malformed++;
      log.warn(`blk: queue ${queue} chain ${chain.head}: ${chain.readableLength} readable bytes, fewer than the ${HEADER_SIZE}-byte request header; IOERR`);
      return this.#complete(writer, statusAt, { status: VIRTIO_BLK_S_IOERR, written: 0 });
    }
    const reader = chain.reader();
    const header = reader.readObj(virtioBlkReqHeader);
    const req: Request = { queue, header, reader, writer, dataOut: reader.remaining, dataIn: statusAt };
    return this.#complete(writer, statusAt, this.#dispatch(log, req));
  }

  /** Writes the status as the last writable byte; returns the used length. */
  #complete(writer: ChainWriter, statusAt: number, outcome: Outcome): number {
    if (outcome.status === VIRTIO_BLK_S_IOERR) this.#errors.ioerr++;
    if (outcome.status === VIRTIO_BLK_S_UNSUPP) this.#errors.unsupp++;
    writer.skip(statusAt - writer.consumed);
    writer.writeU8(outcome.status);
    return outcome.written + 1;
  }

  #dispatch(log: DeviceLog, req: Request): Outcome {
    switch (req.header.type) {
      case VIRTIO_BLK_T_IN:
        this.#requests.in++;
        return this.#read(log, req);
      case VIRTIO_BLK_T_OUT:
        this.#requests.out++;
        return this.#write(log, req);
      case VIRTIO_BLK_T_FLUSH:
        this.#requests.flush++;
        // §5.2.6.1: the driver "MUST set sector to 0" and "SHOULD NOT include any data" in a FLUSH;
        // neither changes what a flush does, so the device ignores both, as QEMU does.
        return this.#flushHost(log, req.queue, 'flush') ? { status: VIRTIO_BLK_S_OK, written: 0 } : { status: VIRTIO_BLK_S_IOERR, written: 0 };
      case VIRTIO_BLK_T_GET_ID:
        this.#requests.getId++;
        return this.#getId(log, req);
      case VIRTIO_BLK_T_DISCARD:
        this.#requests.discard++;
        return this.#ranges(log, req, false);
      case VIRTIO_BLK_T_WRITE_ZEROES:
        this.#requests.writeZeroes++;
        return this.#ranges(log, req, true);
      default:
        // GET_LIFETIME, SECURE_ERASE, zoned and legacy types: their features are not offered.
        this.#requests.other++;
        return this.#reject(log, req, VIRTIO_BLK_S_UNSUPP, 'unsupported request type');
    }
  }

  #read(log: DeviceLog, req: Request): Outcome {
    if (req.dataOut > 0) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `${req.dataOut} device-readable data bytes in a read`);
    const bad = this.#checkData(req.header.sector, req.dataIn);
    if (bad !== undefined) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, bad);
    if (req.dataIn === 0) return { status: VIRTIO_BLK_S_OK, written: 0 };
    // Safe integer: sector <= capacity <= host.size / 512 (checked above).
    const offset = req.header.sector * VIRTIO_BLK_SECTOR_SIZE;
    const segments = req.writer.segments(req.dataIn);
    if (!this.#hostCall(log, req, 'read', () => this.#host.readv(segments, offset))) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    this.#counters.bytesRead += req.dataIn;
    return { status: VIRTIO_BLK_S_OK, written: req.dataIn };
  }

  #write(log: DeviceLog, req: Request): Outcome {
    if (req.dataIn > 0) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `${req.dataIn} device-writable bytes before the status in a write`);
    if (this.readOnly) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, 'write to a read-only device');
    const bad = this.#checkData(req.header.sector, req.dataOut);
    if (bad !== undefined) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, bad);
    if (req.dataOut === 0) return { status: VIRTIO_BLK_S_OK, written: 0 };
    // Safe integer: as in #read.
    const offset = req.header.sector * VIRTIO_BLK_SECTOR_SIZE;
    const segments = req.reader.segments(req.dataOut);
    if (!this.#hostCall(log, req, 'write', () => this.#host.writev(segments, offset))) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    if (!this.#writeThrough(log, req)) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    this.#counters.bytesWritten += req.dataOut;
    return { status: VIRTIO_BLK_S_OK, written: 0 };
  }

  #getId(log: DeviceLog, req: Request): Outcome {
    if (req.dataOut > 0) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `${req.dataOut} device-readable data bytes in a GET_ID`);
    // §5.2.6.1 asks the driver for exactly 20 bytes; a shorter buffer gets a prefix, a longer one
    // the 20 bytes (its tail is left alone).
    const n = Math.min(VIRTIO_BLK_ID_BYTES, req.dataIn);
    req.writer.write(this.#s.id.subarray(0, n));
    return { status: VIRTIO_BLK_S_OK, written: n };
  }

  /** DISCARD (`zero` false) and WRITE_ZEROES (`zero` true). */
  #ranges(log: DeviceLog, req: Request, zero: boolean): Outcome {
    const s = this.#s;
    if (req.dataIn > 0) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `${req.dataIn} device-writable bytes before the status`);
    // As QEMU: discard and write-zeroes are writes for the purpose of §5.2.6.2's read-only rule.
    if (this.readOnly) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, 'read-only device');
    if (!(zero ? s.writeZeroes : s.discard)) return this.#reject(log, req, VIRTIO_BLK_S_UNSUPP, 'feature not offered');
    if (req.dataOut === 0 || req.dataOut % SEGMENT_SIZE !== 0) {
      return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `${req.dataOut} data bytes are not a whole number of ${SEGMENT_SIZE}-byte segments`);
    }
    const count = req.dataOut / SEGMENT_SIZE;
    const maxSeg = zero ? s.maxWriteZeroesSeg : s.maxDiscardSeg;
    if (count > maxSeg) return this.#reject(log, req, VIRTIO_BLK_S_UNSUPP, `${count} segments, more than the ${maxSeg} advertised`);
    // Bounded copy: count <= BLK_MAX_RANGE_SEG_LIMIT (256) segments of 16 bytes.
    const segments = Array.from({ length: count }, () => req.reader.readObj(virtioBlkDiscardWriteZeroes));
    for (const seg of segments) {
      if ((seg.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0) {
        return this.#reject(log, req, VIRTIO_BLK_S_UNSUPP, `reserved flag bits 0x${(seg.flags >>> 0).toString(16)} set (§5.2.6.2)`);
      }
      if (!zero && (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0) return this.#reject(log, req, VIRTIO_BLK_S_UNSUPP, 'unmap flag in a discard (§5.2.6.2)');
    }
    const maxSectors = zero ? s.maxWriteZeroesSectors : s.maxDiscardSectors;
    for (const seg of segments) {
      if (seg.numSectors > maxSectors) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, `segment of ${seg.numSectors} sectors, more than the ${maxSectors} advertised`);
      const bad = this.#checkRange(seg.sector, seg.numSectors);
      if (bad !== undefined) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, bad);
    }
    for (const seg of segments) {
      if (seg.numSectors === 0) continue;
      // Safe integers: the range lies within the capacity (checked above).
      const offset = seg.sector * VIRTIO_BLK_SECTOR_SIZE;
      const length = seg.numSectors * VIRTIO_BLK_SECTOR_SIZE;
      const unmap = (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0;
      const op = zero ? () => this.#host.writeZeroes(offset, length, unmap) : () => this.#host.discard(offset, length);
      // §5.2.6: on IOERR "the status of individual segments is indeterminate", so stop at the first failure.
      if (!this.#hostCall(log, req, zero ? 'write-zeroes' : 'discard', op)) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
      if (zero) this.#counters.writeZeroesSegments++;
      else this.#counters.discardSegments++;
    }
    if (zero && !this.#writeThrough(log, req)) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    return { status: VIRTIO_BLK_S_OK, written: 0 };
  }

  /** IN/OUT data checks; returns why the request is invalid, or undefined. */
  #checkData(sector: number, length: number): string | undefined {
    if (length % VIRTIO_BLK_SECTOR_SIZE !== 0) return `data length ${length} is not a multiple of 512 (§5.2.6.1)`;
    return this.#checkRange(sector, length / VIRTIO_BLK_SECTOR_SIZE);
  }

  /**
   * Checks [sector, sector + numSectors) against the capacity without overflow: a u64 sector at or
   * above 2^53 decodes to a non-safe number and is out of range for any image; otherwise the test
   * `numSectors <= capacity - sector` subtracts two safe integers. Also checks `blk_size` alignment.
   */
  #checkRange(sector: number, numSectors: number): string | undefined {
    if (!Number.isSafeInteger(sector) || sector > this.capacity || numSectors > this.capacity - sector) {
      const at = Number.isSafeInteger(sector) ? String(sector) : '>= 2^53';
      return `sectors [${at}, +${numSectors}) pass the capacity of ${this.capacity} sectors`;
    }
    if (sector % this.#sectorsPerBlock !== 0) return `sector ${sector} is not aligned to the ${this.#s.blkSize}-byte block size`;
    return undefined;
  }

  /** In writethrough mode, flushes after a write so that it completes stable (§5.2.6.2 case 2). */
  #writeThrough(log: DeviceLog, req: Request): boolean {
    return this.#mode() === 1 || this.#flushHost(log, req.queue, 'writethrough flush');
  }

  #flushHost(log: DeviceLog, queue: number, what: string): boolean {
    this.#counters.flushes++;
    try {
      this.#host.flush();
      return true;
    } catch (e: unknown) {
      this.#errors.host++;
      log.error(`blk: queue ${queue}: ${what} failed: ${message(e)}`);
      return false;
    }
  }

  /** Runs a host operation; a throw becomes false, a `host` error count and one log line. */
  #hostCall(log: DeviceLog, req: Request, what: string, op: () => void): boolean {
    try {
      op();
      return true;
    } catch (e: unknown) {
      this.#errors.host++;
      log.error(`blk: queue ${req.queue}: ${what} at sector ${req.header.sector} failed: ${message(e)}`);
      return false;
    }
  }

  /** A request the device refuses: one log line (debug for UNSUPP, which drivers probe with). */
  #reject(log: DeviceLog, req: Request, status: number, reason: string): Outcome {
    const line = `blk: queue ${req.queue}: ${typeName(req.header.type)} sector ${req.header.sector}: ${reason}; ${status === VIRTIO_BLK_S_UNSUPP ? 'UNSUPP' : 'IOERR'}`;
    if (status === VIRTIO_BLK_S_UNSUPP) log.debug(line);
    else log.warn(line);
    return { status, written: 0 };
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
      requests: { ...this.#requests },
      ...this.#counters,
      errors: { ...this.#errors },
      rejectedChains,
      notifications,
      suppressedNotifications,
    };
  }
}
