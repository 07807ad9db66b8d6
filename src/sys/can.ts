// SPDX-License-Identifier: Apache-2.0
/**
 * SocketCAN raw sockets (Linux Documentation/networking/can.rst, linux/can.h, linux/can/raw.h):
 * the AVP CAN bus's bridge to a host CAN interface (a real controller, or `vcan`).
 *
 * Owns: socket(PF_CAN, SOCK_RAW, CAN_RAW) bound to one interface with CAN FD frames enabled, the
 * `struct can_frame` (16 bytes) and `struct canfd_frame` (72 bytes) layouts, non-blocking reads
 * and writes, and waiting for readability without blocking the event loop (poll(2) runs on
 * libuv's thread pool through koffi's asynchronous call, with a timeout, so a close is noticed).
 * Does not own: the CAN frame model (the platform converts `RawCanFrame` to and from it).
 *
 * Hosts without CAN support fail at socket() with EAFNOSUPPORT; an interface that does not exist
 * fails at SIOCGIFINDEX with ENODEV. Both are SysErrors the caller reports and skips.
 */
import koffi from 'koffi';
import { SysError, SysUsageError } from './errors.js';
import { closeQuiet } from './fd.js';
import { EAGAIN, EINTR, lastErrno, libc } from './libc.js';

const PF_CAN = 29;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const CAN_RAW = 1;
const SOL_CAN_RAW = 101;
const CAN_RAW_FD_FRAMES = 5;
/** SIOCGIFINDEX (linux/sockios.h): interface name → index. */
const SIOCGIFINDEX = 0x8933;
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
/** struct sockaddr_can on LP64: family u16, pad, ifindex i32, then a 16-byte union (8-aligned). */
const SOCKADDR_CAN_SIZE = 24;
/** sizeof(struct can_frame) and sizeof(struct canfd_frame). */
export const CAN_MTU = 16;
export const CANFD_MTU = 72;
const POLLIN = 0x1;

// The casts give koffi's functions their C signatures, written next to them.
const lib = koffi.load('libc.so.6');
const ioctl = lib.func('int ioctl(int, unsigned long, void *)') as unknown as (fd: number, request: number, arg: Uint8Array) => number;
const setsockopt = lib.func('int setsockopt(int, int, int, const void *, uint32_t)') as unknown as (fd: number, level: number, name: number, value: Uint8Array, len: number) => number;
/** poll(2) as an asynchronous call: it blocks a thread-pool thread, never the event loop. */
const pollFn = lib.func('int poll(void *, unsigned long, int)') as unknown as {
  async(fds: Uint8Array, n: number, timeout: number, cb: (err: unknown, res: number) => void): void;
};

/** One frame as the kernel passes it: can_id with its flag bits, length, FD flags, data. */
export interface RawCanFrame {
  /** can_id including CAN_EFF_FLAG 0x80000000, CAN_RTR_FLAG 0x40000000, CAN_ERR_FLAG 0x20000000. */
  readonly canId: number;
  /** struct canfd_frame (true) or struct can_frame. */
  readonly fd: boolean;
  /** canfd_frame.flags: CANFD_BRS 1, CANFD_ESI 2 (FD only). */
  readonly flags: number;
  /** The data bytes (a remote frame's length is `rtrLength`). */
  readonly data: Uint8Array;
  /** can_frame.len of a remote frame (its requested length); 0 otherwise. */
  readonly rtrLength: number;
}

export interface CanRawSocket {
  readonly ifname: string;
  readonly fd: number;
  /** Resolves true once a frame can be read, false after `timeoutMs` or when closed. */
  waitReadable(timeoutMs: number): Promise<boolean>;
  /** The next frame, or null when none is pending. @throws SysError */
  read(): RawCanFrame | null;
  /** Sends a frame; false when the interface's queue is full (ENOBUFS/EAGAIN). @throws SysError */
  write(frame: RawCanFrame): boolean;
  close(): void;
}

/**
 * Opens a raw CAN socket on `ifname`, FD frames enabled, non-blocking and close-on-exec.
 * @throws SysUsageError for a bad name; SysError naming the call (EAFNOSUPPORT: the host kernel has
 * no CAN; ENODEV: no such interface).
 */
export function openCanRaw(ifname: string): CanRawSocket {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new SysUsageError(`CAN interface name ${JSON.stringify(ifname)} must be 1-15 letters, digits, _ . -`);
  const fd = libc.socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
  if (fd < 0) throw new SysError('socket(PF_CAN, SOCK_RAW, CAN_RAW)', lastErrno());
  try {
    const ifr = new Uint8Array(IFREQ_SIZE);
    ifr.set(new TextEncoder().encode(ifname), 0);
    if (ioctl(fd, SIOCGIFINDEX, ifr) !== 0) throw new SysError(`ioctl(SIOCGIFINDEX ${ifname})`, lastErrno());
    const ifindex = new Int32Array(ifr.buffer, IFNAMSIZ, 1)[0] ?? 0;
    const one = new Uint8Array(new Int32Array([1]).buffer);
    // Accept and send CAN FD frames too; a classic-only interface then refuses FD writes (EINVAL).
    if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, one, 4) !== 0) throw new SysError('setsockopt(CAN_RAW_FD_FRAMES)', lastErrno());
    const addr = new Uint8Array(SOCKADDR_CAN_SIZE);
    new Uint16Array(addr.buffer, 0, 1)[0] = PF_CAN;
    new Int32Array(addr.buffer, 4, 1)[0] = ifindex;
    if (libc.bind(fd, addr, SOCKADDR_CAN_SIZE) !== 0) throw new SysError(`bind(${ifname})`, lastErrno());
  } catch (e: unknown) {
    closeQuiet(fd);
    throw e;
  }
  return new RawSocket(ifname, fd);
}

/** Decodes a can_frame or canfd_frame (native byte order: these are host structs). */
export function decodeRawCanFrame(buf: Uint8Array, n: number): RawCanFrame | null {
  if (n !== CAN_MTU && n !== CANFD_MTU) return null;
  const canId = new Uint32Array(buf.buffer, buf.byteOffset, 1)[0] ?? 0;
  const len = buf[4] ?? 0;
  const fd = n === CANFD_MTU;
  const rtr = !fd && (canId & 0x40000000) !== 0;
  const max = fd ? 64 : 8;
  return { canId, fd, flags: fd ? (buf[5] ?? 0) : 0, data: rtr ? new Uint8Array(0) : buf.slice(8, 8 + Math.min(len, max)), rtrLength: rtr ? Math.min(len, 8) : 0 };
}

/** Encodes a frame as the kernel expects it (16 or 72 bytes). */
export function encodeRawCanFrame(f: RawCanFrame): Uint8Array {
  const out = new Uint8Array(f.fd ? CANFD_MTU : CAN_MTU);
  new Uint32Array(out.buffer, 0, 1)[0] = f.canId >>> 0;
  out[4] = (f.canId & 0x40000000) !== 0 && !f.fd ? f.rtrLength : f.data.length;
  if (f.fd) out[5] = f.flags;
  out.set(f.data.subarray(0, f.fd ? 64 : 8), 8);
  return out;
}

class RawSocket implements CanRawSocket {
  readonly ifname: string;
  #fd: number;
  readonly #buf = new Uint8Array(CANFD_MTU);

  constructor(ifname: string, fd: number) {
    this.ifname = ifname;
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.#fd < 0) return Promise.resolve(false);
    // struct pollfd { int fd; short events; short revents; }, kept alive by the closure.
    const pfd = new Uint8Array(8);
    new Int32Array(pfd.buffer, 0, 1)[0] = this.#fd;
    new Int16Array(pfd.buffer, 4, 1)[0] = POLLIN;
    return new Promise((resolve) => {
      pollFn.async(pfd, 1, Math.max(0, Math.floor(timeoutMs)), (err, res) => {
        const revents = new Int16Array(pfd.buffer, 6, 1)[0] ?? 0;
        resolve(err === null || err === undefined ? res > 0 && (revents & POLLIN) !== 0 && this.#fd >= 0 : false);
      });
    });
  }

  read(): RawCanFrame | null {
    if (this.#fd < 0) return null;
    for (;;) {
      const n = libc.read(this.#fd, this.#buf, this.#buf.length);
      if (n >= 0) return decodeRawCanFrame(this.#buf, n);
      const errno = lastErrno();
      if (errno === EAGAIN) return null;
      if (errno !== EINTR) throw new SysError(`read(${this.ifname})`, errno);
    }
  }

  write(frame: RawCanFrame): boolean {
    if (this.#fd < 0) return false;
    const bytes = encodeRawCanFrame(frame);
    for (;;) {
      const n = libc.write(this.#fd, bytes, bytes.length);
      if (n >= 0) return true;
      const errno = lastErrno();
      // ENOBUFS (105): the interface's transmit queue is full; the frame is lost as on a busy bus.
      if (errno === EAGAIN || errno === 105) return false;
      if (errno !== EINTR) throw new SysError(`write(${this.ifname})`, errno);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    closeQuiet(this.#fd);
    this.#fd = -1;
  }
}
