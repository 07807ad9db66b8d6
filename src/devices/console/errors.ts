// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-console device's set-up: `ConsoleConfigError`. Guest faults never throw:
 * a bad control message is counted and ignored (`model.ts`).
 */
import { AvpError } from '../../errors.js';

export type ConsoleConfigErrorCode =
  /** A port description is malformed, or too many ports (the message names the option). */
  | 'CONSOLE_BAD_OPTION'
  /** A port's log file cannot be opened. */
  | 'CONSOLE_HOST_FILE';

export class ConsoleConfigError extends AvpError {
  override readonly code: ConsoleConfigErrorCode;

  constructor(code: ConsoleConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
