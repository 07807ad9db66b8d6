// SPDX-License-Identifier: Apache-2.0
/**
 * fallocate(2), which Node's fs lacks: punching holes and zeroing ranges of an image file for
 * virtio-blk DISCARD and WRITE_ZEROES (VIRTIO 1.3 §5.2.6).
 *
 * Owns: the FALLOC_FL_* constants and argument checks.
 * Does not own: which ranges to discard or zero (devices/blk decides, after validating the request),
 * or the fallback when a filesystem answers EOPNOTSUPP (the caller writes zeros itself).
 */
import { SysUsageError } from './errors.js';
import { assertFd } from './fd.js';
import { libc, retrying } from './libc.js';

/** Keep the file size even when the range reaches past the end (linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
/** Deallocate the range; it then reads as zeros. Must be combined with FALLOC_FL_KEEP_SIZE. */
export const FALLOC_FL_PUNCH_HOLE = 0x02;
/** Make the range read as zeros, keeping (or allocating) its blocks. Not supported by tmpfs. */
export const FALLOC_FL_ZERO_RANGE = 0x10;

/**
 * fallocate(fd, mode, offset, length), retried on EINTR. mode 0 preallocates.
 * @throws SysError EOPNOTSUPP when the filesystem does not support `mode`.
 */
export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  assertFd(fd);
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
    throw new SysUsageError(`fallocate range offset ${offset} length ${length} must be safe integers, length > 0`);
  }
  retrying('fallocate', () => libc.fallocate(fd, mode, offset, length));
}
