// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-rpmb device's set-up and of its state file.
 *
 * Owns: `RpmbConfigError` and its codes. Does not own: guest faults, which never throw: a bad
 * frame gets the spec's result code in the response frame (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type RpmbConfigErrorCode =
  /** An option is out of range (the message names the option). */
  | 'RPMB_BAD_OPTION'
  /** The state file exists but is not an AVP RPMB state file of this capacity. */
  | 'RPMB_BAD_STATE_FILE'
  /** Reading or writing the state file failed. */
  | 'RPMB_STATE_IO';

/** An rpmb option or its state file is wrong; the message says which and what is expected. */
export class RpmbConfigError extends AvpError {
  override readonly code: RpmbConfigErrorCode;

  constructor(code: RpmbConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
