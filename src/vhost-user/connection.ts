// SPDX-License-Identifier: Apache-2.0
/**
 * One front-end connection of a back-end, as the event loop drives it: a non-blocking socket, the
 * streaming parser that owns every fd received until a message takes it, the protocol session,
 * and the replies not yet written.
 *
 * Owns (issue #18, docs/reliability.md): reading without ever waiting (one `recvmsg` with
 * MSG_DONTWAIT per readiness, whatever arrived goes to the parser, so half a header just waits in
 * the parser while the loop serves everyone else); the fd ownership chain recvmsg → parser →
 * message → session, with `close` handing the parser's held fds back (a message cut off by a
 * disconnect); writing replies without waiting (a reply the socket cannot take now is queued and
 * written when the socket is writable; a front-end that lets `MAX_PENDING_REPLY_BYTES` pile up is
 * not reading and is dropped). A reply that carries fds (GET_INFLIGHT_FD) owns them until they are
 * sent with its first byte; they are closed then, or when the connection ends first.
 * Does not own: polling (loop.ts), the protocol (session.ts), framing rules (parser.ts).
 */
import { closeAllQuiet, closeQuiet, setNonBlocking, tryRecvMsg, trySendMsg, writeSome } from '../sys/index.js';
import { VhostUserRequestParser, type ParseItem } from './parser.js';
import type { FrontendRequest } from './messages.js';
import { VHOST_USER_MAX_FDS } from './protocol.js';
import type { BackendSession } from './session.js';

/** Bytes read per readiness; the parser copies what it keeps, so one buffer serves every connection. */
const CHUNK_BYTES = 64 * 1024;
/**
 * Replies a front-end may leave unread before it is dropped. A well-behaved front-end reads each
 * reply before its next request that has one; 64 KiB is hundreds of replies.
 */
export const MAX_PENDING_REPLY_BYTES = 64 * 1024;

const chunk = new Uint8Array(CHUNK_BYTES);

export class BackendConnection {
  readonly fd: number;
  readonly session: BackendSession;
  readonly #parser: VhostUserRequestParser;
  readonly #pending: Array<{ bytes: Uint8Array; fds: readonly number[] }> = [];
  #pendingBytes = 0;
  #closed = false;

  /** Takes ownership of `fd` (a connected stream socket) and makes it non-blocking. */
  constructor(fd: number, session: BackendSession) {
    this.fd = fd;
    this.session = session;
    this.#parser = new VhostUserRequestParser({ closeFd: (f) => void closeQuiet(f) });
    try {
      setNonBlocking(fd, true);
    } catch (e: unknown) {
      this.close();
      throw e;
    }
  }

  /** True when replies wait for the socket to become writable. */
  get wantsWrite(): boolean {
    return this.#pendingBytes > 0;
  }

  /** fds held for a message not complete yet (leak accounting in tests). */
  get heldFdCount(): number {
    return this.#parser.heldFdCount;
  }

  /**
   * The socket is readable: reads once, handles every message completed, queues their replies.
   * @returns a reason to end the connection, or null to go on.
   * @throws SysError from the socket (the peer's doing); anything else is an AVP bug.
   */
  onReadable(): string | null {
    const r = tryRecvMsg(this.fd, chunk, VHOST_USER_MAX_FDS);
    if (r === null) return null;
    if (r.truncated) return `more than ${VHOST_USER_MAX_FDS} fds in one message (they were closed)`;
    if (r.bytes === 0) {
      const cut = this.#parser.end();
      return cut.length === 0 ? 'end of stream' : `end of stream: ${cut[0]?.kind === 'error' ? cut[0].error.message : 'inside a message'}`;
    }
    // From here the parser owns r.fds: push hands each to a message or closes it.
    const items = this.#parser.push(chunk.subarray(0, r.bytes), r.fds);
    return this.#handle(items);
  }

  /** The socket is writable: writes queued replies. Returns a reason to end, or null. */
  onWritable(): string | null {
    return this.#flush();
  }

  #handle(items: ParseItem<FrontendRequest>[]): string | null {
    for (const item of items) {
      if (item.kind === 'error' && item.error.fatal) return `protocol error: ${item.error.message}`;
      const reply = item.kind === 'message' ? this.session.handle(item.message) : this.session.handleProtocolError(item.error);
      if (reply === null) continue;
      // From here the queue owns the reply's fds (closed once sent, or by `close`).
      this.#pending.push({ bytes: reply.bytes, fds: reply.fds });
      this.#pendingBytes += reply.bytes.length;
    }
    return this.#flush();
  }

  #flush(): string | null {
    while (this.#pending.length > 0) {
      // Safe: the loop condition says there is a first element.
      const head = this.#pending[0]!;
      const n = head.fds.length > 0 ? trySendMsg(this.fd, head.bytes, head.fds) : writeSome(this.fd, head.bytes);
      if (n === null) break;
      this.#pendingBytes -= n;
      // Sent with the first byte: the peer has its own copies now.
      if (n > 0 && head.fds.length > 0) closeAllQuiet(head.fds);
      if (n === head.bytes.length) this.#pending.shift();
      else this.#pending[0] = { bytes: head.bytes.subarray(n), fds: n > 0 ? [] : head.fds };
    }
    if (this.#pendingBytes > MAX_PENDING_REPLY_BYTES) return `the front-end left ${this.#pendingBytes} bytes of replies unread`;
    return null;
  }

  /**
   * Ends the connection: closes the fds of a message cut off mid-way, resets the session (which
   * closes its eventfds and releases its memory), closes the socket. A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#parser.end();
      this.session.close();
    } finally {
      for (const p of this.#pending.splice(0)) closeAllQuiet(p.fds);
      this.#pendingBytes = 0;
      closeQuiet(this.fd);
    }
  }
}
