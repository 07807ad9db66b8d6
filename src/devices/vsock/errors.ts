// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the vsock device's set-up: bad options and host resources that cannot be opened.
 *
 * Owns: `VsockError` and its codes. Does not own: guest faults, which never throw: a bad packet
 * becomes an RST and a metric (`model.ts`), and a failing host socket resets its connection.
 */
import { AvpError } from '../../errors.js';

export type VsockErrorCode =
  /** An option is missing or out of range (the message names the option). */
  | 'VSOCK_BAD_OPTION'
  /** Two devices of one group claim the same guest CID. */
  | 'VSOCK_DUPLICATE_CID'
  /** `udsPath` was given but no Unix-socket capability was injected (an AVP wiring bug). */
  | 'VSOCK_NO_HOST_SOCKETS'
  /** The listening socket at `udsPath` could not be created. */
  | 'VSOCK_LISTEN_FAILED';

export class VsockError extends AvpError {
  override readonly code: VsockErrorCode;

  constructor(code: VsockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
