// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the device registry and of device options, common to every kind.
 *
 * Owns: `DeviceOptionError` (an option a user or a manifest gave is wrong; the message names the
 * flag or key and what is expected) and `UnknownDeviceKindError`. Does not own: a device's own
 * set-up failures (devices/<name>/errors.ts) nor guest faults, which never throw.
 */
import { AvpError } from '../errors.js';

export type DeviceOptionErrorCode =
  /** An option has a value outside what the kind accepts. */
  | 'DEVICE_BAD_OPTION'
  /** An option the kind does not have. */
  | 'DEVICE_UNKNOWN_OPTION';

/** A device option is wrong; the message names it (`--max-bytes: expected an integer ...`). */
export class DeviceOptionError extends AvpError {
  override readonly code: DeviceOptionErrorCode;

  constructor(code: DeviceOptionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** No device kind has this name; the message lists the known ones. */
export class UnknownDeviceKindError extends AvpError {
  override readonly code = 'DEVICE_UNKNOWN_KIND';
}
