// SPDX-License-Identifier: Apache-2.0
/**
 * Guest-memory errors. A guest address or length that does not fit the guest's memory is the
 * guest's fault, never ours: callers in `queue/` and `devices/` turn these into a rejected chain
 * or a spec status, count them, and keep serving.
 */
import { AvpError, hex } from '../errors.js';

export type GuestMemoryErrorCode =
  /** The address is not a non-negative integer below 2^53 (including u64 values that wrapped or were too large). */
  | 'GUEST_MEMORY_INVALID_ADDRESS'
  /** Some byte of [addr, addr + len) lies outside every region. */
  | 'GUEST_MEMORY_OUT_OF_RANGE'
  /** A single contiguous view was asked for a range that spans two regions. */
  | 'GUEST_MEMORY_NOT_CONTIGUOUS'
  /** A region definition is unusable: empty, overlapping, misplaced or larger than its buffer. */
  | 'GUEST_MEMORY_BAD_REGION';

/** An access or region definition that does not fit the guest's memory. */
export class GuestMemoryError extends AvpError {
  readonly code: GuestMemoryErrorCode;
  readonly addr: number;
  readonly len: number;

  constructor(code: GuestMemoryErrorCode, message: string, addr: number, len: number) {
    super(message);
    this.code = code;
    this.addr = addr;
    this.len = len;
  }

  static invalidAddress(addr: number, len: number): GuestMemoryError {
    return new GuestMemoryError(
      'GUEST_MEMORY_INVALID_ADDRESS',
      `guest address ${Number.isFinite(addr) ? hex(Math.max(0, Math.trunc(addr))) : String(addr)} (length ${len}) is not a valid 64-bit address below 2^53`,
      addr,
      len,
    );
  }

  static outOfRange(addr: number, len: number): GuestMemoryError {
    return new GuestMemoryError(
      'GUEST_MEMORY_OUT_OF_RANGE',
      `guest range [${hex(addr)}, +${hex(len)}) is outside guest memory`,
      addr,
      len,
    );
  }

  static notContiguous(addr: number, len: number): GuestMemoryError {
    return new GuestMemoryError(
      'GUEST_MEMORY_NOT_CONTIGUOUS',
      `guest range [${hex(addr)}, +${hex(len)}) spans two memory regions; a contiguous view is required`,
      addr,
      len,
    );
  }

  static badRegion(message: string, addr: number, len: number): GuestMemoryError {
    return new GuestMemoryError('GUEST_MEMORY_BAD_REGION', message, addr, len);
  }
}
