// SPDX-License-Identifier: Apache-2.0
/**
 * The koffi declarations of every libc function AVP calls, and the helpers that turn a -1 return
 * into a `SysError` (retrying EINTR).
 *
 * Owns: loading libc, the C prototypes and their TypeScript signatures, Linux ABI constants shared
 * by several files, native scratch memory.
 * Does not own: any public API. This file is private to `src/sys/`; nothing outside imports it.
 *
 * ABI: Linux LP64, little-endian (x86-64; arm64 has the same struct layouts and flag values except
 * `struct epoll_event`, see epoll.ts). Native structs are read and written through host-order typed
 * arrays (they are native, not wire, data), never through DataView.
 */
import os from 'node:os';
import koffi from 'koffi';
import { SysError, SysUsageError } from './errors.js';

if (process.platform !== 'linux' || os.endianness() !== 'LE' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
  throw new SysUsageError(`src/sys supports Linux on x64 or arm64 only, not ${process.platform}/${process.arch}`);
}

const lib = koffi.load('libc.so.6');

/** What koffi accepts for `void *`: an address, a typed array (its data pointer), or NULL. */
export type Ptr = bigint | ArrayBufferView | null;

/**
 * Declares a libc function with the TypeScript signature `T`.
 * The cast is safe because `T` is written next to the C prototype it mirrors, and koffi converts
 * arguments and the result exactly as that prototype says (int/long → number, void * → bigint|null).
 */
function fn<T>(prototype: string): T {
  return lib.func(prototype) as unknown as T;
}

export const libc = {
  socket: fn<(domain: number, type: number, protocol: number) => number>('int socket(int, int, int)'),
  bind: fn<(fd: number, addr: Ptr, len: number) => number>('int bind(int, const void *, uint32_t)'),
  listen: fn<(fd: number, backlog: number) => number>('int listen(int, int)'),
  accept4: fn<(fd: number, addr: Ptr, len: Ptr, flags: number) => number>('int accept4(int, void *, void *, int)'),
  connect: fn<(fd: number, addr: Ptr, len: number) => number>('int connect(int, const void *, uint32_t)'),
  socketpair: fn<(domain: number, type: number, protocol: number, sv: Ptr) => number>('int socketpair(int, int, int, void *)'),
  shutdown: fn<(fd: number, how: number) => number>('int shutdown(int, int)'),
  getsockopt: fn<(fd: number, level: number, name: number, value: Ptr, len: Ptr) => number>('int getsockopt(int, int, int, void *, void *)'),
  close: fn<(fd: number) => number>('int close(int)'),
  // ssize_t is `long` on LP64.
  recvmsg: fn<(fd: number, msg: Ptr, flags: number) => number>('long recvmsg(int, void *, int)'),
  sendmsg: fn<(fd: number, msg: Ptr, flags: number) => number>('long sendmsg(int, const void *, int)'),
  recv: fn<(fd: number, buf: Ptr, len: number, flags: number) => number>('long recv(int, void *, size_t, int)'),
  send: fn<(fd: number, buf: Ptr, len: number, flags: number) => number>('long send(int, const void *, size_t, int)'),
  read: fn<(fd: number, buf: Ptr, len: number) => number>('long read(int, void *, size_t)'),
  write: fn<(fd: number, buf: Ptr, len: number) => number>('long write(int, const void *, size_t)'),
  // fcntl is variadic: the third argument is passed as a ('int', value) pair, or omitted.
  fcntl: fn<(fd: number, cmd: number, ...arg: [] | ['int', number]) => number>('int fcntl(int, int, ...)'),
  memfd_create: fn<(name: string, flags: number) => number>('int memfd_create(const char *, unsigned int)'),
  ftruncate: fn<(fd: number, length: number) => number>('int ftruncate(int, int64_t)'),
  mmap: fn<(addr: Ptr, length: number, prot: number, flags: number, fd: number, offset: number) => bigint | null>(
    'void *mmap(void *, size_t, int, int, int, int64_t)',
  ),
  munmap: fn<(addr: Ptr, length: number) => number>('int munmap(void *, size_t)'),
  fallocate: fn<(fd: number, mode: number, offset: number, len: number) => number>('int fallocate(int, int, int64_t, int64_t)'),
  eventfd: fn<(initval: number, flags: number) => number>('int eventfd(unsigned int, int)'),
  poll: fn<(fds: Ptr, nfds: number, timeout: number) => number>('int poll(void *, unsigned long, int)'),
  epoll_create1: fn<(flags: number) => number>('int epoll_create1(int)'),
  epoll_ctl: fn<(epfd: number, op: number, fd: number, event: Ptr) => number>('int epoll_ctl(int, int, int, void *)'),
  epoll_wait: fn<(epfd: number, events: Ptr, maxevents: number, timeout: number) => number>(
    'int epoll_wait(int, void *, int, int)',
  ),
};

/** errno values the layer reacts to itself (asm-generic/errno-base.h; same on x64 and arm64). */
export const EINTR = 4;
export const EAGAIN = 11;
export const EBADF = 9;
export const EIO = 5;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ENOENT = 2;

/** fcntl commands and flags (asm-generic/fcntl.h). */
export const F_GETFD = 1;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;

/** The errno of the last koffi call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/**
 * Calls `call` until it returns something other than -1 or fails with an errno other than EINTR;
 * returns the result or throws `SysError(name, errno)`.
 * EINTR means a signal arrived before the call did anything, so repeating it is always correct
 * for the calls routed here (close is not: see fd.ts).
 */
export function retrying(name: string, call: () => number): number {
  for (;;) {
    const r = call();
    if (r !== -1) return r;
    const errno = koffi.errno();
    if (errno !== EINTR) throw new SysError(name, errno);
  }
}

/**
 * Native memory that never moves and is never freed: the home of structs that hold pointers
 * (msghdr, iovec, cmsg), which must not live in a GC-managed buffer. One block per use site,
 * allocated at module load; module instances are per thread, so blocks are never shared between
 * threads, and every user is synchronous, so a block is never used by two calls at once.
 */
export interface NativeBlock {
  readonly address: bigint;
  readonly u64: BigUint64Array;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
}

export function allocNative(bytes: number): NativeBlock {
  // 'uint64_t' elements make the block 8-byte aligned, as msghdr and cmsghdr require.
  const words = Math.ceil(bytes / 8);
  // koffi 3 returns a bigint address from alloc; typed `any` by koffi, so checked here.
  const address: unknown = koffi.alloc('uint64_t', words);
  if (typeof address !== 'bigint') throw new SysUsageError('koffi.alloc did not return a bigint address');
  const buffer = koffi.view(address, words * 8);
  return { address, u64: new BigUint64Array(buffer), i32: new Int32Array(buffer), u8: new Uint8Array(buffer) };
}

/**
 * The address of a typed array's first byte, for structs (iovec) that must hold a pointer to it.
 * Valid only during the synchronous native call that follows, while `view` is an argument of the
 * caller's frame (and so reachable). V8 never moves an ArrayBuffer's backing store; an on-heap
 * typed array is moved off-heap for good the first time its address is taken.
 */
export function addressOf(view: ArrayBufferView): bigint {
  return koffi.address(view);
}

/** Creates an ArrayBuffer over native memory (no copy). See memory.ts for the size limit. */
export function nativeView(address: bigint, length: number): ArrayBuffer {
  return koffi.view(address, length);
}
