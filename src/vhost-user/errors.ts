// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the vhost-user wire codec.
 *
 * Owns: `VhostUserProtocolError`, its stable codes, and which codes lose the framing.
 * Does not own: socket errors (`sys/`), or what a back-end does about an error (reply, log,
 * disconnect); that is the connection's policy, informed by `fatal`.
 *
 * Severity, decided per code in `FRAMING_LOST` below:
 * - fatal (`fatal === true`, `isFramingIntact() === false`): the byte stream can no longer be
 *   split into messages, or the header cannot be trusted to describe a vhost-user message at all.
 *   The parser refuses further input; the connection must be closed.
 * - per-message (`fatal === false`): the header was sound and the whole message (header + `size`
 *   payload bytes) was consumed, so the next message starts at a known offset. The error names
 *   the offending header; a back-end can answer it with a failure reply (a u64 ack of 1 when
 *   NEED_REPLY is set and REPLY_ACK is negotiated) and keep the connection.
 */
import { AvpError } from '../errors.js';
import type { VhostUserHeader } from './protocol.js';

export type VhostUserProtocolErrorCode =
  | 'VHOST_USER_BAD_VERSION'
  | 'VHOST_USER_PAYLOAD_TOO_LARGE'
  | 'VHOST_USER_TRUNCATED'
  | 'VHOST_USER_BAD_SIZE'
  | 'VHOST_USER_UNEXPECTED_FDS'
  | 'VHOST_USER_MISSING_FD'
  | 'VHOST_USER_REPLY_FLAG_ON_REQUEST'
  | 'VHOST_USER_REPLY_FLAG_MISSING'
  | 'VHOST_USER_RESERVED_FLAGS'
  | 'VHOST_USER_BAD_REGION_COUNT'
  | 'VHOST_USER_UNKNOWN_REQUEST'
  | 'VHOST_USER_UNENCODABLE';

/** Whether each code means the framing is lost, with the reason. */
const FRAMING_LOST: Readonly<Record<VhostUserProtocolErrorCode, boolean>> = {
  // The version bits say which header layout follows; with any version but 1 we cannot know
  // that `size` means what we think, so the next message boundary is unknown.
  VHOST_USER_BAD_VERSION: true,
  // The message boundary is known, but reaching it means reading up to 4 GiB from a peer that has
  // already broken the protocol's limits; refusing is the only bounded option (rust-vmm does too).
  VHOST_USER_PAYLOAD_TOO_LARGE: true,
  // The stream ended inside a message: there is no next message.
  VHOST_USER_TRUNCATED: true,
  // Every other code is raised after the header passed the two checks above, and the parser
  // consumes exactly `size` bytes of the offending message, so the next header is where expected.
  VHOST_USER_BAD_SIZE: false,
  VHOST_USER_UNEXPECTED_FDS: false,
  VHOST_USER_MISSING_FD: false,
  // The message is not a request, so a back-end should drop it rather than answer it.
  VHOST_USER_REPLY_FLAG_ON_REQUEST: false,
  VHOST_USER_REPLY_FLAG_MISSING: false,
  VHOST_USER_RESERVED_FLAGS: false,
  VHOST_USER_BAD_REGION_COUNT: false,
  // Its size is known from the header, so it can be skipped and answered with a failure.
  VHOST_USER_UNKNOWN_REQUEST: false,
  // Raised by encoders only; nothing was written to any stream.
  VHOST_USER_UNENCODABLE: false,
};

/**
 * A vhost-user message broke the protocol (or an encoder was given a value the wire cannot carry).
 * Match on `code`; read `fatal` to decide whether the connection can continue.
 */
export class VhostUserProtocolError extends AvpError {
  readonly code: VhostUserProtocolErrorCode;
  /** True when the framing is lost and the connection must be closed (see the file comment). */
  readonly fatal: boolean;
  /** The header of the offending message, or null when no header applies (stray fds, encoders). */
  readonly header: VhostUserHeader | null;

  constructor(
    code: VhostUserProtocolErrorCode,
    message: string,
    header: VhostUserHeader | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.fatal = FRAMING_LOST[code];
    this.header = header;
  }

  /** True when the next message still starts at a known offset (the error is per-message). */
  isFramingIntact(): boolean {
    return !this.fatal;
  }
}

/** True when `e` is a `VhostUserProtocolError` (by code family, so it works across copies). */
export function isVhostUserProtocolError(e: unknown): e is VhostUserProtocolError {
  if (!(e instanceof Error)) return false;
  // Safe widening: only reads an optional property that any Error may carry.
  const code = (e as Error & { code?: unknown }).code;
  return typeof code === 'string' && Object.hasOwn(FRAMING_LOST, code);
}
