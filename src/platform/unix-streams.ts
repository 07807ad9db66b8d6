// SPDX-License-Identifier: Apache-2.0
/**
 * The `unixStreams` host capability over `sys/`: the non-blocking AF_UNIX socket operations that
 * vsock's hybrid host side needs (devices never call the OS themselves; the back-end worker
 * injects this). Listening sockets get the same stale-file handling as vhost-user sockets.
 *
 * Owns: mapping `UnixStreamOps` onto sys calls. Does not own: what the device does with them.
 */
import type { UnixStreamOps } from '../devices/vsock/host.js';
import { acceptNonBlocking, closeQuiet, connectUnixNonBlocking, readSome, setNonBlocking, shutdown, SHUT_WR, unlinkQuiet, writeSome } from '../sys/index.js';
import { listenAt } from '../vhost-user/server.js';

export const unixStreamOps: UnixStreamOps = {
  listen(path) {
    const fd = listenAt(path);
    try {
      setNonBlocking(fd, true);
    } catch (e: unknown) {
      closeQuiet(fd);
      unlinkQuiet(path);
      throw e;
    }
    return fd;
  },
  accept: (fd) => acceptNonBlocking(fd),
  connect: (path) => connectUnixNonBlocking(path),
  read: (fd, buf) => readSome(fd, buf),
  write: (fd, data) => writeSome(fd, data),
  shutdownWrite: (fd) => shutdown(fd, SHUT_WR),
  close: (fd) => void closeQuiet(fd),
  unlink: (path) => unlinkQuiet(path),
};
