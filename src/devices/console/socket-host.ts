// SPDX-License-Identifier: Apache-2.0
/**
 * A console port bound to a host Unix socket: the back-end listens at the path (created when the
 * device is built, so host programs can connect before the guest boots); one host program at a
 * time is the port's other end (`socat - UNIX-CONNECT:PATH`, `minicom -D unix#PATH`). Bytes the
 * guest writes go to it, bytes it writes go to the guest; its connecting and leaving are the
 * port's host_connected, which the device reports with PORT_OPEN (VIRTIO 1.3 §5.3.6.2).
 *
 * Owns: the listening socket and its file, accepting (a second client is closed at once), reading
 * and writing without blocking on the device's reactor, and a bounded output buffer (bytes the
 * guest writes while nobody is connected, or beyond the buffer, are dropped and counted: a serial
 * line without a listener loses its output too).
 * Uses the injected `UnixStreamOps` (devices never call the OS themselves).
 * Does not own: the port's queues and control messages (model.ts).
 */
import type { HostReactor, HostWatch } from '../../device/contract.js';
import { PendingOutput, acceptPending, drainReadable } from '../stream-io.js';
import type { UnixStreamOps } from '../vsock/host.js';
import { ConsoleConfigError } from './errors.js';
import type { PortHost } from './host.js';

/** Guest output kept while the host program does not read. */
export const MAX_SOCKET_OUTPUT = 1 << 20;

export class SocketPortHost implements PortHost {
  readonly stats = { connections: 0, refused: 0, dropped: 0 };
  readonly #path: string;
  readonly #ops: UnixStreamOps;
  readonly #listenFd: number;
  #client: number | undefined;
  #reactor: HostReactor | undefined;
  #listenWatch: HostWatch | undefined;
  #clientWatch: HostWatch | undefined;
  #onData: ((b: Uint8Array) => void) | undefined;
  #onConnected: ((c: boolean) => void) | undefined;
  readonly #out = new PendingOutput();
  readonly #buf = new Uint8Array(4096);

  /** @throws ConsoleConfigError CONSOLE_HOST_FILE when the socket cannot be created. */
  constructor(path: string, ops: UnixStreamOps) {
    this.#path = path;
    this.#ops = ops;
    try {
      this.#listenFd = ops.listen(path);
    } catch (e: unknown) {
      throw new ConsoleConfigError('CONSOLE_HOST_FILE', `cannot listen on ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  attach(onData: (b: Uint8Array) => void, onConnected: (c: boolean) => void): void {
    this.#onData = onData;
    this.#onConnected = onConnected;
  }

  start(reactor: HostReactor): void {
    this.stop();
    this.#reactor = reactor;
    this.#listenWatch = reactor.watch(this.#listenFd, () => this.#accept());
    if (this.#client !== undefined) this.#watchClient(this.#client);
  }

  stop(): void {
    this.#listenWatch?.close();
    this.#clientWatch?.close();
    this.#listenWatch = undefined;
    this.#clientWatch = undefined;
    this.#reactor = undefined;
  }

  write(bytes: Uint8Array): void {
    if (this.#client === undefined || this.#out.bytes + bytes.length > MAX_SOCKET_OUTPUT) {
      this.stats.dropped += bytes.length;
      return;
    }
    this.#out.push(bytes.slice());
    this.#flush();
  }

  close(): void {
    this.stop();
    this.#drop();
    this.#ops.close(this.#listenFd);
    this.#ops.unlink(this.#path);
  }

  #accept(): void {
    acceptPending(this.#ops, this.#listenFd, (fd) => {
      if (this.#client !== undefined) {
        // One host program per port: a second is turned away.
        this.stats.refused++;
        this.#ops.close(fd);
        return;
      }
      this.stats.connections++;
      this.#client = fd;
      this.#watchClient(fd);
      this.#onConnected?.(true);
    });
  }

  #watchClient(fd: number): void {
    this.#clientWatch = this.#reactor?.watch(fd, (ready) => {
      if (ready.readable || ready.hangup) this.#read();
      if (ready.writable) this.#flush();
    });
    this.#clientWatch?.setWritable(!this.#out.empty);
  }

  #read(): void {
    const fd = this.#client;
    if (fd === undefined) return;
    const end = drainReadable(this.#ops, fd, this.#buf, (chunk) => this.#onData?.(chunk.slice()));
    if (end === 'closed' || end === 'failed') this.#hangup();
  }

  #flush(): void {
    const fd = this.#client;
    if (fd === undefined) return;
    if (!this.#out.flush(this.#ops, fd)) return this.#hangup();
    this.#clientWatch?.setWritable(!this.#out.empty);
  }

  #hangup(): void {
    this.#drop();
    this.#onConnected?.(false);
  }

  #drop(): void {
    this.#clientWatch?.close();
    this.#clientWatch = undefined;
    if (this.#client !== undefined) this.#ops.close(this.#client);
    this.#client = undefined;
    this.stats.dropped += this.#out.clear();
  }
}
