// SPDX-License-Identifier: Apache-2.0
/**
 * epoll(7): an alternative to `Poller` for loops with many descriptors (many queues or devices),
 * where the interest set lives in the kernel and each wakeup costs O(ready), not O(watched).
 *
 * Owns: the `struct epoll_event` layout per architecture, a preallocated ready-event array, and a
 * u32 token per descriptor (epoll_data's low word) that the caller picks to identify it.
 * Does not own: the meaning of tokens or events (the caller's loop).
 * Blocks the calling thread in `wait`: call it from a worker, never from the main thread.
 */
import { SysUsageError } from './errors.js';
import { assertFd, close } from './fd.js';
import { O_CLOEXEC, libc, retrying } from './libc.js';
import { assertTimeout, waitRetrying } from './poll.js';

/** Event bits (linux/eventpoll.h); ERR and HUP are always reported. */
export const EPOLLIN = 0x1;
export const EPOLLPRI = 0x2;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
/** Edge-triggered: report a descriptor once per change of state, not while it stays ready. */
export const EPOLLET = 0x8000_0000;

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLL_CLOEXEC = O_CLOEXEC;

/**
 * `struct epoll_event` is `__attribute__((packed))` on x86-64 only: u32 events @0, u64 data @4,
 * 12 bytes. Elsewhere (arm64) data is 8-aligned: data @8, 16 bytes. Sizes in u32 words; the token
 * is data's low word (little-endian, checked in libc.ts), the high word is written as 0.
 */
const EVENT_WORDS = process.arch === 'x64' ? 3 : 4;
const DATA_WORD = process.arch === 'x64' ? 1 : 2;

export class Epoll {
  /** The epoll descriptor (FD_CLOEXEC). */
  readonly fd: number;
  readonly #ready: Uint32Array;
  readonly #maxEvents: number;
  readonly #ctlEvent = new Uint32Array(4);
  #readyCount = 0;
  #closed = false;
  /** Made once so that `wait` allocates nothing, not even a closure. */
  readonly #waitOnce = (timeout: number): number => libc.epoll_wait(this.fd, this.#ready, this.#maxEvents, timeout);

  /** @param maxEvents how many ready descriptors one `wait` can report. */
  constructor(maxEvents = 64) {
    if (!Number.isInteger(maxEvents) || maxEvents < 1 || maxEvents > 4096) {
      throw new SysUsageError(`epoll maxEvents ${maxEvents} must be an integer in 1..4096`);
    }
    this.#maxEvents = maxEvents;
    this.#ready = new Uint32Array(maxEvents * EVENT_WORDS);
    this.fd = retrying('epoll_create1', () => libc.epoll_create1(EPOLL_CLOEXEC));
  }

  /** Watches `fd` for `events`; `token` (a u32) comes back with its ready events. */
  add(fd: number, events: number, token: number): void {
    this.#ctl('epoll_ctl(ADD)', EPOLL_CTL_ADD, fd, events, token);
  }

  /** Changes the events or token of a watched `fd`. */
  modify(fd: number, events: number, token: number): void {
    this.#ctl('epoll_ctl(MOD)', EPOLL_CTL_MOD, fd, events, token);
  }

  /** Stops watching `fd`. Closing an fd also removes it, unless it was dup'ed. */
  remove(fd: number): void {
    this.#ctl('epoll_ctl(DEL)', EPOLL_CTL_DEL, fd, 0, 0);
  }

  /**
   * Waits until a watched fd is ready or `timeoutMs` passes (-1 = forever, 0 = just check).
   * @returns how many entries `events(i)` / `token(i)` now describe (0 on timeout).
   */
  wait(timeoutMs: number): number {
    this.#checkOpen();
    assertTimeout(timeoutMs);
    this.#readyCount = waitRetrying('epoll_wait', timeoutMs, this.#waitOnce);
    return this.#readyCount;
  }

  /** Ready events of entry `i` from the last `wait`. */
  events(i: number): number {
    this.#checkIndex(i);
    // Safe: #checkIndex bounds i below the ready count, which is <= maxEvents.
    return this.#ready[i * EVENT_WORDS]!;
  }

  /** Token of entry `i` from the last `wait`. */
  token(i: number): number {
    this.#checkIndex(i);
    // Safe: #checkIndex bounds i below the ready count, which is <= maxEvents.
    return this.#ready[i * EVENT_WORDS + DATA_WORD]!;
  }

  /** Closes the epoll descriptor (watched descriptors stay open). A second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }

  #ctl(name: string, op: number, fd: number, events: number, token: number): void {
    this.#checkOpen();
    assertFd(fd);
    if (!Number.isInteger(token) || token < 0 || token > 0xffff_ffff) throw new SysUsageError(`epoll token ${token} is not a u32`);
    const ev = this.#ctlEvent;
    ev.fill(0);
    ev[0] = events >>> 0;
    ev[DATA_WORD] = token;
    retrying(name, () => libc.epoll_ctl(this.fd, op, fd, ev));
  }

  #checkOpen(): void {
    if (this.#closed) throw new SysUsageError('epoll instance is closed');
  }

  #checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.#readyCount) {
      throw new SysUsageError(`epoll entry ${i} does not exist (ready ${this.#readyCount})`);
    }
  }
}
