// SPDX-License-Identifier: Apache-2.0
/**
 * Byte-stream I/O on Unix sockets with descriptor passing (SCM_RIGHTS): `recvMsg`, `recvExact`,
 * `sendMsg`.
 *
 * Owns: the hand-built `struct msghdr` / `iovec` / `cmsghdr` (Node notes §6.3), CLOEXEC on received
 * fds, closing fds that arrive with a truncated control message, partial sends, EINTR retries.
 * Does not own: framing. vhost-user decides how many bytes make a message and how many fds it may
 * carry (vhost-user protocol: fds ride with the header; the caller receives the header with
 * `recvMsg` and the rest with `recvExact`).
 *
 * Ownership rule: every fd returned by `recvMsg` belongs to the caller, who must close it; fds
 * this file cannot return (truncated control data) are closed here. No received fd is ever leaked.
 */
import { SysError, SysEofError, SysUsageError } from './errors.js';
import { assertFd, closeAllQuiet } from './fd.js';
import { EAGAIN, EINTR, addressOf, allocNative, lastErrno, libc } from './libc.js';
import type { NativeBlock } from './libc.js';
import { POLLIN, POLLOUT, waitFor } from './poll.js';

/** The kernel's per-message fd limit (SCM_MAX_FD in include/net/scm.h). */
export const MAX_FDS_PER_MESSAGE = 253;

const MSG_CTRUNC = 0x8;
/** Never wait, whatever the socket's O_NONBLOCK flag says (a peer may share the flag). */
const MSG_DONTWAIT = 0x40;
const MSG_WAITALL = 0x100;
/** Report EPIPE instead of raising SIGPIPE, which would kill the process. */
const MSG_NOSIGNAL = 0x4000;
/** Received fds get FD_CLOEXEC atomically, so they never leak into a child spawned meanwhile. */
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

/** sizeof(struct cmsghdr): u64 cmsg_len, i32 cmsg_level, i32 cmsg_type. */
const CMSG_HDR = 16;

/** CMSG_SPACE(n * sizeof(int)): header plus fds, padded to 8 bytes. */
function cmsgSpace(fdCount: number): number {
  return CMSG_HDR + ((fdCount * 4 + 7) & ~7);
}

/**
 * Scratch block layout, byte offsets: msghdr @0 (56 bytes: name @0, namelen @8, iov @16,
 * iovlen @24, control @32, controllen @40, flags @48), iovec @64 (base, len), control @128.
 */
const IOV_OFF = 64;
const CONTROL_OFF = 128;
const SCRATCH_BYTES = CONTROL_OFF + cmsgSpace(MAX_FDS_PER_MESSAGE);

/** u64 indexes of msghdr and iovec fields in the scratch block. */
const H_NAME = 0;
const H_NAMELEN = 1;
const H_IOV = 2;
const H_IOVLEN = 3;
const H_CONTROL = 4;
const H_CONTROLLEN = 5;
const H_FLAGS = 6;
const IOV_BASE = IOV_OFF / 8;
const IOV_LEN = IOV_OFF / 8 + 1;
/** i32 index of msghdr.msg_flags (written by recvmsg). */
const FLAGS_I32 = (H_FLAGS * 8) / 4;

/** Separate blocks for each direction, so a receive never clobbers a send being set up. */
const recvBlock = allocNative(SCRATCH_BYTES);
const sendBlock = allocNative(SCRATCH_BYTES);

/**
 * Fills the msghdr of `block` for one iovec of `length` bytes at `base` and `controlBytes` of
 * control space (0 = none).
 */
function prepareHeader(block: NativeBlock, base: bigint, length: number, controlBytes: number): void {
  const h = block.u64;
  h[H_NAME] = 0n;
  h[H_NAMELEN] = 0n; // also clears the padding after the u32 namelen
  h[H_IOV] = block.address + BigInt(IOV_OFF);
  h[H_IOVLEN] = 1n;
  h[H_CONTROL] = controlBytes === 0 ? 0n : block.address + BigInt(CONTROL_OFF);
  h[H_CONTROLLEN] = BigInt(controlBytes);
  h[H_FLAGS] = 0n;
  h[IOV_BASE] = base;
  h[IOV_LEN] = BigInt(length);
}

/** Result of `recvMsg`. */
export interface RecvResult {
  /** Bytes written to the start of the buffer; 0 means the peer closed the stream (EOF). */
  readonly bytes: number;
  /** Descriptors that arrived with these bytes, CLOEXEC, owned by the caller. */
  readonly fds: number[];
  /**
   * The peer sent more fds than `maxFds`. The ones that arrived were closed here and `fds` is
   * empty: a message with missing fds is unusable and the caller should reject it.
   */
  readonly truncated: boolean;
}

function assertMaxFds(maxFds: number): void {
  if (!Number.isInteger(maxFds) || maxFds < 0 || maxFds > MAX_FDS_PER_MESSAGE) {
    throw new SysUsageError(`maxFds ${maxFds} must be an integer in 0..${MAX_FDS_PER_MESSAGE}`);
  }
}

/**
 * Receives up to `buf.length` bytes and up to `maxFds` descriptors with one recvmsg.
 * A stream may return fewer bytes than asked; the caller completes a frame with `recvExact`.
 * @throws SysError EAGAIN on a non-blocking socket with nothing to read; others from recvmsg.
 */
export function recvMsg(fd: number, buf: Uint8Array, maxFds = 0): RecvResult {
  return receive(fd, buf, maxFds, 0);
}

/**
 * `recvMsg` that never waits (MSG_DONTWAIT): the event loop's read, safe on a socket whose
 * O_NONBLOCK flag someone else controls.
 * @returns null when nothing is ready (EAGAIN); `bytes === 0` means end of stream.
 */
export function tryRecvMsg(fd: number, buf: Uint8Array, maxFds = 0): RecvResult | null {
  try {
    return receive(fd, buf, maxFds, MSG_DONTWAIT);
  } catch (e: unknown) {
    if (e instanceof SysError && e.errno === EAGAIN) return null;
    throw e;
  }
}

/**
 * One recvmsg. Ownership: from the moment the kernel returns, every fd it installed is either in
 * the result (the caller's) or closed here; nothing between the syscall and the return can throw.
 */
function receive(fd: number, buf: Uint8Array, maxFds: number, flags: number): RecvResult {
  assertFd(fd);
  assertMaxFds(maxFds);
  if (buf.length === 0) throw new SysUsageError('recvMsg needs a non-empty buffer (0 bytes read means EOF)');
  const controlBytes = maxFds === 0 ? 0 : cmsgSpace(maxFds);
  let bytes: number;
  for (;;) {
    // Reset on every attempt: the kernel overwrites msg_controllen and msg_flags.
    prepareHeader(recvBlock, addressOf(buf), buf.length, controlBytes);
    bytes = libc.recvmsg(fd, recvBlock.address, MSG_CMSG_CLOEXEC | flags);
    if (bytes >= 0) break;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('recvmsg', errno);
  }
  const fds = controlBytes === 0 ? [] : takeFds();
  // Safe: FLAGS_I32 is inside the fixed-size scratch block.
  const truncated = (recvBlock.i32[FLAGS_I32]! & MSG_CTRUNC) !== 0;
  if (truncated) {
    closeAllQuiet(fds);
    return { bytes, fds: [], truncated };
  }
  return { bytes, fds, truncated };
}

/** Collects the fds of every SCM_RIGHTS cmsg that recvmsg left in the receive block's control area. */
function takeFds(): number[] {
  const { u64, i32 } = recvBlock;
  // Safe: H_CONTROLLEN is inside the block; the kernel wrote back how much control data it stored,
  // never more than we offered, which fits the block.
  const controlLen = Number(u64[H_CONTROLLEN]!);
  const fds: number[] = [];
  let off = 0;
  while (off + CMSG_HDR <= controlLen) {
    const at = CONTROL_OFF + off;
    // Safe: `at` is 8-aligned (cmsgs are padded to 8) and at + CMSG_HDR <= the block size.
    const len = Number(u64[at / 8]!);
    if (len < CMSG_HDR || off + len > controlLen) break; // malformed: stop rather than read past it
    if (i32[at / 4 + 2] === SOL_SOCKET && i32[at / 4 + 3] === SCM_RIGHTS) {
      const count = (len - CMSG_HDR) / 4;
      // Safe: the fds lie within this cmsg, which lies within controlLen.
      for (let k = 0; k < count; k++) fds.push(i32[at / 4 + 4 + k]!);
    }
    off += (len + 7) & ~7;
  }
  return fds;
}

/**
 * Fills `buf` completely (recv with MSG_WAITALL, repeated until done).
 * Waits with poll when the socket is non-blocking, so it always blocks until the bytes or EOF come.
 * Any fds the peer attached to these bytes are discarded by the kernel (closed), never leaked.
 * @returns true when `buf` was filled; false when the peer had closed before the first byte (EOF).
 * @throws SysEofError when the peer closed after some but not all bytes.
 */
export function recvExact(fd: number, buf: Uint8Array): boolean {
  assertFd(fd);
  let got = 0;
  while (got < buf.length) {
    // `buf` is an argument of this frame for the whole call, so its address stays valid.
    const r = libc.recv(fd, addressOf(buf) + BigInt(got), buf.length - got, MSG_WAITALL);
    if (r > 0) {
      got += r;
    } else if (r === 0) {
      if (got === 0) return false;
      throw new SysEofError(buf.length, got);
    } else {
      const errno = lastErrno();
      if (errno === EAGAIN) waitFor(fd, POLLIN);
      else if (errno !== EINTR) throw new SysError('recv', errno);
    }
  }
  return true;
}

/**
 * Sends all of `data`, with `fds` attached to its first byte (SCM_RIGHTS). The fds stay open and
 * owned by the caller; the peer receives duplicates. Partial sends are continued (without the fds,
 * which the kernel delivered with the first chunk); a non-blocking socket is waited on with poll.
 * @throws SysError EPIPE or ECONNRESET when the peer is gone (never SIGPIPE).
 */
export function sendMsg(fd: number, data: Uint8Array, fds: readonly number[] = []): void {
  assertFd(fd);
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new SysUsageError(`cannot send ${fds.length} fds (max ${MAX_FDS_PER_MESSAGE})`);
  // A stream socket carries fds only alongside at least one byte.
  if (fds.length > 0 && data.length === 0) throw new SysUsageError('sendMsg needs at least one byte to carry fds');
  for (const f of fds) assertFd(f, 'fd to send');
  let controlBytes = fds.length === 0 ? 0 : writeRights(fds);
  let sent = 0;
  while (sent < data.length) {
    // `data` is an argument of this frame for the whole call, so its address stays valid.
    prepareHeader(sendBlock, addressOf(data) + BigInt(sent), data.length - sent, controlBytes);
    const r = libc.sendmsg(fd, sendBlock.address, MSG_NOSIGNAL);
    if (r >= 0) {
      sent += r;
      controlBytes = 0;
      continue;
    }
    const errno = lastErrno();
    if (errno === EAGAIN) waitFor(fd, POLLOUT);
    else if (errno !== EINTR) throw new SysError('sendmsg', errno);
  }
}

/**
 * `sendMsg` that never waits (MSG_DONTWAIT): sends as much of `data` as fits now, with `fds`
 * attached to its first byte. The kernel delivers the fds with the first byte sent, so a caller
 * that got a partial count sends the rest without them. The fds stay open and owned by the caller.
 * @returns the byte count sent, or null when nothing fits (EAGAIN; the fds were not sent either).
 * @throws SysError EPIPE or ECONNRESET when the peer is gone (never SIGPIPE).
 */
export function trySendMsg(fd: number, data: Uint8Array, fds: readonly number[] = []): number | null {
  assertFd(fd);
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new SysUsageError(`cannot send ${fds.length} fds (max ${MAX_FDS_PER_MESSAGE})`);
  if (data.length === 0) throw new SysUsageError('trySendMsg needs at least one byte');
  for (const f of fds) assertFd(f, 'fd to send');
  for (;;) {
    const controlBytes = fds.length === 0 ? 0 : writeRights(fds);
    // `data` is an argument of this frame for the whole call, so its address stays valid.
    prepareHeader(sendBlock, addressOf(data), data.length, controlBytes);
    const r = libc.sendmsg(fd, sendBlock.address, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) return r;
    const errno = lastErrno();
    if (errno === EAGAIN) return null;
    if (errno !== EINTR) throw new SysError('sendmsg', errno);
  }
}

/** Writes one SCM_RIGHTS cmsg carrying `fds` into the send block; returns its CMSG_SPACE. */
function writeRights(fds: readonly number[]): number {
  const { u64, i32 } = sendBlock;
  u64[CONTROL_OFF / 8] = BigInt(CMSG_HDR + fds.length * 4); // CMSG_LEN: unpadded
  i32[CONTROL_OFF / 4 + 2] = SOL_SOCKET;
  i32[CONTROL_OFF / 4 + 3] = SCM_RIGHTS;
  fds.forEach((f, k) => {
    i32[CONTROL_OFF / 4 + 4 + k] = f;
  });
  const space = cmsgSpace(fds.length);
  // Zero the padding after an odd fd count, so no stale bytes go to the kernel.
  if (fds.length % 2 === 1) i32[CONTROL_OFF / 4 + 4 + fds.length] = 0;
  return space;
}
