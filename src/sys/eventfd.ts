// SPDX-License-Identifier: Apache-2.0
/**
 * eventfd(2): the kick and call notifications of vhost-user virtqueues.
 *
 * Owns: the 8-byte counter read/write, EAGAIN on a non-blocking eventfd reported as "nothing".
 * Does not own: waiting for an eventfd (poll.ts, epoll.ts) or what a kick means (vhost-user).
 */
import { SysError, SysUsageError } from './errors.js';
import { assertFd } from './fd.js';
import { EAGAIN, EINTR, EIO, O_CLOEXEC, O_NONBLOCK, lastErrno, libc } from './libc.js';

/** Flags of eventfd(2) (they equal the O_ flags). */
export const EFD_SEMAPHORE = 0x1;
export const EFD_CLOEXEC = O_CLOEXEC;
export const EFD_NONBLOCK = O_NONBLOCK;

/** The counter never exceeds 2^64 - 2; a write that would pass it blocks or fails EAGAIN. */
const MAX_COUNTER = 0xffff_ffff_ffff_fffen;

/**
 * One 8-byte host-order counter buffer for reads and writes (the counter is a host-order u64,
 * so a BigUint64Array, not a little-endian DataView, is the correct view).
 */
const counter = new BigUint64Array(1);

/**
 * Creates an eventfd with counter `initial`. FD_CLOEXEC is always added: eventfds reach QEMU
 * and peers only by SCM_RIGHTS, never by inheritance.
 */
export function eventfdCreate(flags: number = EFD_NONBLOCK, initial = 0): number {
  if ((flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)) !== 0) throw new SysUsageError(`unknown eventfd flags 0x${flags.toString(16)}`);
  if (!Number.isInteger(initial) || initial < 0 || initial > 0xffff_ffff) throw new SysUsageError(`eventfd initial ${initial} is not a u32`);
  for (;;) {
    const fd = libc.eventfd(initial, flags | EFD_CLOEXEC);
    if (fd >= 0) return fd;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('eventfd', errno);
  }
}

/**
 * Reads and resets the counter (or takes 1 from it with EFD_SEMAPHORE).
 * @returns the counter value, or 0n when a non-blocking eventfd has nothing (EAGAIN).
 */
export function eventfdRead(fd: number): bigint {
  assertFd(fd);
  for (;;) {
    const r = libc.read(fd, counter, 8);
    // Safe: the 1-element array always has element 0.
    if (r === 8) return counter[0]!;
    if (r >= 0) throw new SysError('read(eventfd)', EIO) // an eventfd read is 8 bytes or fails;
    const errno = lastErrno();
    if (errno === EAGAIN) return 0n;
    if (errno !== EINTR) throw new SysError('read(eventfd)', errno);
  }
}

/**
 * Signals an eventfd (adds 1) without ever blocking or throwing for a full counter: the
 * virtqueue call and error notifications of a back-end. A counter at its maximum is already
 * readable, so the peer has a notification pending and one more adds nothing.
 * Non-blocking only if the fd is (vhost-user sets O_NONBLOCK on the fds it receives).
 * @returns false when the counter was saturated (EAGAIN) and nothing was added.
 * @throws SysError for anything else (EBADF: an AVP bug).
 */
export function eventfdSignal(fd: number): boolean {
  assertFd(fd);
  counter[0] = 1n;
  for (;;) {
    const r = libc.write(fd, counter, 8);
    if (r === 8) return true;
    if (r >= 0) throw new SysError('write(eventfd)', EIO);
    const errno = lastErrno();
    if (errno === EAGAIN) return false;
    if (errno !== EINTR) throw new SysError('write(eventfd)', errno);
  }
}

/**
 * Adds `value` to the counter, waking waiters (a virtqueue kick or call).
 * @throws SysError EAGAIN when a non-blocking counter would overflow.
 */
export function eventfdWrite(fd: number, value = 1n): void {
  assertFd(fd);
  if (value < 0n || value > MAX_COUNTER) throw new SysUsageError(`eventfd increment ${value} is not in 0..2^64-2`);
  counter[0] = value;
  for (;;) {
    const r = libc.write(fd, counter, 8);
    if (r === 8) return;
    if (r >= 0) throw new SysError('write(eventfd)', EIO) // an eventfd write is 8 bytes or fails;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('write(eventfd)', errno);
  }
}

/**
 * Brings a non-blocking eventfd that a peer also writes to its maximum count (a test of how the
 * peer copes with a counter that cannot grow). The counter is drained first (MAX + n does not
 * fit); the peer may signal between the drain and the write (virtiofsd does once after start,
 * our switch on a call-fd swap), so a write refused with EAGAIN drains and tries again.
 * @returns false when every one of `tries` attempts found the counter changed.
 */
export function eventfdSaturate(fd: number, tries = 100): boolean {
  for (let i = 0; i < tries; i++) {
    eventfdRead(fd);
    try {
      eventfdWrite(fd, MAX_COUNTER);
      return true;
    } catch (e: unknown) {
      if (!(e instanceof SysError) || e.errno !== EAGAIN) throw e;
    }
  }
  return false;
}
