// SPDX-License-Identifier: Apache-2.0
/**
 * The file-system calls a virtio-fs back-end needs, none of which Node's fs offers on directory
 * file descriptors: openat2 with RESOLVE_BENEATH, O_PATH handles, statx, getdents64, renameat2,
 * linkat, symlinkat, readlinkat, mknodat, fchmodat/fchownat/utimensat, lseek, fstatvfs,
 * pread/pwrite straight into (guest) memory, fsync.
 *
 * Owns: the koffi prototypes of these calls (declared here rather than in libc.ts, which other
 * engineers edit, so this file can be reviewed alone), the Linux constants they take, and the
 * decoding of `struct statx`, `struct statvfs` and `linux_dirent64` (LP64: x86-64 and arm64 share
 * these layouts; statx is architecture-independent by design).
 * Does not own: which path may be opened (the caller resolves one component at a time from fds it
 * holds; the kernel's RESOLVE_BENEATH and O_NOFOLLOW enforce that nothing leaves the directory),
 * or the FUSE mapping (devices/fs). Every failure is a `SysError` with the errno name.
 */
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { SysError, SysUsageError } from './errors.js';
import { assertFd } from './fd.js';
import { EINTR, addressOf, allocNative, lastErrno, type Ptr } from './libc.js';

const lib = koffi.load('libc.so.6');

/** As libc.ts' `fn`: the cast is safe because `T` mirrors the prototype beside it. */
function fn<T>(prototype: string): T {
  return lib.func(prototype) as unknown as T;
}

const c = {
  // glibc 2.36 (Debian 12) has no openat2 wrapper: syscall(2) is variadic, arguments typed per call.
  syscall: fn<(nr: number, ...args: unknown[]) => number>('long syscall(long, ...)'),
  openat: fn<(dirfd: number, path: string, flags: number, ...mode: [] | ['uint32_t', number]) => number>('int openat(int, const char *, int, ...)'),
  statx: fn<(dirfd: number, path: string, flags: number, mask: number, buf: Ptr) => number>('int statx(int, const char *, int, unsigned int, void *)'),
  getdents64: fn<(fd: number, buf: Ptr, len: number) => number>('long getdents64(int, void *, size_t)'),
  mkdirat: fn<(dirfd: number, path: string, mode: number) => number>('int mkdirat(int, const char *, uint32_t)'),
  mknodat: fn<(dirfd: number, path: string, mode: number, dev: bigint) => number>('int mknodat(int, const char *, uint32_t, uint64_t)'),
  symlinkat: fn<(target: string, dirfd: number, path: string) => number>('int symlinkat(const char *, int, const char *)'),
  readlinkat: fn<(dirfd: number, path: string, buf: Ptr, len: number) => number>('long readlinkat(int, const char *, void *, size_t)'),
  unlinkat: fn<(dirfd: number, path: string, flags: number) => number>('int unlinkat(int, const char *, int)'),
  renameat2: fn<(olddir: number, oldpath: string, newdir: number, newpath: string, flags: number) => number>('int renameat2(int, const char *, int, const char *, unsigned int)'),
  linkat: fn<(olddir: number, oldpath: string, newdir: number, newpath: string, flags: number) => number>('int linkat(int, const char *, int, const char *, int)'),
  fchmodat: fn<(dirfd: number, path: string, mode: number, flags: number) => number>('int fchmodat(int, const char *, uint32_t, int)'),
  fchownat: fn<(dirfd: number, path: string, uid: number, gid: number, flags: number) => number>('int fchownat(int, const char *, uint32_t, uint32_t, int)'),
  utimensat: fn<(dirfd: number, path: string, times: Ptr, flags: number) => number>('int utimensat(int, const char *, const void *, int)'),
  ftruncate: fn<(fd: number, len: number) => number>('int ftruncate(int, int64_t)'),
  fsync: fn<(fd: number) => number>('int fsync(int)'),
  fdatasync: fn<(fd: number) => number>('int fdatasync(int)'),
  lseek: fn<(fd: number, off: number | bigint, whence: number) => number | bigint>('int64_t lseek(int, int64_t, int)'),
  pread: fn<(fd: number, buf: Ptr, len: number, off: number) => number>('long pread(int, void *, size_t, int64_t)'),
  pwrite: fn<(fd: number, buf: Ptr, len: number, off: number) => number>('long pwrite(int, const void *, size_t, int64_t)'),
  fstatvfs: fn<(fd: number, buf: Ptr) => number>('int fstatvfs(int, void *)'),
  getrlimit: fn<(resource: number, buf: Ptr) => number>('int getrlimit(int, void *)'),
  preadv: fn<(fd: number, iov: Ptr, count: number, off: number) => number>('long preadv(int, void *, int, int64_t)'),
  pwritev: fn<(fd: number, iov: Ptr, count: number, off: number) => number>('long pwritev(int, void *, int, int64_t)'),
};

/** syscall number of openat2 (the same, 437, on x86-64 and arm64: new calls share one table). */
const SYS_openat2 = 437;

/** open(2) flags (asm-generic/fcntl.h; x86-64 and arm64 agree on these). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
/** arm64 uses 0o200000 for O_DIRECTORY and 0o100000 for O_NOFOLLOW; x86-64 the values below. */
export const O_DIRECTORY = process.arch === 'arm64' ? 0o40000 : 0o200000;
export const O_NOFOLLOW = process.arch === 'arm64' ? 0o100000 : 0o400000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4010000;
export const O_PATH = 0o10000000;

/** openat2 `resolve` flags (linux/openat2.h). */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;

/** *at() flags (linux/fcntl.h). */
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EMPTY_PATH = 0x1000;

/** renameat2 flags (linux/fs.h). */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

/** lseek whence (linux/fs.h). */
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** utimensat special nanosecond values (linux/stat.h). */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

/** What statx says about a file (the STATX_BASIC_STATS fields). */
export interface FileStat {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  readonly size: bigint;
  readonly blocks: bigint;
  readonly blksize: number;
  readonly atimeSec: bigint;
  readonly atimeNsec: number;
  readonly mtimeSec: bigint;
  readonly mtimeNsec: number;
  readonly ctimeSec: bigint;
  readonly ctimeNsec: number;
}

/** What fstatvfs says about a file system. */
export interface FsStats {
  readonly bsize: number;
  readonly frsize: number;
  readonly blocks: bigint;
  readonly bfree: bigint;
  readonly bavail: bigint;
  readonly files: bigint;
  readonly ffree: bigint;
  readonly namemax: number;
}

/** One directory entry from getdents64. `off` is the cookie that resumes after this entry. */
export interface DirEntry {
  readonly ino: bigint;
  readonly off: bigint;
  readonly type: number;
  readonly name: Uint8Array;
}

/** Runs `call` until it is not interrupted; -1 becomes `SysError(name, errno)`. */
function check(name: string, call: () => number): number {
  for (;;) {
    const r = call();
    if (r !== -1) return r;
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError(name, errno);
  }
}

/** Path arguments are C strings: a NUL inside would silently shorten them, so it is refused. */
function cpath(p: string): string {
  if (p.includes('\0')) throw new SysUsageError('a path must not contain NUL');
  return p;
}

/**
 * openat2(dirfd, path, { flags, mode, resolve }): the kernel resolves `path` under `dirfd` with
 * the `resolve` restrictions (RESOLVE_BENEATH: no `..` above dirfd, no absolute paths or symlinks
 * leading out; failures are EXDEV or ELOOP). O_CLOEXEC is always added. Returns the new fd.
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  assertFd(dirfd, 'dirfd');
  const how = new BigUint64Array([BigInt(flags | O_CLOEXEC), BigInt(mode), BigInt(resolve)]);
  return check('openat2', () => c.syscall(SYS_openat2, 'int', dirfd, 'str', cpath(path), 'void *', how, 'size_t', 24));
}

/** openat(dirfd, path, flags | O_CLOEXEC[, mode]). Used on /proc/self/fd entries (see devices/fs). */
export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  if (dirfd !== AT_FDCWD) assertFd(dirfd, 'dirfd');
  return check('openat', () => c.openat(dirfd, cpath(path), flags | O_CLOEXEC, 'uint32_t', mode));
}

const STATX_BASIC_STATS = 0x7ff;
const statxBuf = new Uint8Array(256);
const statxView = new DataView(statxBuf.buffer);

/** statx(dirfd, path, flags): with `path` '' and AT_EMPTY_PATH, the file `dirfd` itself (O_PATH fds too). */
export function statx(dirfd: number, path: string, flags: number): FileStat {
  if (dirfd !== AT_FDCWD) assertFd(dirfd, 'dirfd');
  check('statx', () => c.statx(dirfd, cpath(path), flags, STATX_BASIC_STATS, statxBuf));
  const v = statxView;
  // st_dev as the kernel's new_encode_dev would: only used as a key, so any injective form works.
  const dev = (BigInt(v.getUint32(136, true)) << 32n) | BigInt(v.getUint32(140, true));
  return {
    dev,
    ino: v.getBigUint64(32, true),
    mode: v.getUint16(28, true),
    nlink: v.getUint32(16, true),
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    rdevMajor: v.getUint32(128, true),
    rdevMinor: v.getUint32(132, true),
    size: v.getBigUint64(40, true),
    blocks: v.getBigUint64(48, true),
    blksize: v.getUint32(4, true),
    // struct statx_timestamp { s64 tv_sec; u32 tv_nsec; }: stx_atime at 64, ctime at 96, mtime at 112.
    atimeSec: v.getBigInt64(64, true),
    atimeNsec: v.getUint32(72, true),
    mtimeSec: v.getBigInt64(112, true),
    mtimeNsec: v.getUint32(120, true),
    ctimeSec: v.getBigInt64(96, true),
    ctimeNsec: v.getUint32(104, true),
  };
}

/** statx of the file `fd` refers to, not following a symlink it names (O_PATH|O_NOFOLLOW fds). */
export function fstatAt(fd: number): FileStat {
  return statx(fd, '', AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

/** Bytes of native scratch for getdents64; the caller asks for at most this much per call. */
export const GETDENTS_MAX = 65536;
const dentsBuf = new Uint8Array(GETDENTS_MAX);
const dentsView = new DataView(dentsBuf.buffer);

/** Reads directory entries of `fd` from its current position, at most `maxBytes` of records. */
export function getdents64(fd: number, maxBytes = GETDENTS_MAX): DirEntry[] {
  assertFd(fd);
  const n = check('getdents64', () => c.getdents64(fd, dentsBuf, Math.min(maxBytes, GETDENTS_MAX)));
  const out: DirEntry[] = [];
  for (let at = 0; at + 19 <= n; ) {
    const reclen = dentsView.getUint16(at + 16, true);
    if (reclen < 20 || at + reclen > n) break; // the kernel never does this; stop rather than loop
    const nameStart = at + 19;
    let end = nameStart;
    while (end < at + reclen && dentsBuf[end] !== 0) end++;
    out.push({ ino: dentsView.getBigUint64(at, true), off: dentsView.getBigInt64(at + 8, true), type: dentsBuf[at + 18] ?? 0, name: dentsBuf.slice(nameStart, end) });
    at += reclen;
  }
  return out;
}

export function mkdirat(dirfd: number, name: string, mode: number): void {
  check('mkdirat', () => c.mkdirat(dirfd, cpath(name), mode));
}

export function mknodat(dirfd: number, name: string, mode: number, dev: bigint): void {
  check('mknodat', () => c.mknodat(dirfd, cpath(name), mode, dev));
}

/** symlinkat(target, dirfd, name). Strings reach libc as UTF-8 (koffi's `const char *`). */
export function symlinkat(target: string, dirfd: number, name: string): void {
  check('symlinkat', () => c.symlinkat(cpath(target), dirfd, cpath(name)));
}

const linkBuf = new Uint8Array(4096);

/** The target of the symlink `fd` (O_PATH|O_NOFOLLOW) names, with `path` ''; at most 4095 bytes. */
export function readlinkat(dirfd: number, path: string): Uint8Array {
  const n = check('readlinkat', () => c.readlinkat(dirfd, cpath(path), linkBuf, linkBuf.length));
  return linkBuf.slice(0, n);
}

export function unlinkat(dirfd: number, name: string, flags: number): void {
  check('unlinkat', () => c.unlinkat(dirfd, cpath(name), flags));
}

export function renameat2(olddir: number, oldname: string, newdir: number, newname: string, flags: number): void {
  check('renameat2', () => c.renameat2(olddir, cpath(oldname), newdir, cpath(newname), flags));
}

export function linkat(olddir: number, oldpath: string, newdir: number, newname: string, flags: number): void {
  check('linkat', () => c.linkat(olddir, cpath(oldpath), newdir, cpath(newname), flags));
}

export function fchmodat(dirfd: number, path: string, mode: number, flags: number): void {
  check('fchmodat', () => c.fchmodat(dirfd, cpath(path), mode, flags));
}

export function fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): void {
  check('fchownat', () => c.fchownat(dirfd, cpath(path), uid, gid, flags));
}

/** utimensat with `[sec, nsec]` pairs; nsec may be UTIME_NOW or UTIME_OMIT. */
export function utimensat(dirfd: number, path: string, atime: readonly [bigint, number], mtime: readonly [bigint, number], flags: number): void {
  const times = new BigInt64Array([atime[0], BigInt(atime[1]), mtime[0], BigInt(mtime[1])]);
  check('utimensat', () => c.utimensat(dirfd, cpath(path), times, flags));
}

export function ftruncate(fd: number, length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new SysUsageError(`ftruncate length ${length}`);
  check('ftruncate', () => c.ftruncate(fd, length));
}

export function fsync(fd: number, dataOnly = false): void {
  check(dataOnly ? 'fdatasync' : 'fsync', () => (dataOnly ? c.fdatasync(fd) : c.fsync(fd)));
}

/**
 * lseek(fd, offset, whence); returns the new offset (SEEK_DATA/SEEK_HOLE: ENXIO past the end).
 * `offset` may be a bigint: directory cookies (ext4 hashes) use all 63 bits.
 */
export function lseek(fd: number, offset: number | bigint, whence: number): number {
  if (typeof offset === 'number' && !Number.isSafeInteger(offset)) throw new SysUsageError(`lseek offset ${offset}`);
  // koffi returns int64_t as a number when it is safe, else a bigint; -1 is always a number.
  for (;;) {
    const r = c.lseek(fd, offset, whence);
    if (r !== -1) return Number(r);
    const errno = lastErrno();
    if (errno !== EINTR) throw new SysError('lseek', errno);
  }
}

/** pread into `buf` (which may be a view of guest memory); returns the bytes read (0 at EOF). */
export function pread(fd: number, buf: Uint8Array, offset: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new SysUsageError(`pread offset ${offset}`);
  return check('pread', () => c.pread(fd, buf, buf.byteLength, offset));
}

/** pwrite from `buf`; returns the bytes written. */
export function pwrite(fd: number, buf: Uint8Array, offset: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new SysUsageError(`pwrite offset ${offset}`);
  return check('pwrite', () => c.pwrite(fd, buf, buf.byteLength, offset));
}

/** IOV_MAX on Linux: the most iovecs one preadv/pwritev takes; longer lists take several calls. */
const IOV_MAX = 1024;
/** iovec { void *iov_base; size_t iov_len; } x IOV_MAX, in native memory (it holds pointers). */
const iovBlock = allocNative(IOV_MAX * 16);

/**
 * preadv/pwritev over `bufs` (views of guest memory, typically one per page of a FUSE READ or
 * WRITE) at `offset`: one system call per IOV_MAX buffers instead of one per buffer. Stops at a
 * short transfer (end of file). Returns the bytes moved. `bufs` stay reachable as arguments
 * during the call, so their addresses in the iovecs stay valid (libc.ts addressOf).
 */
function vectored(name: 'preadv' | 'pwritev', fd: number, bufs: readonly Uint8Array[], offset: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new SysUsageError(`${name} offset ${offset}`);
  const call = name === 'preadv' ? c.preadv : c.pwritev;
  let done = 0;
  for (let i = 0; i < bufs.length; ) {
    const n = Math.min(IOV_MAX, bufs.length - i);
    let want = 0;
    for (let j = 0; j < n; j++) {
      // Safe: i + j < bufs.length by the loop bounds.
      const b = bufs[i + j]!;
      iovBlock.u64[2 * j] = b.byteLength === 0 ? 0n : addressOf(b);
      iovBlock.u64[2 * j + 1] = BigInt(b.byteLength);
      want += b.byteLength;
    }
    const at = offset + done;
    const got = check(name, () => call(fd, iovBlock.address, n, at));
    done += got;
    if (got < want) break;
    i += n;
  }
  return done;
}

/** preadv into `bufs` at `offset`; returns the bytes read (short at end of file). */
export function preadv(fd: number, bufs: readonly Uint8Array[], offset: number): number {
  return vectored('preadv', fd, bufs, offset);
}

/** pwritev from `bufs` at `offset`; returns the bytes written. */
export function pwritev(fd: number, bufs: readonly Uint8Array[], offset: number): number {
  return vectored('pwritev', fd, bufs, offset);
}

const vfsBuf = new Uint8Array(112);
const vfsView = new DataView(vfsBuf.buffer);

/** fstatvfs(fd) (works on O_PATH fds). glibc's struct statvfs on LP64: 11 longs, then spare ints. */
export function fstatvfs(fd: number): FsStats {
  check('fstatvfs', () => c.fstatvfs(fd, vfsBuf));
  const u = (i: number): bigint => vfsView.getBigUint64(i * 8, true);
  return { bsize: Number(u(0)), frsize: Number(u(1)), blocks: u(2), bfree: u(3), bavail: u(4), files: u(5), ffree: u(6), namemax: Number(u(10)) };
}

/**
 * The process' umask, read from /proc/self/status (`Umask:` line, Linux 4.7+) so that reading it
 * does not change it (umask(2) can only set). @throws SysUsageError when the line is missing.
 */
export function umask(): number {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m === null || m[1] === undefined) throw new SysUsageError('/proc/self/status has no Umask line');
  return Number.parseInt(m[1], 8);
}

const RLIMIT_NOFILE = 7;
const rlimitBuf = new BigUint64Array(2);

/** The soft limit on open file descriptors (RLIMIT_NOFILE), capped at 2^31. */
export function openFileLimit(): number {
  check('getrlimit', () => c.getrlimit(RLIMIT_NOFILE, rlimitBuf));
  const soft = rlimitBuf[0] ?? 0n;
  return soft > 0x7fff_ffffn ? 0x7fff_ffff : Number(soft);
}

// The other calls a virtio-fs host needs, so that this module alone satisfies its FsSyscalls.
export { close } from './fd.js';
export { fallocate } from './file.js';
