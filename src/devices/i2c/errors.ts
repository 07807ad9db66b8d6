// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-i2c device's set-up: its simulated devices, their files, the trace.
 *
 * Owns: `I2cConfigError` and its codes. Does not own: guest faults, which never throw: a bad
 * request gets VIRTIO_I2C_MSG_ERR, like a bus transfer that is not acknowledged (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type I2cConfigErrorCode =
  /** An option is malformed or out of range (the message names the option and the value). */
  | 'I2C_BAD_OPTION'
  /** An EEPROM backing file cannot be created, read or written, or has the wrong size. */
  | 'I2C_EEPROM_FILE'
  /** The signal trace could not be read or parsed. */
  | 'I2C_BAD_TRACE';

/** An i2c option, file or trace is wrong; the message says which and what is expected. */
export class I2cConfigError extends AvpError {
  override readonly code: I2cConfigErrorCode;

  constructor(code: I2cConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
