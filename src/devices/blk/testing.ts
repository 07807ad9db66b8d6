// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures for virtio-blk tests: `MemoryBlockHost`, an in-memory image that records every call and
 * can be told to fail; request bytes built by hand with `DataView` (never with the codecs in
 * `spec.ts`, which they exist to check); and a small driver that lays requests out in guest memory
 * through the in-process harness and reads back the status byte.
 *
 * Owns: test fixtures only (exported through `avp/testing`, not the main entry). Does not own: any
 * device behaviour.
 */
import type { VirtioDevice } from '../../device/contract.js';
import type { DeviceHarness } from '../../device/harness.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { BlkHostError } from './errors.js';
import { checkImageRange, totalBytes, type BlockHost } from './host.js';

/** Value the status byte is primed with, so a test can tell "not written" from any real status. */
export const STATUS_UNWRITTEN = 0xee;

/** `struct virtio_blk_req` header: le32 type @0, le32 reserved @4, le64 sector @8. */
export function reqHeaderBytes(type: number, sector: number | bigint, reserved = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, type >>> 0, true);
  v.setUint32(4, reserved >>> 0, true);
  v.setBigUint64(8, BigInt(sector), true);
  return b;
}

/** `struct virtio_blk_discard_write_zeroes`: le64 sector @0, le32 num_sectors @8, le32 flags @12. */
export function segmentBytes(sector: number | bigint, numSectors: number, flags = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(sector), true);
  v.setUint32(8, numSectors >>> 0, true);
  v.setUint32(12, flags >>> 0, true);
  return b;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A deterministic, non-repeating-looking pattern of `n` bytes (seeded), for data round trips. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** What came back for one request. */
export interface BlkReply {
  /** Used length the device reported. */
  len: number;
  /** The status byte (STATUS_UNWRITTEN if the device did not write it). */
  status: number;
  /** For reads and GET_ID: the data buffer's contents after completion. */
  data: Uint8Array;
}

/** A buffer description for `BlkDriver.submit`: bytes to place (readable) or a length to reserve. */
export type BlkPart = { out: Uint8Array } | { in: number; fill?: number };

/**
 * Lays out and sends virtio-blk requests through a `DeviceHarness`. Every buffer is freshly
 * allocated in guest memory (the harness allocator never frees: size the harness memory for the
 * test). Writable buffers are primed (default STATUS_UNWRITTEN) so unwritten bytes are visible.
 */
export class BlkDriver<D extends VirtioDevice = VirtioDevice> {
  constructor(readonly h: DeviceHarness<D>) {}

  /** Copies `bytes` into fresh guest memory and returns its address. */
  put(bytes: Uint8Array): number {
    const addr = this.h.alloc.alloc(Math.max(1, bytes.byteLength));
    this.h.memory.write(addr, bytes);
    return addr;
  }

  /** Reserves `len` bytes of guest memory filled with `fill`. */
  reserve(len: number, fill = STATUS_UNWRITTEN): number {
    const addr = this.h.alloc.alloc(Math.max(1, len));
    this.h.memory.fill(addr, len, fill);
    return addr;
  }

  /**
   * Sends a chain made of `parts` (readable ones first) and returns the used length, the last
   * writable byte (the status) and the writable bytes before it.
   */
  submit(parts: readonly BlkPart[], opts: { queue?: number; indirect?: boolean } = {}): BlkReply {
    const buffers: DriverBuffer[] = [];
    const writable: Array<{ addr: number; len: number }> = [];
    for (const p of parts) {
      if ('out' in p) buffers.push({ addr: this.put(p.out), len: p.out.byteLength });
      else {
        const addr = this.reserve(p.in, p.fill);
        buffers.push({ addr, len: p.in, writable: true });
        writable.push({ addr, len: p.in });
      }
    }
    const table = opts.indirect === true ? this.h.alloc.alloc(16 * buffers.length, 16) : undefined;
    const used = this.h.request(opts.queue ?? 0, buffers, table === undefined ? {} : { indirectTable: table });
    const bytes = concat(...writable.map((w) => this.h.memory.read(w.addr, w.len)));
    // An empty writable part has no status byte: report it as unwritten.
    const status = bytes.length > 0 ? (bytes[bytes.length - 1] ?? STATUS_UNWRITTEN) : STATUS_UNWRITTEN;
    return { len: used.len, status, data: bytes.subarray(0, Math.max(0, bytes.length - 1)) };
  }

  /** IN: header, one writable data buffer, a separate status byte. */
  read(sector: number | bigint, length: number, queue = 0): BlkReply {
    return this.submit([{ out: reqHeaderBytes(0, sector) }, { in: length }, { in: 1 }], { queue });
  }

  /** OUT: header, one readable data buffer, a status byte. */
  write(sector: number | bigint, data: Uint8Array, queue = 0): BlkReply {
    return this.submit([{ out: reqHeaderBytes(1, sector) }, { out: data }, { in: 1 }], { queue });
  }

  /** FLUSH: header and status only. */
  flush(queue = 0): BlkReply {
    return this.submit([{ out: reqHeaderBytes(4, 0) }, { in: 1 }], { queue });
  }

  /** GET_ID with a data buffer of `length` bytes (the spec says 20). */
  getId(length = 20): BlkReply {
    return this.submit([{ out: reqHeaderBytes(8, 0) }, { in: length, fill: 0xaa }, { in: 1 }]);
  }

  /** DISCARD (11) or WRITE_ZEROES (13) with the given segment bytes in one readable buffer. */
  ranges(type: number, segments: readonly Uint8Array[]): BlkReply {
    const parts: BlkPart[] = [{ out: reqHeaderBytes(type, 0) }];
    if (segments.length > 0) parts.push({ out: concat(...segments) });
    parts.push({ in: 1 });
    return this.submit(parts);
  }
}

// ---- an in-memory image ----------------------------------------------------------------------

/** The operations a `MemoryBlockHost` records. */
export type BlockHostOp = 'readv' | 'writev' | 'flush' | 'discard' | 'writeZeroes';

/** One recorded call of a `MemoryBlockHost`. */
export type BlockHostCall =
  | { op: 'readv' | 'writev' | 'discard'; offset: number; length: number }
  | { op: 'writeZeroes'; offset: number; length: number; unmap: boolean }
  | { op: 'flush' };

export interface MemoryBlockHostOptions {
  readOnly?: boolean;
  /** Offer discard (default true unless read-only). */
  discard?: boolean;
  /** Offer write-zeroes (default true unless read-only). */
  writeZeroes?: boolean;
  /** Report that write-zeroes may unmap (default true unless read-only). */
  mayUnmap?: boolean;
  /** Make every operation (true) or the listed ones fail with BLK_HOST_INJECTED_FAILURE. */
  fail?: boolean | readonly BlockHostOp[];
}

/**
 * An in-memory image for tests. Every call is appended to `calls` before it runs (so a failing
 * call is recorded too); `failing` can be changed at any time to make operations throw.
 * Discard zeroes its range, so tests can see that it happened.
 */
export class MemoryBlockHost implements BlockHost {
  readonly data: Uint8Array;
  readonly readOnly: boolean;
  readonly canDiscard: boolean;
  readonly canWriteZeroes: boolean;
  readonly mayUnmap: boolean;
  readonly calls: BlockHostCall[] = [];
  /** Operations that throw when called. */
  readonly failing: Set<BlockHostOp>;
  closed = false;

  /** `image`: a size in bytes (zero-filled) or the initial contents (used in place, not copied). */
  constructor(image: number | Uint8Array, opts: MemoryBlockHostOptions = {}) {
    this.data = typeof image === 'number' ? new Uint8Array(image) : image;
    this.readOnly = opts.readOnly ?? false;
    this.canDiscard = !this.readOnly && (opts.discard ?? true);
    this.canWriteZeroes = !this.readOnly && (opts.writeZeroes ?? true);
    this.mayUnmap = !this.readOnly && (opts.mayUnmap ?? true);
    const all: BlockHostOp[] = ['readv', 'writev', 'flush', 'discard', 'writeZeroes'];
    this.failing = new Set(opts.fail === true ? all : opts.fail === false || opts.fail === undefined ? [] : opts.fail);
  }

  get size(): number {
    return this.data.byteLength;
  }

  /** Number of flush calls so far. */
  get flushes(): number {
    return this.calls.filter((c) => c.op === 'flush').length;
  }

  /** Calls other than flush: what tests check to prove the image was not touched. */
  get dataCalls(): BlockHostCall[] {
    return this.calls.filter((c) => c.op !== 'flush');
  }

  readv(segments: readonly Uint8Array[], offset: number): void {
    const length = totalBytes(segments);
    this.#enter({ op: 'readv', offset, length });
    checkImageRange(this.size, offset, length);
    let at = offset;
    for (const s of segments) {
      s.set(this.data.subarray(at, at + s.byteLength));
      at += s.byteLength;
    }
  }

  writev(segments: readonly Uint8Array[], offset: number): void {
    const length = totalBytes(segments);
    this.#enter({ op: 'writev', offset, length });
    this.#checkWritable('write');
    checkImageRange(this.size, offset, length);
    let at = offset;
    for (const s of segments) {
      this.data.set(s, at);
      at += s.byteLength;
    }
  }

  flush(): void {
    this.#enter({ op: 'flush' });
  }

  discard(offset: number, length: number): void {
    this.#enter({ op: 'discard', offset, length });
    this.#checkWritable('discard');
    checkImageRange(this.size, offset, length);
    this.data.fill(0, offset, offset + length);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.#enter({ op: 'writeZeroes', offset, length, unmap });
    this.#checkWritable('write-zeroes');
    checkImageRange(this.size, offset, length);
    this.data.fill(0, offset, offset + length);
  }

  close(): void {
    this.closed = true;
  }

  #enter(call: BlockHostCall): void {
    this.calls.push(call);
    if (this.failing.has(call.op)) throw new BlkHostError('BLK_HOST_INJECTED_FAILURE', `injected ${call.op} failure`);
  }

  #checkWritable(what: string): void {
    if (this.readOnly) throw new BlkHostError('BLK_HOST_READ_ONLY', `${what} refused: the memory image is read-only`);
  }
}
