// SPDX-License-Identifier: Apache-2.0
/**
 * Pixel conversions of virtio-gpu resources and PNG encoding of the host's view of a scanout.
 *
 * Owns: reading a rectangle of a resource in its own format (spec.ts GPU_FORMATS) as x8r8g8b8
 * (QEMU's display socket UPDATE payload: little-endian words, bytes B, G, R, X) or as RGBA (PNG),
 * and encoding PNG files with pngjs.
 * Does not own: which rectangle is shown (model.ts), where files go (host.ts).
 *
 * pngjs (pure JavaScript over node's zlib, no dependencies of its own) writes the PNGs: a
 * well-kept library instead of a hand-written encoder, as DESIGN.md asks.
 */
import pngjs from 'pngjs';
import type { Rect, Resource } from './resources.js';
import { GPU_BYTES_PER_PIXEL, GPU_FORMATS } from './spec.js';

/**
 * Writes a rectangle of `res` as x8r8g8b8 (B, G, R, 0xff; `width × 4` a row) into `out`
 * (`width × height × 4` bytes: the payload of a display-socket UPDATE). `r` must lie inside `res`.
 */
export function bgrxInto(res: Resource, r: Rect, out: Uint8Array): void {
  const f = GPU_FORMATS.get(res.format);
  // Our own bug if it happens: ResourceTable.create refuses unknown formats.
  if (f === undefined) throw new Error(`resource ${res.id}: unknown format ${res.format}`);
  const rowBytes = r.width * GPU_BYTES_PER_PIXEL;
  const src = res.pixels;
  for (let y = 0; y < r.height; y++) {
    const s0 = (r.y + y) * res.stride + r.x * GPU_BYTES_PER_PIXEL;
    const d0 = y * rowBytes;
    if (f.b === 0 && f.g === 1 && f.r === 2) {
      // B8G8R8X8 and B8G8R8A8 (what Linux uses): the bytes already are in order.
      out.set(src.subarray(s0, s0 + rowBytes), d0);
      continue;
    }
    for (let i = 0; i < rowBytes; i += 4) {
      out[d0 + i] = src[s0 + i + f.b] ?? 0;
      out[d0 + i + 1] = src[s0 + i + f.g] ?? 0;
      out[d0 + i + 2] = src[s0 + i + f.r] ?? 0;
      out[d0 + i + 3] = 0xff;
    }
  }
}

/**
 * A rectangle of `res` as RGBA bytes. A scanout is opaque (a display shows no transparency), so
 * alpha is 0xff unless `keepAlpha` (cursor images).
 */
export function toRgba(res: Resource, r: Rect, keepAlpha = false): Buffer {
  const f = GPU_FORMATS.get(res.format);
  // Our own bug if it happens: ResourceTable.create refuses unknown formats.
  if (f === undefined) throw new Error(`resource ${res.id}: unknown format ${res.format}`);
  const out = Buffer.alloc(r.width * r.height * 4);
  const src = res.pixels;
  let d = 0;
  for (let y = 0; y < r.height; y++) {
    let s = (r.y + y) * res.stride + r.x * GPU_BYTES_PER_PIXEL;
    for (let x = 0; x < r.width; x++, s += 4, d += 4) {
      out[d] = src[s + f.r] ?? 0;
      out[d + 1] = src[s + f.g] ?? 0;
      out[d + 2] = src[s + f.b] ?? 0;
      out[d + 3] = keepAlpha && f.a >= 0 ? (src[s + f.a] ?? 0) : 0xff;
    }
  }
  return out;
}

/** Encodes RGBA pixels as a PNG file (8-bit RGB, or RGBA when `alpha`). */
export function encodePng(width: number, height: number, rgba: Buffer, alpha = false): Buffer {
  const png = new pngjs.PNG({ width, height });
  png.data = rgba;
  return pngjs.PNG.sync.write(png, { colorType: alpha ? 6 : 2, inputColorType: 6, inputHasAlpha: true });
}

/** Decodes a PNG file into RGBA pixels (tests and tools comparing screenshots). */
export function decodePng(bytes: Buffer): { width: number; height: number; rgba: Buffer } {
  const png = pngjs.PNG.sync.read(bytes);
  return { width: png.width, height: png.height, rgba: png.data };
}
