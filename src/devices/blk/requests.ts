// SPDX-License-Identifier: Apache-2.0
/**
 * Serving one virtio-blk request (VIRTIO 1.3 §5.2.6): parsing `struct virtio_blk_req` out of a
 * chain, validating it, calling the host, and writing the status byte.
 *
 * Owns: the request rules below, and the request, byte and error counts they produce.
 * Does not own: features, config space and the cache-mode byte (`model.ts`, which passes the mode
 * in force), the image (`host.ts`), rings and hostile-chain handling (`queue/`).
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
import type { DeviceLog } from '../../device/contract.js';
import type { ChainReader, ChainWriter, DescriptorChain } from '../../queue/chain.js';
import type { BlockHost } from './host.js';
import type { BlkRequestCounts } from './metrics.js';
import {
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
  type VirtioBlkReqHeader,
  virtioBlkDiscardWriteZeroes,
  virtioBlkReqHeader,
} from './spec.js';
import { errorText } from '../../errors.js';

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

/** The resolved options a request is checked against (the device's settings). */
export interface RequestLimits {
  readonly readOnly: boolean;
  readonly blkSize: number;
  readonly discard: boolean;
  readonly writeZeroes: boolean;
  readonly maxDiscardSectors: number;
  readonly maxDiscardSeg: number;
  readonly maxWriteZeroesSectors: number;
  readonly maxWriteZeroesSeg: number;
  /** The GET_ID answer, 20 bytes. */
  readonly id: Uint8Array;
}

/** What the request handler needs from its device. */
export interface RequestDeps {
  readonly host: BlockHost;
  readonly limits: RequestLimits;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  /** The cache mode in force: 1 writeback, 0 writethrough. */
  mode(): number;
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
  return errorText(e);
}

function emptyRequestCounts(): BlkRequestCounts {
  return { in: 0, out: 0, flush: 0, getId: 0, discard: 0, writeZeroes: 0, other: 0 };
}

export class BlkRequestHandler {
  readonly #host: BlockHost;
  readonly #s: RequestLimits;
  readonly #capacity: number;
  /** Sectors per `blk_size` block: requests must start on a block boundary. */
  readonly #sectorsPerBlock: number;
  readonly #mode: () => number;
  readonly #requests = emptyRequestCounts();
  readonly #counters = { bytesRead: 0, bytesWritten: 0, flushes: 0, discardSegments: 0, writeZeroesSegments: 0, malformed: 0 };
  readonly #errors = { ioerr: 0, unsupp: 0, host: 0, internal: 0 };

  constructor(deps: RequestDeps) {
    this.#host = deps.host;
    this.#s = deps.limits;
    this.#capacity = deps.capacity;
    this.#sectorsPerBlock = deps.limits.blkSize / VIRTIO_BLK_SECTOR_SIZE;
    this.#mode = deps.mode;
  }

  /** Request counts by type (metrics `requests`). */
  get requests(): BlkRequestCounts {
    return { ...this.#requests };
  }

  /** Byte, flush, segment and malformed counts (metrics top level). */
  get counters(): { bytesRead: number; bytesWritten: number; flushes: number; discardSegments: number; writeZeroesSegments: number; malformed: number } {
    return { ...this.#counters };
  }

  /** Error counts (metrics `errors`). */
  get errors(): { ioerr: number; unsupp: number; host: number; internal: number } {
    return { ...this.#errors };
  }

  /** Never throws: an unexpected exception (an AVP bug, or guest memory gone) abandons the chain with length 0. */
  serve(log: DeviceLog, queue: number, chain: DescriptorChain): number {
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
    if (this.#s.readOnly) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, 'write to a read-only device');
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
    if (this.#s.readOnly) return this.#reject(log, req, VIRTIO_BLK_S_IOERR, 'read-only device');
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
    if (!Number.isSafeInteger(sector) || sector > this.#capacity || numSectors > this.#capacity - sector) {
      const at = Number.isSafeInteger(sector) ? String(sector) : '>= 2^53';
      return `sectors [${at}, +${numSectors}) pass the capacity of ${this.#capacity} sectors`;
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
}
