// SPDX-License-Identifier: Apache-2.0
/**
 * CLI errors: bad input from the user. Printed as one line naming what is wrong, exit code 1,
 * never a stack trace.
 */
import { AvpError } from '../errors.js';

export { errorText } from '../errors.js';

export class UsageError extends AvpError {
  readonly code = 'CLI_USAGE';
}

/** Errors whose message is meant for the user (bad input, a missing file): AVP errors. */
export function isAvpError(e: unknown): e is AvpError {
  return e instanceof AvpError;
}
