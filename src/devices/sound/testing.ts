// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures for virtio-snd tests: a playback sink that keeps what it gets, a capture source that
 * counts up, and request builders written field by field from the spec (independent of model.ts).
 *
 * Owns: test fixtures only (exported through `avp/testing`, not the main entry).
 */
import type { CaptureSource, PlaybackSink } from './host.js';
import type { WavFormat } from './wav.js';

/** Keeps every format and byte it is given. */
export class MemorySink implements PlaybackSink {
  readonly formats: WavFormat[] = [];
  readonly chunks: Uint8Array[] = [];
  begin(format: WavFormat): void {
    this.formats.push(format);
  }
  write(pcm: Uint8Array): void {
    this.chunks.push(pcm.slice());
  }
  close(): void {}
  /** All bytes written, in order. */
  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks.flatMap((c) => [...c]));
  }
}

/** Produces 0, 1, 2, ... (mod 256). */
export class CountingSource implements CaptureSource {
  #n = 0;
  read(dst: Uint8Array): void {
    for (let i = 0; i < dst.length; i++) dst[i] = this.#n++ & 0xff;
  }
  close(): void {}
}

const le = (n: number, bytes: number) => Array.from({ length: bytes }, (_, i) => Math.floor(n / 2 ** (8 * i)) & 0xff);

/** An info query `{ code, start_id, count, size }` (§5.14.6.1). */
export function queryInfo(code: number, start: number, count: number, size: number): Uint8Array {
  return Uint8Array.from([...le(code, 4), ...le(start, 4), ...le(count, 4), ...le(size, 4)]);
}

/** A PCM command `{ code, stream_id }`. */
export function pcmHdr(code: number, stream: number): Uint8Array {
  return Uint8Array.from([...le(code, 4), ...le(stream, 4)]);
}

/** PCM_SET_PARAMS (0x101) `{ hdr, buffer_bytes, period_bytes, features, channels, format, rate, padding }`. */
export function setParams(stream: number, p: { buffer: number; period: number; channels: number; format: number; rate: number; features?: number }): Uint8Array {
  return Uint8Array.from([...le(0x101, 4), ...le(stream, 4), ...le(p.buffer, 4), ...le(p.period, 4), ...le(p.features ?? 0, 4), p.channels, p.format, p.rate, 0]);
}

/** `virtio_snd_pcm_xfer { stream_id }` followed by PCM bytes. */
export function xfer(stream: number, pcm: Uint8Array = new Uint8Array(0)): Uint8Array {
  return Uint8Array.from([...le(stream, 4), ...pcm]);
}

/** The u32 at `off` of `b`. */
export function u32(b: Uint8Array, off: number): number {
  return (b[off] ?? 0) + (b[off + 1] ?? 0) * 2 ** 8 + (b[off + 2] ?? 0) * 2 ** 16 + (b[off + 3] ?? 0) * 2 ** 24;
}
