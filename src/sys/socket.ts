// SPDX-License-Identifier: Apache-2.0
/**
 * Unix stream sockets: listen at a path, accept, connect, socket pairs, shutdown.
 *
 * Owns: `struct sockaddr_un` encoding, the 0600 mode of a listening socket's file, CLOEXEC on
 * every socket, closing half-built sockets when a later step fails.
 * Does not own: message I/O (message.ts), or deciding whether a stale socket file may be removed
 * (the caller; `unlinkQuiet` is offered for it).
 */
import { chmodSync, unlinkSync } from 'node:fs';
import { hasCode } from '../errors.js';
import { SysError, SysUsageError } from './errors.js';
import { assertFd, closeQuiet } from './fd.js';
import { EINTR, EISCONN, ENOTCONN, O_CLOEXEC, lastErrno, libc, retrying } from './libc.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
/** SOCK_CLOEXEC is O_CLOEXEC: sockets never leak into spawned processes (QEMU, daemons). */
const SOCK_CLOEXEC = O_CLOEXEC;

/** `how` values of shutdown(2). */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

/** sizeof(sun_path); the path needs a terminating NUL, so at most 107 bytes of UTF-8. */
const SUN_PATH_SIZE = 108;
/** offsetof(struct sockaddr_un, sun_path): after the u16 sun_family. */
const SUN_PATH_OFFSET = 2;

/** A `struct sockaddr_un` for a filesystem path, and the address length to pass with it. */
function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length >= SUN_PATH_SIZE || bytes.includes(0)) {
    throw new SysUsageError(
      `unix socket path must be 1..${SUN_PATH_SIZE - 1} bytes without NUL, got ${bytes.length} bytes: ${path}`,
    );
  }
  const addr = new Uint8Array(SUN_PATH_OFFSET + SUN_PATH_SIZE);
  // sun_family is a host-order u16; a Uint16Array writes host order.
  new Uint16Array(addr.buffer, 0, 1)[0] = AF_UNIX;
  addr.set(bytes, SUN_PATH_OFFSET);
  // Length counts the terminating NUL (zeroed by the allocation), as unix(7) recommends.
  return { addr, len: SUN_PATH_OFFSET + bytes.length + 1 };
}

function streamSocket(): number {
  return retrying('socket', () => libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

/**
 * Creates a listening Unix stream socket at `path`, with the socket file's mode 0600.
 * The chmod happens between bind and listen: until listen, connect() is refused, so no other user
 * can connect in the window where the file has the umask's mode. Whoever connects to a vhost-user
 * socket is handed guest memory.
 * @throws SysError EADDRINUSE when `path` exists (the caller decides whether to remove it).
 */
export function listenUnix(path: string, backlog = 16): number {
  const { addr, len } = sockaddrUn(path);
  const fd = streamSocket();
  let bound = false;
  try {
    retrying('bind', () => libc.bind(fd, addr, len));
    bound = true;
    chmodSync(path, 0o600);
    retrying('listen', () => libc.listen(fd, backlog));
    return fd;
  } catch (e) {
    closeQuiet(fd);
    if (bound) unlinkQuiet(path);
    throw e;
  }
}

/**
 * Accepts one connection on a listening socket; the new fd has FD_CLOEXEC.
 * Blocks unless `listenFd` is non-blocking, in which case it throws SysError EAGAIN when no
 * connection is pending.
 */
export function acceptUnix(listenFd: number): number {
  assertFd(listenFd, 'listening fd');
  return retrying('accept4', () => libc.accept4(listenFd, null, null, SOCK_CLOEXEC));
}

/**
 * Connects a new Unix stream socket to `path`.
 * @throws SysError ENOENT (no socket file) or ECONNREFUSED (nobody listening).
 */
export function connectUnix(path: string): number {
  const { addr, len } = sockaddrUn(path);
  const fd = streamSocket();
  try {
    for (;;) {
      if (libc.connect(fd, addr, len) === 0) return fd;
      const errno = lastErrno();
      // A connect interrupted by a signal keeps going in the kernel; repeating it then reports
      // EISCONN, which means the first attempt succeeded.
      if (errno === EISCONN) return fd;
      if (errno !== EINTR) throw new SysError('connect', errno);
    }
  } catch (e) {
    closeQuiet(fd);
    throw e;
  }
}

/** A connected pair of Unix stream sockets, both with FD_CLOEXEC (tests, in-process links). */
export function socketPair(): [number, number] {
  const sv = new Int32Array(2);
  retrying('socketpair', () => libc.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  // Safe: a successful socketpair wrote both elements of the 2-element array.
  return [sv[0]!, sv[1]!];
}

/**
 * Shuts down one or both directions of a socket; wakes a thread blocked in recv on it.
 * ENOTCONN (the peer is already gone) is not an error here.
 */
export function shutdown(fd: number, how: number = SHUT_RDWR): void {
  if (libc.shutdown(fd, how) === 0) return;
  const errno = lastErrno();
  if (errno !== ENOTCONN) throw new SysError('shutdown', errno);
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/**
 * The process at the other end of a connected Unix socket (SO_PEERCRED: pid, uid, gid as they
 * were when it connected or listened). The conformance suite uses the pid to look at a back-end's
 * /proc entries (its mappings) without any help from the back-end.
 */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  assertFd(fd);
  // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three host-order 32-bit integers.
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  retrying('getsockopt(SO_PEERCRED)', () => libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len));
  // Safe: the 3-element array has elements 0..2.
  return { pid: cred[0]!, uid: cred[1]! >>> 0, gid: cred[2]! >>> 0 };
}

/** Removes a socket file if it exists; other failures (EACCES, EISDIR…) still throw. */
export function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (!hasCode(e, 'ENOENT')) throw e;
  }
}
