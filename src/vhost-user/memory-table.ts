// SPDX-License-Identifier: Apache-2.0
/**
 * The back-end's copy of the front-end's memory table (vhost-user SET_MEM_TABLE, ADD_MEM_REG,
 * REM_MEM_REG).
 *
 * Owns: mapping each region's fd (libvhost-user convention, observed with QEMU 7.2: map the fd
 * from offset 0 for `mmap_offset + size` bytes; the region's data starts at `mmap_offset`),
 * validating regions, and exposing the two address spaces the protocol uses, both as bounds-checked
 * `GuestMemory` over the same bytes:
 * - `gpa`: guest-physical, where descriptors, indirect tables and buffers live;
 * - `uva`: front-end virtual (`user_addr`), where SET_VRING_ADDR points.
 * Several regions may come from one fd (QEMU 7.2 splits guest RAM around the VGA hole).
 * Does not own: rings (the session re-resolves them after every change) or the socket.
 *
 * Hostile memory (issue #18, docs/reliability.md): before mapping, the fd must be a regular file at
 * least `mmap_offset + size` bytes long (fstat), or the first touch past its end would fault the
 * process with SIGBUS, which JavaScript cannot catch. After mapping, the region is sealed against
 * shrinking (F_SEAL_SHRINK) when its file allows it; QEMU's memfd memory already is. A region that
 * cannot be sealed is, by default, accepted with its fd kept open and its size re-checked by
 * `checkIntact` before every loop turn that may touch guest memory; with `requireSealed` it is
 * refused instead.
 *
 * Unmapping is deferred: a change returns the mappings it retired, and the caller unmaps them only
 * after every view into them (queues, device) has been rebuilt, because touching a view of an
 * unmapped region crashes the process instead of throwing.
 */
import { RegionGuestMemory, type MemoryRegion as GuestRegion } from '../memory/guest-memory.js';
import { GuestMemoryError } from '../memory/errors.js';
import { closeQuiet, fdFileSize, mmapShared, munmap, sealAgainstShrink, type Mapping } from '../sys/index.js';
import type { MemoryRegion } from './messages.js';
import { VhostUserBackendError } from './backend-errors.js';

/** Regions the back-end accepts; reported by GET_MAX_MEM_SLOTS (QEMU and rust-vmm use 32 too). */
export const MAX_MEM_SLOTS = 32;
/** Largest view per ArrayBuffer: koffi views are limited to 4 GiB, so big regions are chunked. */
const VIEW_CHUNK = 1 << 30;

/**
 * One mapped region and what it owns: the mapping, and for a region whose file could not be sealed
 * against shrinking, the fd (kept to re-check the file's size). `release` gives both back, once.
 */
export class RegionMapping {
  readonly region: MemoryRegion;
  readonly mapping: Mapping;
  /** The region's fd while it is kept for size checks (unsealed regions only). */
  #fd: number | undefined;

  constructor(region: MemoryRegion, mapping: Mapping, fd: number | undefined) {
    this.region = region;
    this.mapping = mapping;
    this.#fd = fd;
  }

  /** True when the file can shrink under the mapping (no F_SEAL_SHRINK could be set). */
  get unsealed(): boolean {
    return this.#fd !== undefined;
  }

  /**
   * Throws unless the file still covers the mapped range.
   * @throws VhostUserBackendError VHOST_USER_MEMORY_SHRUNK
   */
  checkIntact(): void {
    if (this.#fd === undefined || this.mapping.closed) return;
    const need = this.region.mmapOffset + this.region.size;
    const have = fdFileSize(this.#fd).size;
    if (have < need) {
      throw new VhostUserBackendError('VHOST_USER_MEMORY_SHRUNK', `the front-end shrank the file of the region at guest 0x${this.region.guestAddr.toString(16)} to ${have} bytes, below the ${need} mapped: the connection is dropped before anything touches it`);
    }
  }

  /** Unmaps and closes the fd; a second call does nothing. No view of the mapping may be in use. */
  release(): void {
    if (this.#fd !== undefined) closeQuiet(this.#fd);
    this.#fd = undefined;
    munmap(this.mapping);
  }
}

type Mapped = RegionMapping;

export interface MemoryTableOptions {
  /** Refuse regions whose file cannot be sealed against shrinking (default false: check sizes instead). */
  readonly requireSealed?: boolean;
}

export class MemoryTable {
  readonly #requireSealed: boolean;
  #mapped: Mapped[] = [];
  #gpa = new RegionGuestMemory([]);
  #uva = new RegionGuestMemory([]);

  /** Guest-physical memory. */
  get gpa(): RegionGuestMemory {
    return this.#gpa;
  }

  /** Front-end virtual memory (ring addresses). */
  get uva(): RegionGuestMemory {
    return this.#uva;
  }

  constructor(opts: MemoryTableOptions = {}) {
    this.#requireSealed = opts.requireSealed === true;
  }

  get regions(): readonly MemoryRegion[] {
    return this.#mapped.map((m) => m.region);
  }

  /** Live mappings (for leak accounting in tests). */
  get mappingCount(): number {
    return this.#mapped.length;
  }

  /** True when some region's file could shrink under its mapping. */
  get hasUnsealed(): boolean {
    return this.#mapped.some((m) => m.unsealed);
  }

  /**
   * Checks that no region's file shrank below its mapping (fstat per unsealed region; nothing for
   * sealed ones). Call before anything may touch guest memory.
   * @throws VhostUserBackendError VHOST_USER_MEMORY_SHRUNK
   */
  checkIntact(): void {
    for (const m of this.#mapped) m.checkIntact();
  }

  /**
   * Adds one region, taking ownership of `fd` (closed in every case).
   * @throws VhostUserBackendError VHOST_USER_BAD_MEMORY_REGION; the table is unchanged.
   */
  add(region: MemoryRegion, fd: number): void {
    if (this.#mapped.length >= MAX_MEM_SLOTS) {
      closeQuiet(fd);
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `memory table is full (${MAX_MEM_SLOTS} regions)`);
    }
    const mapped = mapRegion(region, fd, this.#requireSealed);
    try {
      this.#rebuild([...this.#mapped, mapped]);
    } catch (e: unknown) {
      mapped.release();
      throw e;
    }
  }

  /**
   * Removes the region with the same guest address, size and user address.
   * @returns the retired mapping, to release once no view uses it
   * @throws VhostUserBackendError VHOST_USER_BAD_MEMORY_REGION when no region matches.
   */
  remove(region: MemoryRegion): RegionMapping[] {
    const i = this.#mapped.findIndex((m) => m.region.guestAddr === region.guestAddr && m.region.size === region.size && m.region.userAddr === region.userAddr);
    if (i < 0) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `REM_MEM_REG: no region at guest 0x${region.guestAddr.toString(16)} of ${region.size} bytes`);
    const kept = this.#mapped.filter((_, j) => j !== i);
    const retired = this.#mapped[i];
    this.#rebuild(kept);
    return retired === undefined ? [] : [retired];
  }

  /**
   * Replaces the whole table (SET_MEM_TABLE), taking ownership of every fd.
   * @returns the retired mappings, to release once no view uses them
   * @throws VhostUserBackendError VHOST_USER_BAD_MEMORY_REGION; the old table stays in force.
   */
  replace(regions: readonly MemoryRegion[], fds: readonly number[]): RegionMapping[] {
    const fresh: Mapped[] = [];
    try {
      regions.forEach((r, i) => {
        const fd = fds[i];
        if (fd === undefined) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `SET_MEM_TABLE: region ${i} has no fd`);
        fresh.push(mapRegion(r, fd, this.#requireSealed));
      });
      const retired = this.#mapped;
      this.#rebuild(fresh);
      return retired;
    } catch (e: unknown) {
      // mapRegion closed the fd it failed on; the ones after it were never looked at.
      for (const fd of fds.slice(fresh.length + 1)) closeQuiet(fd);
      for (const m of fresh) m.release();
      throw e;
    }
  }

  /** Forgets every region; returns the mappings to release. */
  clear(): RegionMapping[] {
    const retired = this.#mapped;
    this.#rebuild([]);
    return retired;
  }

  #rebuild(mapped: Mapped[]): void {
    const gpa: GuestRegion[] = [];
    const uva: GuestRegion[] = [];
    for (const m of mapped) {
      for (let off = 0; off < m.region.size; off += VIEW_CHUNK) {
        const len = Math.min(VIEW_CHUNK, m.region.size - off);
        const bytes = new Uint8Array(m.mapping.view(m.region.mmapOffset + off, len));
        gpa.push({ guestBase: m.region.guestAddr + off, bytes });
        uva.push({ guestBase: m.region.userAddr + off, bytes });
      }
    }
    try {
      const g = new RegionGuestMemory(gpa);
      const u = new RegionGuestMemory(uva);
      this.#gpa = g;
      this.#uva = u;
      this.#mapped = mapped;
    } catch (e: unknown) {
      if (!(e instanceof GuestMemoryError)) throw e;
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `memory table rejected: ${e.message}`, { cause: e });
    }
  }
}

/**
 * Validates and maps one region. Takes ownership of `fd`: it is closed in every case, except that
 * an unsealed region keeps it (inside the returned RegionMapping) for later size checks.
 */
function mapRegion(region: MemoryRegion, fd: number, requireSealed: boolean): Mapped {
  let keep = false;
  try {
    const { guestAddr, size, userAddr, mmapOffset } = region;
    const limit = 2 ** 53;
    for (const [name, v] of [['guest address', guestAddr], ['size', size], ['user address', userAddr], ['mmap offset', mmapOffset]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `region ${name} ${v} is not a valid 64-bit value below 2^53`);
    }
    if (size === 0) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `region at guest 0x${guestAddr.toString(16)} is empty`);
    if (size > limit - guestAddr || size > limit - userAddr || size > limit - mmapOffset) {
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `region at guest 0x${guestAddr.toString(16)} of ${size} bytes ends above 2^53`);
    }
    const where = `region at guest 0x${guestAddr.toString(16)}`;
    const file = fdSize(fd, where);
    // mmap accepts a range past the end of the file; touching it would SIGBUS (regression #18 case 1).
    if (file.size < mmapOffset + size) {
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `${where}: mmap_offset + size = ${mmapOffset + size} bytes, but its fd holds only ${file.size}`);
    }
    let mapping: Mapping;
    try {
      mapping = mmapShared(fd, mmapOffset + size, 0);
    } catch (e: unknown) {
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `cannot map ${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    // Seal after mapping, and check the size once more: the front-end may have shrunk the file
    // between the fstat and the seal.
    const sealed = sealAgainstShrink(fd);
    const after = fdFileSize(fd).size;
    if ((!sealed && requireSealed) || after < mmapOffset + size) {
      munmap(mapping);
      const why = after < mmapOffset + size ? `its fd shrank to ${after} bytes while it was mapped` : 'its file cannot be sealed against shrinking (F_SEAL_SHRINK) and sealed memory is required';
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `${where}: ${why}`);
    }
    keep = !sealed;
    return new RegionMapping(region, mapping, keep ? fd : undefined);
  } finally {
    if (!keep) closeQuiet(fd);
  }
}

/** fstat of a region's fd, as a region error when it is not a regular file. */
function fdSize(fd: number, where: string): { size: number } {
  let file;
  try {
    file = fdFileSize(fd);
  } catch (e: unknown) {
    throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `${where}: fstat of its fd failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!file.regular) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `${where}: its fd is not a regular file (memfd, tmpfs or hugetlbfs)`);
  return file;
}
