// SPDX-License-Identifier: Apache-2.0
/**
 * The host resource behind virtio-blk: a byte-addressed image that reads and writes straight
 * between the image and zero-copy views of guest memory.
 *
 * Owns: the `BlockHost` interface and `FileBlockHost`, a raw image file through node:fs. The
 * in-memory fake for tests, `MemoryBlockHost`, is in `testing.ts`.
 * Does not own: request validation (`model.ts` checks every range against the capacity before a
 * host is called; hosts re-check only as a guard against AVP bugs), sector arithmetic, or
 * fallocate(2) itself, which only `sys/` may call: `FileBlockHost` takes it as an injected
 * capability (the CLI passes sys's `fallocate`).
 *
 * Synchronous I/O is deliberate. `readvSync`, `writevSync` and `fdatasyncSync` block the calling
 * thread, and the vhost-user runtime runs device models in a worker thread (see
 * reference/qemu-7.2-and-node-notes.md, "worker" mode), so Node's main event loop never waits on
 * the disk. The in-process harness runs them on the test's thread, which is what tests want.
 * A synchronous model also keeps request completion in order per queue and needs no buffering:
 * the guest's pages are the I/O buffers.
 */
import fs from 'node:fs';
import { BlkConfigError, BlkHostError } from './errors.js';

/** fallocate(fd, mode, offset, length) as `sys/` exposes it; throws on failure (errno in the error). */
export type FallocateFn = (fd: number, mode: number, offset: number, length: number) => void;

/* fallocate modes, linux/falloc.h. Repeated here (not imported) because devices may not import sys. */
/** Keep the file size even when the range reaches past the end. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
/** Deallocate the range; it then reads as zeros. Must be combined with FALLOC_FL_KEEP_SIZE. */
export const FALLOC_FL_PUNCH_HOLE = 0x02;
/** Make the range read as zeros, keeping its blocks allocated. */
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** Linux IOV_MAX: preadv/pwritev refuse more iovecs than this in one call (EINVAL). */
const IOV_MAX = 1024;
/** Default size of the zero buffer written when a range cannot be zeroed with fallocate. */
export const ZERO_CHUNK_DEFAULT = 1 << 20;

/** A byte-addressed block store. Every range passed in lies within [0, size). */
export interface BlockHost {
  /** Size in bytes. The device exposes floor(size / 512) sectors. */
  readonly size: number;
  /** Writes, discards and write-zeroes are refused; the device offers VIRTIO_BLK_F_RO. */
  readonly readOnly: boolean;
  /** `discard` is available (the device may offer VIRTIO_BLK_F_DISCARD). */
  readonly canDiscard: boolean;
  /** `writeZeroes` is available (the device may offer VIRTIO_BLK_F_WRITE_ZEROES). */
  readonly canWriteZeroes: boolean;
  /** `writeZeroes(…, true)` may deallocate blocks (config `write_zeroes_may_unmap`, §5.2.6.2). */
  readonly mayUnmap: boolean;
  /** Fills `segments` in order from the image at byte `offset`, completely, or throws. */
  readv(segments: readonly Uint8Array[], offset: number): void;
  /** Writes `segments` in order to the image at byte `offset`, completely, or throws. */
  writev(segments: readonly Uint8Array[], offset: number): void;
  /** Makes every completed write durable (fdatasync). */
  flush(): void;
  /** The range's contents become undefined; a host may deallocate it. */
  discard(offset: number, length: number): void;
  /** The range reads as zeros afterwards; with `unmap` the host may deallocate it. */
  writeZeroes(offset: number, length: number, unmap: boolean): void;
  /** Releases the resource (closes the file). */
  close(): void;
}

/** Checks that [offset, offset + length) lies in [0, size) (an AVP bug otherwise: the device checks first). */
/**
 * Guards a host operation against a range outside [0, size).
 * Assertion (an AVP bug, never guest input): the device checks every range against the capacity
 * before it calls the host. @throws BlkHostError BLK_HOST_OUT_OF_RANGE
 */
export function checkImageRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > size - offset) {
    throw new BlkHostError('BLK_HOST_OUT_OF_RANGE', `range [${offset}, +${length}) is outside the ${size}-byte image`);
  }
}

/** Bytes in all of `segments`. */
export function totalBytes(segments: readonly Uint8Array[]): number {
  let n = 0;
  for (const s of segments) n += s.byteLength;
  return n;
}

/**
 * Runs a positional vectored transfer to completion: at most IOV_MAX iovecs per call, resuming
 * after short transfers (preadv/pwritev may move fewer bytes than asked, and Linux caps one call
 * at about 2 GiB). `io` returns the bytes it moved; 0 before the end means the image ended.
 */
function transferAll(segments: readonly Uint8Array[], offset: number, what: string, io: (batch: Uint8Array[], position: number) => number): void {
  const left = segments.filter((s) => s.byteLength > 0);
  let index = 0;
  let position = offset;
  while (index < left.length) {
    const moved = io(left.slice(index, index + IOV_MAX), position);
    if (moved <= 0) throw new BlkHostError('BLK_HOST_SHORT_IO', `${what} at byte ${position}: the image ended (it shrank after it was opened?)`);
    position += moved;
    let skip = moved;
    while (skip > 0) {
      // Safe: io() never reports more bytes than the batch holds, so a segment is left.
      const seg = left[index]!;
      if (seg.byteLength <= skip) {
        skip -= seg.byteLength;
        index++;
      } else {
        left[index] = seg.subarray(skip);
        skip = 0;
      }
    }
  }
}

/** True for "this filesystem does not support that fallocate mode" (sys's SysError or a Node-style error). */
function isNotSupported(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  // sys's SysError names the errno in `errnoName`; Node's fs errors (and test fakes) in `code`.
  // The cast only reads two optional properties of an arbitrary object.
  const { errnoName, code } = e as { errnoName?: unknown; code?: unknown };
  return [errnoName, code].some((v) => v === 'EOPNOTSUPP' || v === 'ENOTSUP');
}

export interface FileBlockHostOptions {
  /** Open O_RDONLY and refuse every write (default false). */
  readOnly?: boolean;
  /**
   * fallocate(2) from `sys/`. With it, discard punches holes and write-zeroes zeroes ranges in
   * place; without it (or when the filesystem answers EOPNOTSUPP), zeros are written.
   */
  fallocate?: FallocateFn;
  /** Bytes per write when zeros are written by hand (default 1 MiB): bounds the zero buffer. */
  zeroChunkSize?: number;
}

/**
 * A raw image file. Its size is taken once at open; the device's capacity does not follow later
 * changes (resizing is not supported).
 *
 * DISCARD punches a hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE); WRITE_ZEROES punches a hole
 * when the driver allows unmapping and zeroes the range in place (FALLOC_FL_ZERO_RANGE) otherwise.
 * When no fallocate was given, or a mode answers EOPNOTSUPP (remembered, so it is not retried),
 * the range is overwritten with zeros in chunks of `zeroChunkSize`: a discarded range reads back
 * as zeros either way, although §5.2.6.1 lets the driver assume nothing about it.
 */
export class FileBlockHost implements BlockHost {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly canDiscard: boolean;
  readonly canWriteZeroes: boolean;
  readonly mayUnmap: boolean;
  readonly #fallocate: FallocateFn | undefined;
  readonly #zeroChunk: number;
  #fd: number;
  #zeros: Uint8Array | undefined;
  #punchHole = true;
  #zeroRange = true;

  /**
   * Opens `path` (read-write, or O_RDONLY with `readOnly`).
   * @throws Error from node:fs (ENOENT, EACCES, ...); BlkHostError BLK_HOST_NOT_A_FILE when `path`
   * is not a regular file; BlkConfigError BLK_BAD_OPTION when `zeroChunkSize` is not a positive integer.
   */
  constructor(path: string, opts: FileBlockHostOptions = {}) {
    this.#zeroChunk = opts.zeroChunkSize ?? ZERO_CHUNK_DEFAULT;
    if (!Number.isSafeInteger(this.#zeroChunk) || this.#zeroChunk < 1) throw new BlkConfigError('BLK_BAD_OPTION', `zeroChunkSize must be a positive integer, got ${this.#zeroChunk}`);
    this.path = path;
    this.readOnly = opts.readOnly ?? false;
    this.#fd = fs.openSync(path, this.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR);
    const st = fs.fstatSync(this.#fd);
    if (!st.isFile()) {
      fs.closeSync(this.#fd);
      // Block devices report size 0 through fstat and Node has no lseek(SEEK_END) to size them.
      throw new BlkHostError('BLK_HOST_NOT_A_FILE', `${path} is not a regular file (raw image files only)`);
    }
    this.size = st.size;
    this.#fallocate = opts.fallocate;
    this.canDiscard = !this.readOnly;
    this.canWriteZeroes = !this.readOnly;
    this.mayUnmap = !this.readOnly && this.#fallocate !== undefined;
  }

  /** The open file descriptor (-1 after close). */
  get fd(): number {
    return this.#fd;
  }

  readv(segments: readonly Uint8Array[], offset: number): void {
    checkImageRange(this.size, offset, totalBytes(segments));
    transferAll(segments, offset, 'read', (batch, position) => fs.readvSync(this.#fd, batch, position));
  }

  writev(segments: readonly Uint8Array[], offset: number): void {
    this.#checkWritable('write');
    checkImageRange(this.size, offset, totalBytes(segments));
    transferAll(segments, offset, 'write', (batch, position) => fs.writevSync(this.#fd, batch, position));
  }

  /** fdatasync(2). A read-only image has nothing to make durable: no call. */
  flush(): void {
    if (!this.readOnly) fs.fdatasyncSync(this.#fd);
  }

  discard(offset: number, length: number): void {
    this.#checkWritable('discard');
    checkImageRange(this.size, offset, length);
    if (length === 0) return;
    if (this.#tryPunchHole(offset, length)) return;
    this.#writeZeroBytes(offset, length);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.#checkWritable('write-zeroes');
    checkImageRange(this.size, offset, length);
    if (length === 0) return;
    // §5.2.6.2: "if the unmap is set, the device MAY deallocate the specified range".
    if (unmap && this.#tryPunchHole(offset, length)) return;
    if (this.#tryZeroRange(offset, length)) return;
    this.#writeZeroBytes(offset, length);
  }

  close(): void {
    if (this.#fd < 0) return;
    fs.closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Assertion (an AVP bug, never guest input): the device refuses writes to a read-only device first. */
  #checkWritable(what: string): void {
    if (this.readOnly) throw new BlkHostError('BLK_HOST_READ_ONLY', `${what} refused: ${this.path} is open read-only`);
  }

  /** True when the hole was punched; false when fallocate is missing or unsupported here. */
  #tryPunchHole(offset: number, length: number): boolean {
    if (this.#fallocate === undefined || !this.#punchHole) return false;
    try {
      this.#fallocate(this.#fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
      return true;
    } catch (e: unknown) {
      if (!isNotSupported(e)) throw e;
      this.#punchHole = false;
      return false;
    }
  }

  #tryZeroRange(offset: number, length: number): boolean {
    if (this.#fallocate === undefined || !this.#zeroRange) return false;
    try {
      // KEEP_SIZE: the range never passes the end (checked above), but the file must not grow anyway.
      this.#fallocate(this.#fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
      return true;
    } catch (e: unknown) {
      // tmpfs, for one, has no ZERO_RANGE.
      if (!isNotSupported(e)) throw e;
      this.#zeroRange = false;
      return false;
    }
  }

  /** Overwrites the range with zeros from one reused buffer of at most `zeroChunkSize` bytes. */
  #writeZeroBytes(offset: number, length: number): void {
    const zeros = (this.#zeros ??= new Uint8Array(this.#zeroChunk));
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const n = Math.min(end - position, zeros.byteLength);
      const written = fs.writeSync(this.#fd, zeros, 0, n, position);
      if (written <= 0) throw new BlkHostError('BLK_HOST_SHORT_IO', `zero write at byte ${position} made no progress`);
      position += written;
    }
  }
}
