// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of virtio-fs, as interfaces: `FsHost`, the file operations the FUSE session
 * performs on nodes and open files, and `FsSyscalls`, the native calls the real host
 * (native-host.ts) is built on, which sys/fs.ts provides and the composition root injects
 * (HostCapabilities.fsSyscalls, see kind.ts).
 *
 * Node and file handles are opaque numbers owned by the host (the native host: O_PATH fds and
 * open fds). A directory's open file may stand in for its node as the `dir` of `lookup`. Names are single path components; the host must never resolve more than one, and
 * must never follow a symlink: the guest's kernel follows symlinks itself, by asking again.
 * Every method throws an error with a numeric Linux `errno` (errors.ts `errnoOf`) on failure.
 * Does not own: FUSE (session.ts), native calls (sys/).
 */

/** An opaque host node (a file, directory, symlink, ...). */
export type HostNode = number;
/** An opaque open file or directory. */
export type HostFile = number;

/** The attributes of a node, as statx reports them. */
export interface HostStat {
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

export interface HostStatfs {
  readonly bsize: number;
  readonly frsize: number;
  readonly blocks: bigint;
  readonly bfree: bigint;
  readonly bavail: bigint;
  readonly files: bigint;
  readonly ffree: bigint;
  readonly namemax: number;
}

export interface HostDirEntry {
  readonly ino: bigint;
  /** Cookie that resumes reading after this entry. */
  readonly off: bigint;
  /** DT_* type. */
  readonly type: number;
  readonly name: Uint8Array;
}

/** SETATTR changes; absent fields stay. Times are [seconds, nanoseconds] or 'now'. */
export interface HostSetattr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: readonly [bigint, number] | 'now';
  mtime?: readonly [bigint, number] | 'now';
}

export interface FsHost {
  /** The shared directory itself. */
  readonly root: HostNode;
  /** The entry `name` of directory `dir`, not following a symlink. ENOENT, ENOTDIR, EXDEV, ELOOP. */
  lookup(dir: HostNode, name: string): HostNode;
  /** Releases a node from lookup (the root is never released). */
  release(node: HostNode): void;
  stat(node: HostNode): HostStat;
  /** Opens a regular file (open(2) flags; never O_CREAT). */
  open(node: HostNode, flags: number): HostFile;
  openDir(node: HostNode): HostFile;
  close(file: HostFile): void;
  /** Reads at `offset` into `dst` in order; returns the bytes read (short at end of file). */
  read(file: HostFile, offset: number, dst: readonly Uint8Array[]): number;
  /** Writes `src` at `offset`; returns the bytes written. */
  write(file: HostFile, offset: number, src: readonly Uint8Array[]): number;
  /** Entries after cookie `offset` (0: from the start), at most about `maxBytes` of them. */
  readDir(dir: HostFile, offset: bigint, maxBytes: number): HostDirEntry[];
  /**
   * Creates and opens a regular file with exactly `mode` (whatever the host process' umask), or
   * opens the regular file already there (EEXIST with O_EXCL in `flags`). Anything else already at
   * the name (a directory, FIFO, device node, symlink) is refused and never opened.
   */
  create(dir: HostNode, name: string, flags: number, mode: number): { node: HostNode; file: HostFile };
  /** Creates a directory with exactly `mode` and returns its node (as a lookup would). */
  mkdir(dir: HostNode, name: string, mode: number): HostNode;
  /** Creates a regular file, FIFO, socket or device node with exactly `mode`; returns its node. */
  mknod(dir: HostNode, name: string, mode: number, rdev: number): HostNode;
  /** Creates a symlink holding `target` (never resolved) and returns its node. */
  symlink(dir: HostNode, name: string, target: string): HostNode;
  /** A new name `name` in `dir` for `node` (a hard link to the node itself, never a symlink's target). */
  link(node: HostNode, dir: HostNode, name: string): void;
  unlink(dir: HostNode, name: string): void;
  rmdir(dir: HostNode, name: string): void;
  rename(oldDir: HostNode, oldName: string, newDir: HostNode, newName: string, flags: number): void;
  readlink(node: HostNode): Uint8Array;
  setattr(node: HostNode, file: HostFile | undefined, changes: HostSetattr): void;
  statfs(node: HostNode): HostStatfs;
  fsync(file: HostFile, dataOnly: boolean): void;
  fallocate(file: HostFile, mode: number, offset: number, length: number): void;
  lseek(file: HostFile, offset: number, whence: number): number;
  /** Releases everything (the device is disposed). */
  dispose(): void;
}

/**
 * The native calls the real host needs (sys/fs.ts implements them with these names). They throw
 * sys' `SysError`, whose `errno` is the Linux errno.
 */
export interface FsSyscalls {
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  openat(dirfd: number, path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  fstatAt(fd: number): HostStat;
  getdents64(fd: number, maxBytes?: number): HostDirEntry[];
  mkdirat(dirfd: number, name: string, mode: number): void;
  mknodat(dirfd: number, name: string, mode: number, dev: bigint): void;
  symlinkat(target: string, dirfd: number, name: string): void;
  readlinkat(dirfd: number, path: string): Uint8Array;
  unlinkat(dirfd: number, name: string, flags: number): void;
  renameat2(olddir: number, oldname: string, newdir: number, newname: string, flags: number): void;
  linkat(olddir: number, oldpath: string, newdir: number, newname: string, flags: number): void;
  fchmodat(dirfd: number, path: string, mode: number, flags: number): void;
  fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): void;
  utimensat(dirfd: number, path: string, atime: readonly [bigint, number], mtime: readonly [bigint, number], flags: number): void;
  ftruncate(fd: number, length: number): void;
  fsync(fd: number, dataOnly?: boolean): void;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  lseek(fd: number, offset: number | bigint, whence: number): number;
  pread(fd: number, buf: Uint8Array, offset: number): number;
  pwrite(fd: number, buf: Uint8Array, offset: number): number;
  /** One system call for many buffers (a READ's pages); short at end of file. */
  preadv(fd: number, bufs: readonly Uint8Array[], offset: number): number;
  pwritev(fd: number, bufs: readonly Uint8Array[], offset: number): number;
  fstatvfs(fd: number): HostStatfs;
  /** The process' file-mode creation mask (read, not changed). */
  umask(): number;
  /** The soft limit on open file descriptors. */
  openFileLimit(): number;
}
