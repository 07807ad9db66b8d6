// SPDX-License-Identifier: Apache-2.0
/**
 * Conformance-suite errors. Two kinds: what a back-end did during a check (no completion, a ring
 * error it signalled), which the runner turns into verdicts; and bad input from the user (an
 * unknown device, a filter that matches nothing, a malformed expected-verdict file).
 */
import { AvpError } from '../errors.js';

export type ConformanceErrorCode =
  /** A request was not completed within the deadline. */
  | 'CONFORMANCE_NO_COMPLETION'
  /** The back-end answered a request with a reply of another type. */
  | 'CONFORMANCE_BAD_REPLY'
  /** The back-end signalled the ring's error eventfd (SET_VRING_ERR) instead of completing. */
  | 'CONFORMANCE_RING_ERROR'
  /** A driver method that needs `start()` was called before it (a check bug). */
  | 'CONFORMANCE_NOT_STARTED'
  /** `--device` names a device the suite has no checks for. */
  | 'CONFORMANCE_UNKNOWN_DEVICE'
  /** `--only` / `--skip` selects no check, or names nothing that exists. */
  | 'CONFORMANCE_BAD_FILTER'
  /** An expected-verdict file has a line that cannot be read. */
  | 'CONFORMANCE_BAD_EXPECTED'
  /** A check asked for the split ring of a queue that runs packed (a check bug). */
  | 'CONFORMANCE_RING_LAYOUT';

export class ConformanceError extends AvpError {
  readonly code: ConformanceErrorCode;
  constructor(code: ConformanceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
