// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-input device: a host-side input step that cannot be done, and bad set-up.
 *
 * Owns: `InputStepError` (a step from the control socket or a script is not understood or does
 * not fit the device; the message quotes the step) and `InputConfigError`. Does not own: guest
 * faults, which never throw: bad chains are returned and counted (`model.ts`).
 */
import { AvpError } from '../../errors.js';

/** An input step is wrong; the message quotes it and says what is expected. */
export class InputStepError extends AvpError {
  override readonly code = 'INPUT_BAD_STEP';
}

/** An input option is wrong (the message names it). */
export class InputConfigError extends AvpError {
  override readonly code = 'INPUT_BAD_OPTION';
}
