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
