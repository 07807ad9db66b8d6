// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-gpio device's set-up: its lines, its trace and script, its control socket.
 *
 * Owns: `GpioConfigError` and its codes. Does not own: guest faults, which never throw: a bad
 * request gets VIRTIO_GPIO_STATUS_ERR, a malformed chain used length 0 (`model.ts`); nor control
 * socket clients' mistakes, which get an error line (`control.ts`).
 */
import { AvpError } from '../../errors.js';

export type GpioConfigErrorCode =
  /** An option is malformed or out of range (the message names the option and the value). */
  | 'GPIO_BAD_OPTION'
  /** The signal trace could not be read or parsed. */
  | 'GPIO_BAD_TRACE'
  /** The control socket could not be created. */
  | 'GPIO_CONTROL_SOCKET';

/** A gpio option, trace or control socket is wrong; the message says which and what is expected. */
export class GpioConfigError extends AvpError {
  override readonly code: GpioConfigErrorCode;

  constructor(code: GpioConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
