// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the native-call layer, and errno number ↔ name translation.
 *
 * Owns: `SysError` (a libc call returned -1), `SysEofError` (the peer closed in the middle of data
 * we had to read in full), `SysUsageError` (a caller passed something the layer refuses before any
 * native call), and the Linux errno name table.
 * Does not own: deciding whether a failure is fatal; callers match on `code` and `errnoName`.
 *
 * errno values here are the positive Linux numbers that libc sets (EBADF = 9), not Node's negated
 * libuv convention (-9).
 */
import os from 'node:os';
import util from 'node:util';
import { AvpError, hasCode } from '../errors.js';

/**
 * Names that share a number with another name (EWOULDBLOCK = EAGAIN = 11, EDEADLOCK = EDEADLK,
 * ENOTSUP = EOPNOTSUPP = 95) resolve to the spelling glibc's strerrorname_np and the man pages use.
 */
const PREFERRED_ALIASES: ReadonlySet<string> = new Set(['EAGAIN', 'EDEADLK', 'EOPNOTSUPP']);

function buildNameTable(): ReadonlyMap<number, string> {
  const table = new Map<number, string>();
  for (const [name, value] of Object.entries(os.constants.errno)) {
    if (!table.has(value) || PREFERRED_ALIASES.has(name)) table.set(value, name);
  }
  return table;
}

const ERRNO_NAMES = buildNameTable();

/** libuv's messages, keyed by negated errno; used only for the human part of error messages. */
const ERRNO_MESSAGES = util.getSystemErrorMap();

/** The symbolic name of a Linux errno value, e.g. 9 → 'EBADF'; unknown values → 'ERRNO_<n>'. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `ERRNO_${errno}`;
}

/** A short lower-case description of an errno value, e.g. 9 → 'bad file descriptor'. */
export function errnoDescription(errno: number): string {
  return ERRNO_MESSAGES.get(-errno)?.[1] ?? 'unknown error';
}

/** The errno number for a name, e.g. 'EAGAIN' → 11; throws on an unknown name (our bug). */
export function errnoNumber(name: string): number {
  const value = (os.constants.errno as Record<string, number | undefined>)[name];
  if (value === undefined) throw new RangeError(`unknown errno name ${name}`);
  return value;
}

/** A libc call failed; `errnoName` says why (message: `recvmsg failed: EBADF (bad file descriptor)`). */
export class SysError extends AvpError {
  override readonly code = 'SYS_CALL_FAILED';
  /** The libc function that failed, e.g. 'recvmsg'. */
  readonly syscall: string;
  /** The positive Linux errno value. */
  readonly errno: number;
  /** The symbolic errno name, e.g. 'EAGAIN'. */
  readonly errnoName: string;

  constructor(syscall: string, errno: number, options?: { cause?: unknown }) {
    const name = errnoName(errno);
    super(`${syscall} failed: ${name} (${errnoDescription(errno)})`, options);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = name;
  }
}

/** The peer closed the stream after `received` of the `expected` bytes that had to arrive in full. */
export class SysEofError extends AvpError {
  override readonly code = 'SYS_EOF';
  readonly expected: number;
  readonly received: number;

  constructor(expected: number, received: number) {
    super(`peer closed the stream after ${received} of ${expected} bytes`);
    this.expected = expected;
    this.received = received;
  }
}

/** A caller passed a value this layer refuses before calling into libc (an AVP bug, not a guest fault). */
export class SysUsageError extends AvpError {
  override readonly code = 'SYS_INVALID_ARGUMENT';
}

/** True when `e` is a `SysError` whose errno has the given name, e.g. `isErrno(e, 'EAGAIN')`. */
export function isErrno(e: unknown, name: string): boolean {
  // Matched on `code` (DESIGN.md: not on instanceof); the cast is safe because only SysError
  // carries the code SYS_CALL_FAILED.
  return hasCode(e, 'SYS_CALL_FAILED') && (e as SysError).errnoName === name;
}
