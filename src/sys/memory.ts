// SPDX-License-Identifier: Apache-2.0
/**
 * Shared memory: memfd_create, mmap(MAP_SHARED) of a descriptor, munmap, and ArrayBuffer views
 * over a mapping.
 *
 * Owns: mapping lifetime (`Mapping.closed`), the size limit of one view (`MAX_VIEW_BYTES`), and
 * splitting a larger mapping into views (`mapViews`).
 * Does not own: guest-physical addressing or bounds checks of guest addresses (memory/ layer
 * builds region-based GuestMemory on these views); which fd or offset to map (vhost-user's
 * SET_MEM_TABLE handling).
 *
 * View size limit, measured with koffi 3.3.4 on Node 20.20.2 (V8 11.3) x64:
 * `koffi.view(addr, len)` works for every len up to 2^32 bytes (4 GiB, exactly; a Uint8Array over
 * it reads and writes the last byte). For len = 2^32 + 1 and above, V8 refuses the external
 * ArrayBuffer and koffi aborts the whole process ("FATAL ERROR: Error::New
 * napi_get_last_error_info"), which no try/catch can stop. So every view is checked against
 * MAX_VIEW_BYTES here before koffi is called, and a mapping above 4 GiB is read through several
 * views (`mapViews`, `Mapping.view`). The limit matches v8::TypedArray::kMaxLength (2^32) in
 * Node 20's headers; a later Node may allow more, but this layer does not assume it.
 *
 * Use after munmap: the ArrayBuffers from `buffer`/`view` cannot be detached (koffi's external
 * buffers are not transferable: structuredClone copies them), so touching one after `munmap`
 * faults the process (SIGSEGV). Callers drop every view before unmapping; `Mapping` refuses to
 * hand out new views once closed.
 */
import { SysError, SysUsageError } from './errors.js';
import { assertFd, closeQuiet } from './fd.js';
import { lastErrno, libc, nativeView, retrying } from './libc.js';

/** Largest ArrayBuffer koffi.view can create without aborting the process (see the file comment). */
export const MAX_VIEW_BYTES = 2 ** 32;

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
/** mmap's error return, (void *)-1. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const MFD_CLOEXEC = 0x1;

/** A MAP_SHARED, read-write mapping of a descriptor. */
export interface Mapping {
  /**
   * Start address, for logs and diagnostics only. It is not usable outside src/sys (DESIGN.md:
   * sys does not leak raw pointers); read and write through `buffer` or `view`.
   */
  readonly address: bigint;
  /** Length in bytes as requested (the kernel maps whole pages). */
  readonly length: number;
  /**
   * One ArrayBuffer over the whole mapping (the same object on every access).
   * @throws SysUsageError when the mapping is closed or longer than MAX_VIEW_BYTES.
   */
  readonly buffer: ArrayBuffer;
  /** True after `munmap`. */
  readonly closed: boolean;
  /**
   * A new ArrayBuffer over `[offset, offset + length)` of the mapping.
   * @throws SysUsageError when the range is outside the mapping, longer than MAX_VIEW_BYTES, or
   * the mapping is closed.
   */
  view(offset: number, length: number): ArrayBuffer;
}

function assertSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new SysUsageError(`${what} ${value} is not a non-negative safe integer`);
}

class SharedMapping implements Mapping {
  readonly address: bigint;
  readonly length: number;
  #closed = false;
  #buffer: ArrayBuffer | undefined;

  constructor(address: bigint, length: number) {
    this.address = address;
    this.length = length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get buffer(): ArrayBuffer {
    if (this.#closed) throw new SysUsageError(`mapping of ${this.length} bytes is unmapped`);
    this.#buffer ??= this.view(0, this.length);
    return this.#buffer;
  }

  view(offset: number, length: number): ArrayBuffer {
    if (this.#closed) throw new SysUsageError(`mapping of ${this.length} bytes is unmapped`);
    assertSize(offset, 'view offset');
    assertSize(length, 'view length');
    if (offset + length > this.length) {
      throw new SysUsageError(`view [${offset}, +${length}) is outside the ${this.length}-byte mapping`);
    }
    if (length > MAX_VIEW_BYTES) {
      throw new SysUsageError(`view of ${length} bytes exceeds MAX_VIEW_BYTES (${MAX_VIEW_BYTES}); use mapViews`);
    }
    return nativeView(this.address + BigInt(offset), length);
  }

  /** Marks the mapping unusable; returns false if it already was. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#buffer = undefined;
    return true;
  }
}

/**
 * Creates an anonymous memory file of `size` bytes (memfd_create + ftruncate), with FD_CLOEXEC.
 * `name` shows in /proc/<pid>/fd links only (at most 249 bytes).
 */
export function memfdCreate(name: string, size: number): number {
  assertSize(size, 'memfd size');
  const fd = retrying('memfd_create', () => libc.memfd_create(name, MFD_CLOEXEC));
  try {
    retrying('ftruncate', () => libc.ftruncate(fd, size));
    return fd;
  } catch (e) {
    closeQuiet(fd);
    throw e;
  }
}

/**
 * Maps `length` bytes of `fd` from `offset` (a multiple of the page size) shared and read-write.
 * The mapping stays valid after `fd` is closed.
 * @throws SysError from mmap (EINVAL for an unaligned offset, ENODEV for an fd that cannot be mapped).
 */
export function mmapShared(fd: number, length: number, offset = 0): Mapping {
  assertFd(fd);
  assertSize(length, 'mapping length');
  assertSize(offset, 'mapping offset');
  if (length === 0) throw new SysUsageError('mapping length must be at least 1 byte');
  const address = libc.mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  if (address === null || address === MAP_FAILED) throw new SysError('mmap', lastErrno());
  return new SharedMapping(address, length);
}

/**
 * Unmaps a mapping and marks it closed; a second call does nothing. Every ArrayBuffer obtained
 * from it must already be unreachable (see the file comment: touching one now faults).
 */
export function munmap(mapping: Mapping): void {
  // Only mappings made by mmapShared may be unmapped: an object that merely looks like one could
  // name any address range of the process.
  if (!(mapping instanceof SharedMapping)) throw new SysUsageError('munmap needs a Mapping returned by mmapShared');
  if (mapping.closed) return;
  if (libc.munmap(mapping.address, mapping.length) !== 0) throw new SysError('munmap', lastErrno());
  mapping.markClosed();
}

/**
 * The whole mapping as consecutive views of at most `chunk` bytes (the last may be shorter),
 * for mappings above MAX_VIEW_BYTES. Each view starts at `offset` within the mapping.
 */
export function mapViews(mapping: Mapping, chunk: number = MAX_VIEW_BYTES): Array<{ offset: number; buffer: ArrayBuffer }> {
  if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > MAX_VIEW_BYTES) {
    throw new SysUsageError(`chunk ${chunk} must be an integer in 1..${MAX_VIEW_BYTES}`);
  }
  const views: Array<{ offset: number; buffer: ArrayBuffer }> = [];
  for (let offset = 0; offset < mapping.length; offset += chunk) {
    views.push({ offset, buffer: mapping.view(offset, Math.min(chunk, mapping.length - offset)) });
  }
  return views;
}
