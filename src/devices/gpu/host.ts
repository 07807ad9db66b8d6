// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of virtio-gpu: the socket operations for QEMU's display socket and the control
 * socket (the `unixStreams` capability the back-end worker injects), and writing snapshot files.
 *
 * Owns: the `GpuHost` interface and `fileGpuHost`, which writes each file under a temporary name
 * and renames it into place, so a reader never sees half a PNG.
 * Does not own: what is written (model.ts, pixels.ts).
 *
 * Synchronous fs calls, as in blk's and sound's hosts: the vhost-user runtime runs devices in a
 * worker thread.
 */
import fs from 'node:fs';
import type { UnixStreamOps } from '../vsock/host.js';

export interface GpuHost {
  /** Non-blocking Unix stream sockets (display socket, control socket); absent: neither is served. */
  readonly streams?: UnixStreamOps;
  /** Writes a whole file. @throws an Error naming the path. */
  writeFile(path: string, bytes: Uint8Array): void;
  /** Whether a file is there (a snapshot written earlier and not removed); absent: never assumed. */
  exists?(path: string): boolean;
}

/** A GpuHost over the file system. */
export function fileGpuHost(streams: UnixStreamOps | undefined): GpuHost {
  return {
    ...(streams === undefined ? {} : { streams }),
    writeFile(path, bytes) {
      const tmp = `${path}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, path);
    },
    exists: (path) => fs.existsSync(path),
  };
}
