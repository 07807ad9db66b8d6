// SPDX-License-Identifier: Apache-2.0
/**
 * TAP devices (Linux tun/tap driver, Documentation/networking/tuntap.rst): the virtio-net switch's
 * uplink to the host's network stack.
 *
 * Owns: opening /dev/net/tun, attaching it to a TAP interface with TUNSETIFF (IFF_TAP | IFF_NO_PI:
 * plain Ethernet frames, no packet-information prefix, no virtio-net header), and non-blocking
 * frame reads and writes with EAGAIN reported as "nothing" / "queue full".
 * Does not own: bringing the interface up or giving it addresses (the administrator, `ip link set
 * NAME up`), or forwarding (devices/net).
 *
 * TUNSETIFF creates the interface when it does not exist, which needs CAP_NET_ADMIN; an interface
 * created beforehand with `ip tuntap add dev NAME mode tap user USER` can be attached by USER
 * without privileges. A TAP the switch created disappears when its fd is closed (it is not made
 * persistent).
 *
 * ioctl is declared here rather than in libc.ts so that this capability stays one file; it is the
 * only caller.
 */
import { constants, openSync } from 'node:fs';
import koffi from 'koffi';
import { SysError, SysUsageError, errnoNumber } from './errors.js';
import { closeQuiet } from './fd.js';
import { EAGAIN, EINTR, EIO, lastErrno, libc } from './libc.js';

/** _IOW('T', 202, int) (linux/if_tun.h). */
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
/** Interface names are at most 15 bytes plus NUL (IFNAMSIZ). */
const IFNAMSIZ = 16;
/** struct ifreq is 40 bytes on LP64: name[16], then a union whose first member here is short flags. */
const IFREQ_SIZE = 40;

/**
 * The cast gives koffi's function its C signature, written next to it: int → number, a
 * typed array for `void *`.
 */
const ioctl = koffi.load('libc.so.6').func('int ioctl(int, unsigned long, void *)') as unknown as (fd: number, request: number, arg: Uint8Array) => number;

/** An open TAP device: the shape devices/net's `NetUplink` expects. */
export interface TapDevice {
  readonly name: string;
  readonly fd: number;
  read(buf: Uint8Array): number;
  write(frame: Uint8Array): boolean;
  close(): void;
}

/**
 * Opens (creating if needed) the TAP interface `name`, non-blocking and close-on-exec.
 * @throws SysUsageError for a bad name; SysError naming the call (ENOENT: no /dev/net/tun;
 * EPERM: creating an interface needs CAP_NET_ADMIN; EBUSY: another process has it open).
 */
export function openTap(name: string): TapDevice {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new SysUsageError(`TAP name ${JSON.stringify(name)} must be 1-15 letters, digits, _ . -`);
  let fd: number;
  try {
    // Node opens with O_CLOEXEC.
    fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (e: unknown) {
    // node:fs throws ErrnoExceptions; the cast only reads their optional `code`.
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new SysError('open(/dev/net/tun)', errnoNumberOr(code, EIO));
  }
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name), 0);
  const flags = IFF_TAP | IFF_NO_PI;
  ifr[IFNAMSIZ] = flags & 0xff;
  ifr[IFNAMSIZ + 1] = flags >> 8;
  for (;;) {
    if (ioctl(fd, TUNSETIFF, ifr) === 0) break;
    const errno = lastErrno();
    if (errno === EINTR) continue;
    closeQuiet(fd);
    throw new SysError(`ioctl(TUNSETIFF ${name})`, errno);
  }
  const end = ifr.indexOf(0);
  const actual = new TextDecoder().decode(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end));
  return new Tap(actual, fd);
}

function errnoNumberOr(code: string, fallback: number): number {
  try {
    return errnoNumber(code);
  } catch {
    return fallback;
  }
}

class Tap implements TapDevice {
  readonly name: string;
  #fd: number;

  constructor(name: string, fd: number) {
    this.name = name;
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  /** One frame into `buf` (cut to its length); 0 when none is pending. @throws SysError */
  read(buf: Uint8Array): number {
    for (;;) {
      const n = libc.read(this.#fd, buf, buf.length);
      if (n >= 0) return n;
      const errno = lastErrno();
      if (errno === EAGAIN) return 0;
      if (errno !== EINTR) throw new SysError('read(tap)', errno);
    }
  }

  /**
   * Sends one frame. False when the kernel would block (queue full) or the interface is down
   * (EIO: tun refuses frames while the host side is not up); the frame is then lost, as on a wire.
   * @throws SysError for other failures.
   */
  write(frame: Uint8Array): boolean {
    for (;;) {
      const n = libc.write(this.#fd, frame, frame.length);
      if (n >= 0) return true;
      const errno = lastErrno();
      if (errno === EAGAIN || errno === EIO) return false;
      if (errno !== EINTR) throw new SysError('write(tap)', errno);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    closeQuiet(this.#fd);
    this.#fd = -1;
  }
}
