// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of virtio-fs: its options and set-up, and the errno a host operation fails with.
 *
 * Owns: `FsConfigError` (an option or the shared directory is unusable; the message names it) and
 * `FsErrnoError`, what a host throws for a failure it detects itself (otherwise the native host
 * lets sys/'s `SysError` through: both carry a Linux `errno`, which is all the device reads).
 * Does not own: guest faults. A bad FUSE request never throws out of the device: it becomes a
 * reply with `error = -errno` (or, when not even a reply header fits, a 0-length used entry) and a
 * metric.
 */
import { AvpError } from '../../errors.js';

export type FsConfigErrorCode =
  /** An option is out of range, or the shared directory cannot be opened (the message says which). */
  'FS_BAD_OPTION';

/** A virtio-fs option or the shared directory is wrong; the message names it. */
export class FsConfigError extends AvpError {
  override readonly code: FsConfigErrorCode;

  constructor(code: FsConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A host file operation failed with a Linux errno (the host found it itself; the message names it). */
export class FsErrnoError extends AvpError {
  override readonly code = 'FS_HOST_ERRNO';
  readonly errno: number;

  constructor(errno: number, what: string) {
    super(`${what}: errno ${errno}`);
    this.errno = errno;
  }
}

/**
 * The Linux errno an exception carries (SysError and FsErrnoError both have a numeric `errno`),
 * or undefined for anything else (an AVP bug: the device answers EIO and logs it).
 */
export function errnoOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null || !('errno' in e)) return undefined;
  const errno = (e as { errno: unknown }).errno;
  return typeof errno === 'number' && Number.isInteger(errno) && errno > 0 && errno < 4096 ? errno : undefined;
}
