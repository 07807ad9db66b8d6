// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-snd device's set-up.
 *
 * Owns: `SoundConfigError` and its codes. Does not own: guest faults, which never throw: a bad
 * request gets VIRTIO_SND_S_BAD_MSG or NOT_SUPP and is counted (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type SoundConfigErrorCode =
  /** An option is out of range or inconsistent (the message names it). */
  | 'SOUND_BAD_OPTION'
  /** The capture file is not an integer PCM WAV file. */
  | 'SOUND_BAD_WAV'
  /** The playback or capture file cannot be opened. */
  | 'SOUND_HOST_FILE';

/** A sound option or file is wrong; the message names it and says what is expected. */
export class SoundConfigError extends AvpError {
  override readonly code: SoundConfigErrorCode;

  constructor(code: SoundConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
