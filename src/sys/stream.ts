// SPDX-License-Identifier: Apache-2.0
/**
 * Non-blocking byte-stream I/O on Unix sockets, for host sockets that an event loop watches
 * (vsock's host side): read and write what fits now and report "would block" as a value, accept
 * without waiting, connect a non-blocking socket.
 *
 * Owns: MSG_DONTWAIT / MSG_NOSIGNAL use, EAGAIN → `null`, EINTR retries.
 * Does not own: waiting (the caller's poll loop), blocking I/O (message.ts), socket paths
 * (socket.ts).
 */
import { SysError, SysUsageError } from './errors.js';
import { assertFd, closeQuiet } from './fd.js';
import { EAGAIN, EINTR, EISCONN, O_CLOEXEC, O_NONBLOCK, addressOf, lastErrno, libc } from './libc.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
/** recv/send flags (bits/socket.h). */
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(sun_path). */
const SUN_PATH_SIZE = 108;

/** Calls `call` until it is not interrupted; -1 with EAGAIN becomes null. */
function nonBlocking(name: string, call: () => number): number | null {
  for (;;) {
    const r = call();
    if (r !== -1) return r;
    const errno = lastErrno();
    if (errno === EAGAIN) return null;
    if (errno !== EINTR) throw new SysError(name, errno);
  }
}

/**
 * Reads what is available into `buf` without waiting.
 * @returns the byte count (0 = the peer closed its sending side), or null when nothing is available.
 * @throws SysError (ECONNRESET, ...)
 */
export function readSome(fd: number, buf: Uint8Array): number | null {
  assertFd(fd);
  if (buf.byteLength === 0) throw new SysUsageError('readSome needs a non-empty buffer (0 would read as end of stream)');
  // `buf` is an argument of this frame for the whole call, so its address stays valid.
  return nonBlocking('recv', () => libc.recv(fd, addressOf(buf), buf.byteLength, MSG_DONTWAIT));
}

/**
 * Writes as much of `data` as fits now, without waiting and without SIGPIPE.
 * @returns the byte count written (may be less than `data.byteLength`), or null when nothing fits.
 * @throws SysError EPIPE or ECONNRESET when the peer is gone.
 */
export function writeSome(fd: number, data: Uint8Array): number | null {
  assertFd(fd);
  if (data.byteLength === 0) return 0;
  // `data` is an argument of this frame for the whole call, so its address stays valid.
  return nonBlocking('send', () => libc.send(fd, addressOf(data), data.byteLength, MSG_DONTWAIT | MSG_NOSIGNAL));
}

/**
 * Accepts a pending connection without waiting; the new socket is non-blocking and close-on-exec.
 * @returns the new fd, or null when no connection is pending.
 */
export function acceptNonBlocking(listenFd: number): number | null {
  assertFd(listenFd, 'listening fd');
  return nonBlocking('accept4', () => libc.accept4(listenFd, null, null, O_CLOEXEC | O_NONBLOCK));
}

/**
 * Connects a new non-blocking, close-on-exec Unix stream socket to `path`. A Unix stream connect
 * completes at once or fails: ENOENT (no socket file), ECONNREFUSED (nobody listens) or EAGAIN
 * (the listener's backlog is full), all thrown as SysError.
 */
export function connectUnixNonBlocking(path: string): number {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length >= SUN_PATH_SIZE || bytes.includes(0)) {
    throw new SysUsageError(`unix socket path must be 1..${SUN_PATH_SIZE - 1} bytes without NUL, got ${bytes.length} bytes: ${path}`);
  }
  const addr = new Uint8Array(2 + SUN_PATH_SIZE);
  // sun_family is a host-order u16; a Uint16Array writes host order.
  new Uint16Array(addr.buffer, 0, 1)[0] = AF_UNIX;
  addr.set(bytes, 2);
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd === -1) throw new SysError('socket', lastErrno());
  for (;;) {
    if (libc.connect(fd, addr, 2 + bytes.length + 1) === 0) return fd;
    const errno = lastErrno();
    // An interrupted connect goes on in the kernel; repeating it reports EISCONN once it is done.
    if (errno === EISCONN) return fd;
    if (errno === EINTR) continue;
    closeQuiet(fd);
    throw new SysError('connect', errno);
  }
}
