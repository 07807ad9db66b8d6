// SPDX-License-Identifier: Apache-2.0
/** Front-end errors: what a back-end did (or failed to do) in answer to a request. */
import { AvpError } from '../errors.js';

export type VhostUserFrontendErrorCode =
  | 'VHOST_USER_FRONTEND_TIMEOUT'
  | 'VHOST_USER_FRONTEND_DISCONNECTED'
  | 'VHOST_USER_FRONTEND_BAD_REPLY'
  | 'VHOST_USER_FRONTEND_NACK'
  | 'VHOST_USER_FRONTEND_NO_ACK';

export class VhostUserFrontendError extends AvpError {
  readonly code: VhostUserFrontendErrorCode;
  constructor(code: VhostUserFrontendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export type BackendProcessErrorCode =
  /** The command string cannot be split into arguments (unbalanced quotes) or lacks `{socket}`. */
  | 'BACKEND_PROCESS_BAD_COMMAND'
  /** The program could not be started (not found, not executable). */
  | 'BACKEND_PROCESS_SPAWN_FAILED'
  /** The program exited before its socket accepted a connection. */
  | 'BACKEND_PROCESS_EXITED'
  /** The socket did not accept a connection within the deadline. */
  | 'BACKEND_PROCESS_NOT_READY';

/** A back-end program the front-end starts itself (`--exec`) failed to start or to get ready. */
export class BackendProcessError extends AvpError {
  readonly code: BackendProcessErrorCode;
  constructor(code: BackendProcessErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
