// SPDX-License-Identifier: Apache-2.0
/**
 * The 2D resources of a virtio-gpu device (VIRTIO 1.3 §5.7.6.8): host copies of the guest's
 * images, their backing pages in guest memory, and the host memory budget they live in.
 *
 * Owns: the resource table (ids chosen by the guest, 0 invalid), the budget (resource count and
 * pixel bytes, both capped by options: every host allocation here is sized by guest-claimed
 * width × height, so the cap is checked before allocating), backing scatter lists, and the copy of
 * TRANSFER_TO_HOST_2D from guest pages into the host image.
 * Does not own: request parsing or responses (`commands.ts`), scanouts (`model.ts`).
 *
 * Hostile input: a rectangle must lie inside the resource; each row a transfer reads must lie
 * inside the backing (QEMU copies what it finds and leaves the rest; we refuse the request); every
 * backing entry must lie in guest memory when attached, and is checked again on every copy (guest
 * memory can change under a live device).
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { GPU_BYTES_PER_PIXEL, GPU_FORMATS } from './spec.js';

/** A rectangle in pixels (`virtio_gpu_rect`). */
export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** One backing entry (`virtio_gpu_mem_entry`): guest-physical address and length. */
export interface BackingEntry {
  readonly addr: number;
  readonly length: number;
}

/** Most backing entries one ATTACH_BACKING may carry (QEMU's limit: 16384). */
export const MAX_BACKING_ENTRIES = 16384;

/** True when `r` lies inside a `width` × `height` image (all u32 values: sums stay exact). */
export function rectInside(r: Rect, width: number, height: number): boolean {
  return r.x <= width && r.y <= height && r.width <= width - r.x && r.height <= height - r.y;
}

/** The intersection of two rectangles, or null when they do not overlap. */
export function intersect(a: Rect, b: Rect): Rect | null {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width);
  const y2 = Math.min(a.y + a.height, b.y + b.height);
  return x2 > x && y2 > y ? { x, y, width: x2 - x, height: y2 - y } : null;
}

/** A host image with its guest backing. */
export class Resource {
  readonly id: number;
  readonly format: number;
  readonly width: number;
  readonly height: number;
  /** The pixels, `width × 4` bytes a row, in the resource's own format. */
  readonly pixels: Uint8Array;
  #backing: readonly BackingEntry[] | undefined;
  /** Offset of each entry within the backing (for the binary search of `copyFromBacking`). */
  #starts: Float64Array = new Float64Array(0);
  #backingBytes = 0;

  constructor(id: number, format: number, width: number, height: number) {
    this.id = id;
    this.format = format;
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * GPU_BYTES_PER_PIXEL);
  }

  get stride(): number {
    return this.width * GPU_BYTES_PER_PIXEL;
  }

  get hasBacking(): boolean {
    return this.#backing !== undefined;
  }

  /** Total bytes of the backing (0 without one). */
  get backingBytes(): number {
    return this.#backingBytes;
  }

  attach(entries: readonly BackingEntry[]): void {
    this.#backing = entries;
    this.#starts = new Float64Array(entries.length);
    let at = 0;
    entries.forEach((e, i) => {
      this.#starts[i] = at;
      at += e.length;
    });
    this.#backingBytes = at;
  }

  detach(): void {
    this.#backing = undefined;
    this.#starts = new Float64Array(0);
    this.#backingBytes = 0;
  }

  /**
   * TRANSFER_TO_HOST_2D (§5.7.6.8): row `h` of `r` is read from backing offset `offset + stride·h`
   * (the layout Linux uses: `offset = x·4 + y·pitch`). Returns null when done, or what is wrong:
   * the rectangle outside the resource, or a row outside the backing. A guest memory fault while
   * copying throws GuestMemoryError (the caller answers ERR_UNSPEC); rows before it are copied.
   */
  transfer(memory: GuestMemory, r: Rect, offset: number): string | null {
    if (!rectInside(r, this.width, this.height)) return `rect ${r.width}x${r.height}+${r.x}+${r.y} outside the ${this.width}x${this.height} resource`;
    if (this.#backing === undefined) return 'no backing attached';
    if (r.width === 0 || r.height === 0) return null;
    const rowBytes = r.width * GPU_BYTES_PER_PIXEL;
    // offset is a u64 read as a number: a non-safe value is out of any backing anyway.
    const lastRowEnd = offset + this.stride * (r.height - 1) + rowBytes;
    if (!Number.isSafeInteger(offset) || lastRowEnd > this.#backingBytes) {
      return `rows up to byte ${lastRowEnd} from offset ${offset}, past the ${this.#backingBytes}-byte backing`;
    }
    const dst0 = r.y * this.stride + r.x * GPU_BYTES_PER_PIXEL;
    if (r.x === 0 && r.width === this.width) {
      // Whole rows: one contiguous run in both the backing and the image.
      this.#copyFromBacking(memory, offset, dst0, this.stride * r.height);
      return null;
    }
    for (let h = 0; h < r.height; h++) this.#copyFromBacking(memory, offset + this.stride * h, dst0 + this.stride * h, rowBytes);
    return null;
  }

  /** Copies `len` backing bytes from backing offset `from` into `pixels` at `to` (both in range). */
  #copyFromBacking(memory: GuestMemory, from: number, to: number, len: number): void {
    // Safe: transfer() checked that a backing is attached and that [from, from + len) lies in it.
    const entries = this.#backing!;
    let i = this.#entryAt(from);
    let within = from - (this.#starts[i] ?? 0);
    let done = 0;
    while (done < len) {
      const e = entries[i];
      // Our own bug if it happens: the range was checked against the backing's total length.
      if (e === undefined) throw new Error(`backing copy ran past entry ${i}`);
      const n = Math.min(e.length - within, len - done);
      if (n > 0) memory.readInto(e.addr + within, this.pixels.subarray(to + done, to + done + n));
      done += n;
      i++;
      within = 0;
    }
  }

  /** Index of the entry holding backing offset `off` (the last entry starting at or before it). */
  #entryAt(off: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#starts[mid] ?? 0) <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

export type CreateResult = { ok: Resource } | { error: 'exists' | 'format' | 'size' | 'budget' | 'count' };

/** The resource table and its host memory budget. */
export class ResourceTable {
  readonly maxResources: number;
  readonly maxBytes: number;
  readonly #resources = new Map<number, Resource>();
  #bytes = 0;

  constructor(opts: { maxResources: number; maxBytes: number }) {
    this.maxResources = opts.maxResources;
    this.maxBytes = opts.maxBytes;
  }

  /** Host bytes held by resource images. */
  get bytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#resources.size;
  }

  get(id: number): Resource | undefined {
    return this.#resources.get(id);
  }

  /** RESOURCE_CREATE_2D: checks the id, the format, the size and the budget before allocating. */
  create(id: number, format: number, width: number, height: number): CreateResult {
    if (this.#resources.has(id)) return { error: 'exists' };
    if (!GPU_FORMATS.has(format)) return { error: 'format' };
    if (width === 0 || height === 0) return { error: 'size' };
    if (this.#resources.size >= this.maxResources) return { error: 'count' };
    // u32 × u32 × 4 can exceed 2^53, but then it also exceeds any budget, which is all we ask.
    const bytes = width * height * GPU_BYTES_PER_PIXEL;
    if (bytes > this.maxBytes - this.#bytes) return { error: 'budget' };
    const r = new Resource(id, format, width, height);
    this.#resources.set(id, r);
    this.#bytes += bytes;
    return { ok: r };
  }

  /** RESOURCE_UNREF. Returns false when there is no such resource. */
  unref(id: number): boolean {
    const r = this.#resources.get(id);
    if (r === undefined) return false;
    this.#resources.delete(id);
    this.#bytes -= r.pixels.byteLength;
    return true;
  }

  clear(): void {
    this.#resources.clear();
    this.#bytes = 0;
  }
}
