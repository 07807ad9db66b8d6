// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of virtio-blk: its options and its host side.
 *
 * Owns: `BlkConfigError`, a device or host option that is out of range or does not fit the host
 * (what the user or a library caller gets, naming the option); and `BlkHostError`, what a
 * `BlockHost` throws for failures it detects itself (a short read, a write to a read-only host, a
 * range outside the image, a path that is not a regular file). Errors from node:fs or an injected
 * fallocate pass through unchanged.
 * Does not own: guest faults. A bad request never throws: the device turns it into a status byte
 * (§5.2.6) and a metric. Host errors are caught by the device too and become VIRTIO_BLK_S_IOERR
 * plus one log line; they never escape the request loop.
 */
import { AvpError } from '../../errors.js';

export type BlkHostErrorCode =
  /** The image ended before the range did (it shrank after it was opened). */
  | 'BLK_HOST_SHORT_IO'
  /** A write, discard or write-zeroes reached a read-only host: an AVP bug, the device checks first. */
  | 'BLK_HOST_READ_ONLY'
  /** A range outside [0, size): an AVP bug, the device checks first. */
  | 'BLK_HOST_OUT_OF_RANGE'
  /** A fake host was told to fail (tests of the IOERR paths). */
  | 'BLK_HOST_INJECTED_FAILURE'
  /** The image path names something other than a regular file (a directory, a device node). */
  | 'BLK_HOST_NOT_A_FILE';

/** A block host operation failed; `code` says which way. */
export class BlkHostError extends AvpError {
  override readonly code: BlkHostErrorCode;

  constructor(code: BlkHostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export type BlkConfigErrorCode =
  /** An option is out of range or does not fit the host (the message names the option). */
  'BLK_BAD_OPTION';

/** A blk device or host option is wrong; the message names it and says what is expected. */
export class BlkConfigError extends AvpError {
  override readonly code: BlkConfigErrorCode;

  constructor(code: BlkConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
