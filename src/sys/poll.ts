// SPDX-License-Identifier: Apache-2.0
/**
 * Waiting for descriptors with poll(2): a one-shot `poll()` and a reusable `Poller` whose pollfd
 * array is allocated once, for a data-plane loop that waits on every wakeup.
 *
 * Owns: the pollfd layout, EINTR handling with the remaining timeout, timeout validation.
 * Does not own: what a ready descriptor means (the caller's loop), or non-blocking mode (fd.ts).
 * Blocks the calling thread: call it from a worker, never from the main thread (Node notes §7).
 */
import { performance } from 'node:perf_hooks';
import { SysError, SysUsageError } from './errors.js';
import { assertFd } from './fd.js';
import { EINTR, lastErrno, libc } from './libc.js';

/** Event bits of `struct pollfd` (asm-generic/poll.h). ERR, HUP and NVAL are reported even if not asked for. */
export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const POLLRDHUP = 0x2000;

/** sizeof(struct pollfd): i32 fd @0, i16 events @4, i16 revents @6. */
const POLLFD_SIZE = 8;

export interface PollEntry {
  readonly fd: number;
  readonly events: number;
}

/** Throws unless `timeoutMs` is what poll accepts: -1 (forever), 0 (check only) or a positive int. */
export function assertTimeout(timeoutMs: number): void {
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1 || timeoutMs > 0x7fff_ffff) {
    throw new SysUsageError(`poll timeout ${timeoutMs} ms is not an integer in [-1, 2^31-1]`);
  }
}

/**
 * Runs `wait(timeout)` (a poll-like call returning -1 with errno on failure) until it succeeds,
 * retrying EINTR with the time that is left, so a signal neither shortens nor extends the wait.
 */
export function waitRetrying(name: string, timeoutMs: number, wait: (timeout: number) => number): number {
  const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : 0;
  let timeout = timeoutMs;
  for (;;) {
    const r = wait(timeout);
    if (r >= 0) return r;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError(name, errno);
    if (timeoutMs > 0) timeout = Math.max(0, Math.ceil(deadline - performance.now()));
  }
}

/**
 * A pollfd array that is built once and polled many times. Entries are addressed by the index
 * `add` returns. Nothing is allocated per `wait`.
 */
export class Poller {
  #fdWords: Int32Array;
  #eventHalves: Uint16Array;
  #count = 0;
  /** Made once so that `wait` allocates nothing, not even a closure. */
  readonly #pollOnce = (timeout: number): number => libc.poll(this.#fdWords, this.#count, timeout);

  constructor(capacity = 8) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new SysUsageError(`Poller capacity ${capacity} must be >= 1`);
    const buffer = new ArrayBuffer(capacity * POLLFD_SIZE);
    this.#fdWords = new Int32Array(buffer);
    this.#eventHalves = new Uint16Array(buffer);
  }

  /** Number of entries. */
  get size(): number {
    return this.#count;
  }

  /** Appends an entry and returns its index. Grows the array when full (allocation only here). */
  add(fd: number, events: number): number {
    assertFd(fd);
    if (this.#count * 2 === this.#fdWords.length) this.#grow();
    const index = this.#count++;
    this.set(index, fd, events);
    return index;
  }

  /** Replaces entry `index`. A negative `fd` makes poll skip the entry (revents reads 0). */
  set(index: number, fd: number, events: number): void {
    this.#checkIndex(index);
    this.#fdWords[index * 2] = fd;
    this.#eventHalves[index * 4 + 2] = events;
    this.#eventHalves[index * 4 + 3] = 0;
  }

  /** Removes every entry (keeps the allocation). */
  clear(): void {
    this.#count = 0;
  }

  /**
   * Waits until an entry is ready or `timeoutMs` passes (-1 = forever, 0 = just check).
   * @returns the number of entries with non-zero revents (0 on timeout).
   * @throws SysError from poll (EINTR is retried).
   */
  wait(timeoutMs: number): number {
    assertTimeout(timeoutMs);
    return waitRetrying('poll', timeoutMs, this.#pollOnce);
  }

  /** The revents of entry `index` from the last `wait`. */
  revents(index: number): number {
    this.#checkIndex(index);
    // Safe: #checkIndex bounds index to entries that exist in the array.
    return this.#eventHalves[index * 4 + 3]!;
  }

  /** The fd of entry `index`. */
  fd(index: number): number {
    this.#checkIndex(index);
    // Safe: #checkIndex bounds index to entries that exist in the array.
    return this.#fdWords[index * 2]!;
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.#count) {
      throw new SysUsageError(`poll entry ${index} does not exist (size ${this.#count})`);
    }
  }

  #grow(): void {
    const buffer = new ArrayBuffer(this.#fdWords.byteLength * 2);
    new Int32Array(buffer).set(this.#fdWords);
    this.#fdWords = new Int32Array(buffer);
    this.#eventHalves = new Uint16Array(buffer);
  }
}

/**
 * One-shot poll(2): waits until one of `entries` is ready or `timeoutMs` passes.
 * @returns the revents of each entry, in order (all 0 on timeout).
 */
export function poll(entries: readonly PollEntry[], timeoutMs: number): number[] {
  assertTimeout(timeoutMs);
  const poller = new Poller(Math.max(1, entries.length));
  for (const e of entries) poller.add(e.fd, e.events);
  poller.wait(timeoutMs);
  return entries.map((_, i) => poller.revents(i));
}

/**
 * Blocks until `fd` reports any of `events` (or an error/hang-up condition). Used by the message
 * functions to finish a transfer on a non-blocking socket.
 */
export function waitFor(fd: number, events: number): number {
  const poller = new Poller(1);
  poller.add(fd, events);
  poller.wait(-1);
  return poller.revents(0);
}
