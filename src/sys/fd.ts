// SPDX-License-Identifier: Apache-2.0
/**
 * File-descriptor housekeeping: close, dup, non-blocking mode, and the open-fd checks that leak
 * tests use.
 *
 * Owns: the rules for closing (never retry, see `close`) and duplicating (always CLOEXEC).
 * Does not own: creating fds of any particular kind (socket.ts, memory.ts, eventfd.ts, epoll.ts).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { SysError, SysUsageError } from './errors.js';
import { EBADF, EINTR, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_SETFL, O_NONBLOCK, lastErrno, libc, retrying } from './libc.js';

/** Throws unless `fd` is a plausible descriptor number: a non-negative 32-bit integer. */
export function assertFd(fd: number, what = 'fd'): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new SysUsageError(`${what} ${fd} is not a file descriptor`);
}

/**
 * Closes `fd`.
 * EINTR is not retried: on Linux the descriptor is released before close can be interrupted, so
 * a retry could close a descriptor another thread has just been given. EINTR counts as closed.
 * @throws SysError EBADF when `fd` was not open (a double close is a bug worth seeing).
 */
export function close(fd: number): void {
  if (libc.close(fd) === 0) return;
  const errno = lastErrno();
  if (errno !== EINTR) throw new SysError('close', errno);
}

/** Closes `fd` on a cleanup path, never throwing; returns false when it was not open. */
export function closeQuiet(fd: number): boolean {
  return libc.close(fd) === 0 || lastErrno() === EINTR;
}

/** Closes every fd in `fds` on a cleanup path, never throwing. */
export function closeAllQuiet(fds: Iterable<number>): void {
  for (const fd of fds) closeQuiet(fd);
}

/** A new descriptor for the same open file, with FD_CLOEXEC set (F_DUPFD_CLOEXEC). */
export function dup(fd: number): number {
  return retrying('fcntl(F_DUPFD_CLOEXEC)', () => libc.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0));
}

/** True when `fd` is an open descriptor of this process (fcntl(F_GETFD) does not fail with EBADF). */
export function isOpenFd(fd: number): boolean {
  return libc.fcntl(fd, F_GETFD) !== -1 || lastErrno() !== EBADF;
}

/**
 * The descriptors open in this process, ascending, from /proc/self/fd. The directory descriptor
 * that the listing itself opens appears in the listing; it is closed again by the time the list
 * is returned, so the `isOpenFd` filter drops it.
 */
export function listOpenFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => Number.isInteger(fd) && isOpenFd(fd))
    .sort((a, b) => a - b);
}

/** Sets or clears O_NONBLOCK on `fd`. */
export function setNonBlocking(fd: number, nonBlocking: boolean): void {
  const flags = retrying('fcntl(F_GETFL)', () => libc.fcntl(fd, F_GETFL));
  const wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (wanted !== flags) retrying('fcntl(F_SETFL)', () => libc.fcntl(fd, F_SETFL, 'int', wanted));
}

/** True when O_NONBLOCK is set on `fd`. */
export function isNonBlocking(fd: number): boolean {
  return (retrying('fcntl(F_GETFL)', () => libc.fcntl(fd, F_GETFL)) & O_NONBLOCK) !== 0;
}

/**
 * What an fd refers to, as the kernel names it in /proc/self/fd: e.g. `anon_inode:[eventfd]`,
 * `socket:[1234]`, `pipe:[99]`, `/path/to/file`, or null when the fd is not open. The vhost-user
 * back-end uses it to refuse kick/call fds that are not eventfds (a pipe there could block it).
 */
export function fdTarget(fd: number): string | null {
  assertFd(fd);
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** True when `fd` is an eventfd. */
export function isEventFd(fd: number): boolean {
  return fdTarget(fd) === 'anon_inode:[eventfd]';
}
