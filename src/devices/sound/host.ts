// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of virtio-snd: where played samples go and where captured ones come from.
 *
 * Owns: the `PlaybackSink` and `CaptureSource` interfaces, `WavFileSink` (a WAV file whose header
 * is rewritten after each write, so the file is valid while the guest plays), `WavFileSource`
 * (the PCM data of a WAV file, then silence), and the discard/silence hosts.
 * Does not own: timing (pcm.ts paces both directions at the stream's rate) or WAV layout (wav.ts).
 *
 * Synchronous fs calls, as in blk's host: the vhost-user runtime runs devices in a worker thread.
 */
import fs from 'node:fs';
import { SoundConfigError } from './errors.js';
import { WAV_HEADER_SIZE, parseWav, wavHeader, type WavFormat } from './wav.js';

/** Receives the samples a playback stream consumed, in order. */
export interface PlaybackSink {
  /** A stream was prepared with this format; samples written after it are in it. */
  begin(format: WavFormat): void;
  write(pcm: Uint8Array): void;
  close(): void;
}

/** Produces samples for a capture stream. */
export interface CaptureSource {
  /** Fills `dst` with the next samples (silence once the source is exhausted). */
  read(dst: Uint8Array, format: WavFormat): void;
  close(): void;
}

/** Throws samples away. */
export class DiscardSink implements PlaybackSink {
  begin(): void {}
  write(): void {}
  close(): void {}
}

/** The silence value of a format: unsigned 8-bit is centred on 0x80, the signed formats on 0. */
export function silenceByte(format: WavFormat): number {
  return format.bits === 8 ? 0x80 : 0;
}

/** Records silence. */
export class SilenceSource implements CaptureSource {
  read(dst: Uint8Array, format: WavFormat): void {
    dst.fill(silenceByte(format));
  }
  close(): void {}
}

/**
 * Writes played samples to a WAV file. The header takes the first prepared format; a stream
 * prepared later with another format starts the file again (a WAV holds one format).
 */
export class WavFileSink implements PlaybackSink {
  readonly #path: string;
  #fd: number | undefined;
  #format: WavFormat | undefined;
  #bytes = 0;

  constructor(path: string) {
    this.#path = path;
  }

  begin(format: WavFormat): void {
    const f = this.#format;
    if (this.#fd !== undefined && f !== undefined && f.bits === format.bits && f.channels === format.channels && f.rate === format.rate) return;
    this.close();
    try {
      this.#fd = fs.openSync(this.#path, 'w');
    } catch (e: unknown) {
      throw new SoundConfigError('SOUND_HOST_FILE', `cannot write ${this.#path}: ${(e as Error).message}`, { cause: e });
    }
    this.#format = format;
    this.#bytes = 0;
    fs.writeSync(this.#fd, wavHeader(format, 0), 0, WAV_HEADER_SIZE, 0);
  }

  write(pcm: Uint8Array): void {
    if (this.#fd === undefined || this.#format === undefined || pcm.length === 0) return;
    fs.writeSync(this.#fd, pcm, 0, pcm.length, WAV_HEADER_SIZE + this.#bytes);
    this.#bytes += pcm.length;
    // Keep the header's sizes current: readers may look at the file while the guest plays.
    fs.writeSync(this.#fd, wavHeader(this.#format, this.#bytes), 0, WAV_HEADER_SIZE, 0);
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Largest capture file read into memory. */
export const MAX_CAPTURE_FILE_BYTES = 256 << 20;

/** Plays the PCM data of a WAV file into a capture stream, then silence. */
export class WavFileSource implements CaptureSource {
  readonly #pcm: Uint8Array;
  readonly format: WavFormat;
  #at = 0;

  /** @throws SoundConfigError SOUND_HOST_FILE or SOUND_BAD_WAV */
  constructor(path: string) {
    let bytes: Uint8Array;
    try {
      const size = fs.statSync(path).size;
      if (size > MAX_CAPTURE_FILE_BYTES) throw new Error(`larger than ${MAX_CAPTURE_FILE_BYTES} bytes`);
      bytes = fs.readFileSync(path);
    } catch (e: unknown) {
      throw new SoundConfigError('SOUND_HOST_FILE', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    const layout = parseWav(bytes, path);
    this.format = layout.format;
    this.#pcm = bytes.subarray(layout.dataOffset, layout.dataOffset + layout.dataBytes);
  }

  read(dst: Uint8Array, format: WavFormat): void {
    const n = Math.min(dst.length, this.#pcm.length - this.#at);
    dst.set(this.#pcm.subarray(this.#at, this.#at + n));
    dst.fill(silenceByte(format), n);
    this.#at += n;
  }

  close(): void {}
}
