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
 * Unmapping is deferred: a change returns the mappings it retired, and the caller unmaps them only
 * after every view into them (queues, device) has been rebuilt, because touching a view of an
 * unmapped region crashes the process instead of throwing.
 */
import { RegionGuestMemory, type MemoryRegion as GuestRegion } from '../memory/guest-memory.js';
import { GuestMemoryError } from '../memory/errors.js';
import { closeQuiet, mmapShared, munmap, type Mapping } from '../sys/index.js';
import type { MemoryRegion } from './messages.js';
import { VhostUserBackendError } from './backend-errors.js';

/** Regions the back-end accepts; reported by GET_MAX_MEM_SLOTS (QEMU and rust-vmm use 32 too). */
export const MAX_MEM_SLOTS = 32;
/** Largest view per ArrayBuffer: koffi views are limited to 4 GiB, so big regions are chunked. */
const VIEW_CHUNK = 1 << 30;

interface Mapped {
  readonly region: MemoryRegion;
  readonly mapping: Mapping;
}

export class MemoryTable {
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

  get regions(): readonly MemoryRegion[] {
    return this.#mapped.map((m) => m.region);
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
    const mapped = mapRegion(region, fd);
    try {
      this.#rebuild([...this.#mapped, mapped]);
    } catch (e: unknown) {
      munmap(mapped.mapping);
      throw e;
    }
  }

  /**
   * Removes the region with the same guest address, size and user address.
   * @returns the retired mapping, to unmap once no view uses it
   * @throws VhostUserBackendError VHOST_USER_BAD_MEMORY_REGION when no region matches.
   */
  remove(region: MemoryRegion): Mapping[] {
    const i = this.#mapped.findIndex((m) => m.region.guestAddr === region.guestAddr && m.region.size === region.size && m.region.userAddr === region.userAddr);
    if (i < 0) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `REM_MEM_REG: no region at guest 0x${region.guestAddr.toString(16)} of ${region.size} bytes`);
    const kept = this.#mapped.filter((_, j) => j !== i);
    const retired = this.#mapped[i];
    this.#rebuild(kept);
    return retired === undefined ? [] : [retired.mapping];
  }

  /**
   * Replaces the whole table (SET_MEM_TABLE), taking ownership of every fd.
   * @returns the retired mappings, to unmap once no view uses them
   * @throws VhostUserBackendError VHOST_USER_BAD_MEMORY_REGION; the old table stays in force.
   */
  replace(regions: readonly MemoryRegion[], fds: readonly number[]): Mapping[] {
    const fresh: Mapped[] = [];
    try {
      regions.forEach((r, i) => {
        const fd = fds[i];
        if (fd === undefined) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `SET_MEM_TABLE: region ${i} has no fd`);
        fresh.push(mapRegion(r, fd));
      });
      const retired = this.#mapped.map((m) => m.mapping);
      this.#rebuild(fresh);
      return retired;
    } catch (e: unknown) {
      for (const fd of fds.slice(fresh.length)) closeQuiet(fd);
      for (const m of fresh) munmap(m.mapping);
      throw e;
    }
  }

  /** Forgets every region; returns the mappings to unmap. */
  clear(): Mapping[] {
    const retired = this.#mapped.map((m) => m.mapping);
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

/** Validates and maps one region; closes `fd` in every case. */
function mapRegion(region: MemoryRegion, fd: number): Mapped {
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
    let mapping: Mapping;
    try {
      mapping = mmapShared(fd, mmapOffset + size, 0);
    } catch (e: unknown) {
      throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', `cannot map region at guest 0x${guestAddr.toString(16)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return { region, mapping };
  } finally {
    closeQuiet(fd);
  }
}
