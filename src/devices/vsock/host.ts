// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of virtio-vsock: AF_UNIX stream sockets in the "hybrid vsock" convention of
 * Firecracker and Cloud Hypervisor, so that tools written for them work unchanged.
 *
 * - Guest → host: a guest connecting to (CID 2, port X) is connected to the host Unix socket
 *   `<uds-path>_X`, where a host program listens.
 * - Host → guest: a host program connects to `<uds-path>` itself (the device listens there),
 *   writes `CONNECT <port>\n`, and, once the guest accepted, reads `OK <hostport>\n` (the port the
 *   connection has on the host side, CID 2); raw stream bytes follow in both directions. If the
 *   guest refuses (nothing listens on the port), the host socket is closed without a reply.
 *
 * Owns: the socket operations a vsock device needs, as an injected capability (`UnixStreamOps`:
 * devices never call the OS; the back-end worker passes an implementation over `sys/`, tests pass
 * fakes), the path convention, and parsing of the one-line handshake.
 * Does not own: connection state, credit and packets (`model.ts`), or any OS call.
 */

/**
 * Non-blocking AF_UNIX stream operations. Every fd is non-blocking; `null` means "would block".
 * Failures throw (any error type: the device treats a throw as "this socket is unusable").
 */
export interface UnixStreamOps {
  /** A listening socket at `path` (a stale socket file there is replaced; a live one is refused). */
  listen(path: string): number;
  /** A pending connection, or null when none is pending. */
  accept(listenFd: number): number | null;
  /** A connected socket; throws when nobody listens at `path` (ENOENT, ECONNREFUSED, EAGAIN). */
  connect(path: string): number;
  /** Bytes read into `buf` (0 = the peer will send no more), or null when nothing is available. */
  read(fd: number, buf: Uint8Array): number | null;
  /** Bytes of `data` written (possibly fewer), or null when nothing fits now. */
  write(fd: number, data: Uint8Array): number | null;
  /** Tells the peer this side will send no more (shutdown(SHUT_WR)). */
  shutdownWrite(fd: number): void;
  close(fd: number): void;
  /** Removes the socket file at `path`, if any. */
  unlink(path: string): void;
}

/** The Unix socket a guest connection to host port `port` is forwarded to: `<udsPath>_<port>`. */
export function hostPortPath(udsPath: string, port: number): string {
  return `${udsPath}_${port}`;
}

/** The longest handshake line accepted (`CONNECT 4294967295\r\n` is 20 bytes). */
export const HANDSHAKE_MAX_LINE = 64;

export type HandshakeParse =
  /** No newline yet (and the line is still short enough). */
  | { kind: 'incomplete' }
  /** A bad line: not `CONNECT <port>`, a port outside u32, or no newline within the limit. */
  | { kind: 'invalid'; reason: string }
  /** `CONNECT <port>`; `rest` is what followed the newline (early stream data). */
  | { kind: 'connect'; port: number; rest: Uint8Array };

/** Parses the host client's first line, `CONNECT <port>\n` (a trailing `\r` is tolerated). */
export function parseHandshake(buf: Uint8Array): HandshakeParse {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return buf.length >= HANDSHAKE_MAX_LINE ? { kind: 'invalid', reason: `no newline within ${HANDSHAKE_MAX_LINE} bytes` } : { kind: 'incomplete' };
  const line = new TextDecoder('latin1').decode(buf.subarray(0, nl)).replace(/\r$/, '');
  const m = /^CONNECT ([0-9]{1,10})$/.exec(line);
  const port = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(port) || port > 0xffff_ffff) return { kind: 'invalid', reason: `expected "CONNECT <port>", got ${JSON.stringify(line.slice(0, 40))}` };
  return { kind: 'connect', port, rest: buf.slice(nl + 1) };
}

/** The reply once the guest accepted: `OK <hostport>\n`. */
export function okLine(hostPort: number): Uint8Array {
  return new TextEncoder().encode(`OK ${hostPort}\n`);
}
