// SPDX-License-Identifier: Apache-2.0
/**
 * RIFF/WAVE headers for integer PCM: the 44-byte canonical header written by the playback sink,
 * and a parser that finds the `fmt ` and `data` chunks of a capture file (chunks in any order,
 * unknown chunks skipped, sizes checked against the file).
 * Does not own: file I/O (host.ts).
 */
import { SoundConfigError } from './errors.js';

export interface WavFormat {
  readonly channels: number;
  readonly rate: number;
  /** Bits per sample: 8, 16 or 32. */
  readonly bits: number;
}

/** Size of the header `wavHeader` writes; PCM data starts there. */
export const WAV_HEADER_SIZE = 44;

/** A canonical 44-byte header for `dataBytes` bytes of PCM in `fmt`. */
export function wavHeader(fmt: WavFormat, dataBytes: number): Uint8Array {
  const b = new Uint8Array(WAV_HEADER_SIZE);
  const v = new DataView(b.buffer);
  const ascii = (off: number, s: string) => {
    for (let i = 0; i < s.length; i++) b[off + i] = s.charCodeAt(i);
  };
  const blockAlign = fmt.channels * (fmt.bits / 8);
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // WAVE_FORMAT_PCM
  v.setUint16(22, fmt.channels, true);
  v.setUint32(24, fmt.rate, true);
  v.setUint32(28, fmt.rate * blockAlign, true);
  v.setUint16(32, blockAlign, true);
  v.setUint16(34, fmt.bits, true);
  ascii(36, 'data');
  v.setUint32(40, dataBytes, true);
  return b;
}

/** Where the PCM data of a WAV file is, and its format. */
export interface WavLayout {
  readonly format: WavFormat;
  readonly dataOffset: number;
  readonly dataBytes: number;
}

/**
 * Parses the chunk structure of a WAV file (`bytes` is the whole file).
 * @throws SoundConfigError SOUND_BAD_WAV naming what is wrong.
 */
export function parseWav(bytes: Uint8Array, name: string): WavLayout {
  const bad = (why: string) => new SoundConfigError('SOUND_BAD_WAV', `${name}: not a PCM WAV file: ${why}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (off: number) => String.fromCharCode(...bytes.subarray(off, off + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw bad('no RIFF/WAVE header');
  let format: WavFormat | undefined;
  for (let off = 12; off + 8 <= bytes.length; ) {
    const id = tag(off);
    const size = v.getUint32(off + 4, true);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw bad('short fmt chunk');
      const tagFormat = v.getUint16(body, true);
      // WAVE_FORMAT_PCM (1) or WAVE_FORMAT_EXTENSIBLE (0xfffe) carrying integer PCM.
      if (tagFormat !== 1 && tagFormat !== 0xfffe) throw bad(`format tag ${tagFormat} is not integer PCM`);
      format = { channels: v.getUint16(body + 2, true), rate: v.getUint32(body + 4, true), bits: v.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (format === undefined) throw bad('data chunk before fmt chunk');
      // A streamed WAV (arecord to a pipe) may claim more data than the file holds: take what is there.
      return { format, dataOffset: body, dataBytes: Math.min(size, bytes.length - body) };
    }
    off = body + size + (size & 1);
  }
  throw bad('no data chunk');
}
