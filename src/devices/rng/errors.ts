// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-rng device's set-up.
 *
 * Owns: `RngConfigError` and its codes. Does not own: guest faults, which never throw: a chain
 * without device-writable bytes is returned with used length 0 and counted (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type RngConfigErrorCode =
  /** An option is out of range (the message names the option). */
  'RNG_BAD_OPTION';

/** An rng option is wrong; the message names it and says what is expected. */
export class RngConfigError extends AvpError {
  override readonly code: RngConfigErrorCode;

  constructor(code: RngConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
