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
 * Memory a front-end shrinks (ftruncate) after it was mapped faults the process with SIGBUS on
 * the next touch of a page past the new end, and SIGBUS cannot be caught from JavaScript.
 * MAP_POPULATE or mlock do not help (truncation unmaps the pages from every mapping). What does:
 * checking the fd's size against the mapping before mapping (`fdFileSize`), and file seals
 * (`sealAgainstShrink`, memfd(2) F_SEAL_SHRINK), which make the shrink itself fail. See
 * docs/reliability.md for the policy the vhost-user back-end builds on these.
 *
 * Use after munmap: the ArrayBuffers from `buffer`/`view` cannot be detached (koffi's external
 * buffers are not transferable: structuredClone copies them), so touching one after `munmap`
 * faults the process (SIGSEGV). Callers drop every view before unmapping; `Mapping` refuses to
 * hand out new views once closed.
 */
import { fstatSync } from 'node:fs';
import { SysError, SysUsageError } from './errors.js';
import { assertFd, closeQuiet } from './fd.js';
import { EINTR, lastErrno, libc, nativeView, retrying } from './libc.js';

/** Largest ArrayBuffer koffi.view can create without aborting the process (see the file comment). */
export const MAX_VIEW_BYTES = 2 ** 32;

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
/** mmap's error return, (void *)-1. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;

/** fcntl commands and seal bits of memfd_create(2) / fcntl(2) "File Sealing" (linux/fcntl.h). */
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

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
export function memfdCreate(name: string, size: number, opts: { allowSealing?: boolean } = {}): number {
  assertSize(size, 'memfd size');
  // Without MFD_ALLOW_SEALING the kernel sets F_SEAL_SEAL at once: no seal can ever be added.
  const flags = MFD_CLOEXEC | (opts.allowSealing === true ? MFD_ALLOW_SEALING : 0);
  const fd = retrying('memfd_create', () => libc.memfd_create(name, flags));
  try {
    retrying('ftruncate', () => libc.ftruncate(fd, size));
    return fd;
  } catch (e) {
    closeQuiet(fd);
    throw e;
  }
}

/** Sets the size of the file behind `fd` (ftruncate). @throws SysError EPERM when a seal forbids it. */
export function ftruncate(fd: number, size: number): void {
  assertFd(fd);
  assertSize(size, 'file size');
  retrying('ftruncate', () => libc.ftruncate(fd, size));
}

/** What `fdFileSize` reports: the size, and whether the fd is a regular file (memfd, tmpfs, hugetlbfs). */
export interface FdFileSize {
  readonly regular: boolean;
  /** st_size in bytes (0 for anything that is not a regular file). */
  readonly size: number;
}

/**
 * fstat of `fd`: its size and whether it is a regular file. Mapping a range past st_size succeeds
 * but faults (SIGBUS) on first touch, so mappers compare the range with this first.
 * @throws SysError EBADF when `fd` is not open.
 */
export function fdFileSize(fd: number): FdFileSize {
  assertFd(fd);
  try {
    const st = fstatSync(fd, { bigint: true });
    const size = st.size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(st.size);
    return { regular: st.isFile(), size: st.isFile() ? size : 0 };
  } catch (e: unknown) {
    // Node reports fstat failures as errors with a negative libuv errno; keep this layer's type.
    const errno = typeof e === 'object' && e !== null && 'errno' in e && typeof e.errno === 'number' ? -e.errno : 9;
    throw new SysError('fstat', errno, { cause: e });
  }
}

/**
 * The seals on `fd` (F_GET_SEALS), or null when its file does not support sealing (not shmem or
 * hugetlbfs: EINVAL).
 */
export function getSeals(fd: number): number | null {
  assertFd(fd);
  for (;;) {
    const r = libc.fcntl(fd, F_GET_SEALS);
    if (r >= 0) return r;
    const errno = lastErrno();
    if (errno !== EINTR) return null;
  }
}

/**
 * Makes sure the file behind `fd` can no longer shrink: true when F_SEAL_SHRINK is set afterwards
 * (already there, or added now), false when it cannot be (the file does not support seals, or
 * F_SEAL_SEAL forbids new ones, e.g. a memfd made without MFD_ALLOW_SEALING). The seal belongs to
 * the file, so it also binds whoever else holds it; QEMU's memory-backend-memfd sets it itself
 * (seal=on, the default), so adding it never takes anything from a front-end that plays by the rules.
 */
export function sealAgainstShrink(fd: number): boolean {
  const seals = getSeals(fd);
  if (seals === null) return false;
  if ((seals & F_SEAL_SHRINK) !== 0) return true;
  if ((seals & F_SEAL_SEAL) !== 0) return false;
  for (;;) {
    if (libc.fcntl(fd, F_ADD_SEALS, 'int', F_SEAL_SHRINK) === 0) return true;
    if (lastErrno() !== EINTR) return false;
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
