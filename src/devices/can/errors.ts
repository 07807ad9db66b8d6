// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-can device's set-up: `CanConfigError`. Guest faults never throw: a bad
 * frame or control message gets VIRTIO_CAN_RESULT_NOT_OK and is counted (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type CanConfigErrorCode =
  /** Options that do not go together, or a host capability the options need is missing. */
  'CAN_DEVICE_BAD_OPTION';

export class CanConfigError extends AvpError {
  override readonly code: CanConfigErrorCode;

  constructor(code: CanConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
