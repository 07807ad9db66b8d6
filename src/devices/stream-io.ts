// SPDX-License-Identifier: Apache-2.0
/**
 * The non-blocking stream loops that every socket-backed device host runs the same way (console
 * port sockets, the CAN bus link, the GPIO control socket, device control sockets): an ordered
 * output buffer that goes out as the socket takes it, a read loop that drains a socket until it
 * would block, and an accept loop that takes every pending connection.
 *
 * Owns: the loops over the injected `UnixStreamOps` and what their outcomes mean (would block, end
 * of stream, failure). Does not own: caps and what happens past them, framing, watches, or any OS
 * call (the ops do those).
 */
import type { UnixStreamOps } from './vsock/host.js';

/** Bytes waiting for a non-blocking socket, oldest first. */
export class PendingOutput {
  #chunks: Uint8Array[] = [];
  #bytes = 0;

  /** Bytes not written yet. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True when nothing waits. */
  get empty(): boolean {
    return this.#chunks.length === 0;
  }

  /** Queues `bytes` as given (the caller copies a buffer it will reuse). Empty chunks are skipped. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
  }

  /**
   * Writes to `fd` until the socket would block or nothing waits.
   * @returns false when a write threw (the socket is unusable; what was not written stays queued).
   */
  flush(ops: UnixStreamOps, fd: number): boolean {
    try {
      while (this.#chunks.length > 0) {
        // Safe: the loop condition says the list is not empty.
        const chunk = this.#chunks[0]!;
        const n = ops.write(fd, chunk);
        // null: would block. 0 for a non-empty chunk: the socket took nothing, so stop too.
        if (n === null || n === 0) break;
        this.#bytes -= n;
        if (n < chunk.length) this.#chunks[0] = chunk.subarray(n);
        else this.#chunks.shift();
      }
    } catch {
      return false;
    }
    return true;
  }

  /** The waiting chunks, oldest first (for a last best-effort write before closing). */
  chunks(): readonly Uint8Array[] {
    return this.#chunks;
  }

  /** Forgets everything waiting. @returns how many bytes that was. */
  clear(): number {
    const dropped = this.#bytes;
    this.#chunks = [];
    this.#bytes = 0;
    return dropped;
  }
}

/** How a `drainReadable` loop ended. */
export type ReadEnd =
  /** Nothing more to read now. */
  | 'blocked'
  /** The peer will send no more (read returned 0). */
  | 'closed'
  /** A read threw: the socket is unusable. */
  | 'failed'
  /** `onData` asked to stop. */
  | 'stopped';

/**
 * Reads `fd` into `buf` until it would block, handing each chunk to `onData` (a view of `buf`,
 * valid only during the call: copy what is kept). `onData` returns false to stop reading.
 */
export function drainReadable(ops: UnixStreamOps, fd: number, buf: Uint8Array, onData: (chunk: Uint8Array) => boolean | void): ReadEnd {
  for (;;) {
    let n: number | null;
    try {
      n = ops.read(fd, buf);
    } catch {
      return 'failed';
    }
    if (n === null) return 'blocked';
    if (n === 0) return 'closed';
    if (onData(buf.subarray(0, n)) === false) return 'stopped';
  }
}

/**
 * Accepts every pending connection on `listenFd`, handing each new fd to `onClient`. A throwing
 * accept ends the loop and goes to `onError` (the listener stays; the next readiness retries).
 */
export function acceptPending(ops: UnixStreamOps, listenFd: number, onClient: (fd: number) => void, onError?: (e: unknown) => void): void {
  for (;;) {
    let fd: number | null;
    try {
      fd = ops.accept(listenFd);
    } catch (e: unknown) {
      onError?.(e);
      return;
    }
    if (fd === null) return;
    onClient(fd);
  }
}
