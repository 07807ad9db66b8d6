// SPDX-License-Identifier: Apache-2.0
/**
 * The back-end event loop: one thread, one `poll()` over the listening socket or the connection,
 * the kick eventfds of live rings, and a wake eventfd. Control plane and data plane run here
 * together, like libvhost-user's single thread; the loop blocks in poll, so it must run in a
 * worker thread (measured best on this kind of machine; shared/reference Node notes §7), never on
 * Node's main thread.
 *
 * Owns: accepting one front-end at a time on a listening socket that stays open across clients
 * (a re-created socket leaves a window in which a reconnecting front-end finds nothing,
 * rust-vmm/vhost#321), reading messages (the 12-byte header with `recvmsg`, which carries the fds,
 * then the payload), feeding the parser, sending replies, dispatching kicks, and resetting the
 * device when the front-end goes away so the next one starts clean (QEMU `reconnect=`).
 * Does not own: the protocol state (`session.ts`), process signals or the socket file (the CLI).
 */
import type { DeviceLog, VirtioDevice } from '../device/contract.js';
import {
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  Poller,
  acceptUnix,
  closeQuiet,
  eventfdRead,
  recvExact,
  recvMsg,
  sendMsg,
  SysError,
  SysEofError,
} from '../sys/index.js';
import { VhostUserRequestParser } from './parser.js';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_FDS } from './protocol.js';
import { BackendSession } from './session.js';

export interface LoopOptions {
  device: VirtioDevice;
  /** A listening AF_UNIX stream socket. */
  listenFd: number;
  /** An eventfd the controlling thread writes to; `onWake` then says what to do. */
  wakeFd: number;
  /** Called when the wake fd fires: return 'stop' to end the loop. */
  onWake: () => 'stop' | 'continue';
  log: DeviceLog;
  /** Connection events, for status displays and tests. */
  onEvent?: (event: LoopEvent) => void;
  /** Told the metrics source of each new session (undefined when it ends). */
  onSession?: (metrics: (() => Record<string, unknown>) | undefined) => void;
}

export type LoopEvent = { kind: 'connected' } | { kind: 'disconnected'; reason: string; requests: number };

interface Connection {
  fd: number;
  session: BackendSession;
  parser: VhostUserRequestParser;
}

const HUP = POLLHUP | POLLERR | POLLNVAL;

/** Runs until `onWake` returns 'stop'. Never throws for anything a front-end sends. */
export function runBackendLoop(opts: LoopOptions): void {
  const poller = new Poller(16);
  let conn: Connection | undefined;
  let builtFor: { conn: Connection | undefined; generation: number } | undefined;
  let kicks: Array<{ fd: number; index: number }> = [];
  const header = new Uint8Array(VHOST_USER_HDR_SIZE);
  const headerView = new DataView(header.buffer);

  const disconnect = (reason: string): void => {
    if (conn === undefined) return;
    const requests = conn.session.stats.requests;
    conn.session.close();
    closeQuiet(conn.fd);
    conn = undefined;
    opts.onSession?.(undefined);
    opts.log.info(`front-end disconnected: ${reason}`);
    opts.onEvent?.({ kind: 'disconnected', reason, requests });
  };

  /** Reads and handles one message; returns a reason to disconnect, or null. */
  const serveMessage = (c: Connection): string | null => {
    const first = recvMsg(c.fd, header, VHOST_USER_MAX_FDS);
    if (first.bytes === 0) return 'end of stream';
    if (first.bytes < VHOST_USER_HDR_SIZE && !recvExact(c.fd, header.subarray(first.bytes))) return 'end of stream inside a header';
    const items = c.parser.push(header, first.fds);
    if (c.parser.failure === null) {
      const size = headerView.getUint32(8, true);
      // The parser has checked `size` against the cap (a fatal error otherwise), so this is bounded.
      if (size > 0) {
        const payload = new Uint8Array(size);
        if (!recvExact(c.fd, payload)) return 'end of stream inside a payload';
        items.push(...c.parser.push(payload));
      }
    }
    for (const item of items) {
      if (item.kind === 'error' && item.error.fatal) return `protocol error: ${item.error.message}`;
      const reply = item.kind === 'message' ? c.session.handle(item.message) : c.session.handleProtocolError(item.error);
      if (reply !== null) sendMsg(c.fd, reply.bytes, reply.fds);
    }
    return null;
  };

  /**
   * The reason to drop the connection after an exception. Socket errors are the peer's doing; any
   * other exception is an AVP bug: it is logged with its stack, and only this connection pays for
   * it, because the device is reset on disconnect and the back-end keeps serving.
   */
  const failure = (e: unknown): string => {
    if (e instanceof SysError || e instanceof SysEofError) return e.message;
    opts.log.error(`internal error, dropping the connection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return `internal error: ${e instanceof Error ? e.message : String(e)}`;
  };

  for (;;) {
    const generation = conn?.session.kickGeneration ?? -1;
    if (builtFor === undefined || builtFor.conn !== conn || builtFor.generation !== generation) {
      poller.clear();
      poller.add(opts.wakeFd, POLLIN);
      poller.add(conn?.fd ?? opts.listenFd, POLLIN);
      kicks = conn?.session.kickFds() ?? [];
      for (const k of kicks) poller.add(k.fd, POLLIN);
      builtFor = { conn, generation };
    }
    poller.wait(-1);
    if (poller.revents(0) & POLLIN) {
      eventfdRead(opts.wakeFd);
      if (opts.onWake() === 'stop') break;
    }
    const io = poller.revents(1);
    if (conn === undefined && io & POLLIN) {
      try {
        const fd = acceptUnix(opts.listenFd);
        conn = { fd, session: new BackendSession({ device: opts.device, log: opts.log }), parser: new VhostUserRequestParser({ closeFd: (f) => void closeQuiet(f) }) };
        const session = conn.session;
        opts.onSession?.(() => session.metrics());
        opts.log.info('front-end connected');
        opts.onEvent?.({ kind: 'connected' });
      } catch (e: unknown) {
        if (!(e instanceof SysError)) throw e;
        opts.log.warn(`accept failed: ${e.message}`);
      }
      continue;
    }
    if (conn !== undefined && io & (POLLIN | HUP)) {
      let reason: string | null;
      try {
        reason = serveMessage(conn);
      } catch (e: unknown) {
        reason = failure(e);
      }
      if (reason !== null) disconnect(reason);
      // The kick set may have changed: rebuild before looking at kick revents.
      continue;
    }
    try {
      kicks.forEach((k, i) => {
        const ev = poller.revents(2 + i);
        if (ev & POLLIN) conn?.session.kick(k.index);
        else if (ev & HUP) opts.log.warn(`vring ${k.index}: kick fd reported 0x${ev.toString(16)}`);
      });
    } catch (e: unknown) {
      disconnect(failure(e));
    }
  }
  disconnect('back-end stopping');
}
