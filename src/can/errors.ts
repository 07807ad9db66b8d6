// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the CAN layer: text that cannot be read as a CAN frame, filter or bus option.
 *
 * Owns: `CanFormatError` and its codes. Does not own: what a bus does with a bad frame from a node
 * (it counts it: bus.ts never throws for node input).
 */
import { AvpError } from '../errors.js';

export type CanFormatErrorCode =
  /** A frame, as candump text or as fields, is not a valid CAN or CAN FD frame. */
  | 'CAN_BAD_FRAME'
  /** A filter is not `<id>:<mask>` or `<id>~<mask>` in hex. */
  | 'CAN_BAD_FILTER'
  /** A bus option (bit rate, rate limit) is out of range. */
  | 'CAN_BAD_OPTION';

/** Text or a value that is not what the CAN layer expects; the message says what and where. */
export class CanFormatError extends AvpError {
  override readonly code: CanFormatErrorCode;

  constructor(code: CanFormatErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
