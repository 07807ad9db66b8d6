// SPDX-License-Identifier: Apache-2.0
/**
 * Back-end runtime errors: a well-framed request that the back-end cannot carry out (a bad memory
 * region, a ring index the device does not have, a feature it did not offer). They fail that one
 * request (REPLY_ACK failure where negotiated, a log line always) and the connection goes on.
 * Framing errors are `VhostUserProtocolError` (errors.ts).
 *
 * One code is not per-request: VHOST_USER_MEMORY_SHRUNK (the file behind a mapped region became
 * smaller than the region, so touching it would fault the process) ends the connection, because
 * no request of this front-end can be served safely any more (docs/reliability.md).
 */
import { AvpError } from '../errors.js';

export type VhostUserBackendErrorCode =
  | 'VHOST_USER_BAD_MEMORY_REGION'
  | 'VHOST_USER_MEMORY_SHRUNK'
  | 'VHOST_USER_BAD_VRING'
  | 'VHOST_USER_FEATURE_NOT_NEGOTIATED'
  | 'VHOST_USER_UNSUPPORTED_REQUEST'
  | 'VHOST_USER_BAD_CONFIG_ACCESS'
  /** CLOSE_CRYPTO_SESSION named a session the device does not have. */
  | 'VHOST_USER_BAD_SESSION'
  /** GET/SET_INFLIGHT_FD described a region the back-end cannot use (size, offset, fd, queues). */
  | 'VHOST_USER_BAD_INFLIGHT';

export class VhostUserBackendError extends AvpError {
  readonly code: VhostUserBackendErrorCode;
  constructor(code: VhostUserBackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
