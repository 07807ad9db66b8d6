// SPDX-License-Identifier: Apache-2.0
/**
 * The real virtio-fs host: a shared directory served through O_PATH file descriptors, on the
 * native calls of sys/fs.ts (injected as `FsSyscalls`).
 *
 * How nothing outside the directory is reachable — the kernel enforces it, not string checks:
 * - every node is an O_PATH fd; a lookup opens exactly one component under its parent's fd with
 *   openat2(O_PATH | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS).
 *   `..` (and anything else leaving the parent) fails with EXDEV, a symlink is returned as the
 *   symlink itself and never followed, whatever is swapped in at the moment of the call;
 * - files are created with openat2 under the parent fd with the same resolve flags, so a symlink
 *   planted at the name is refused (ELOOP) rather than followed;
 * - an open (read/write) fd is made from a node's own O_PATH fd through /proc/self/fd/N, which
 *   reaches exactly the inode the node already is (as virtiofsd does), never a path;
 * - directory operations (*at calls) take a single name relative to a directory fd.
 * Does not own: FUSE (session.ts), or which requests read-only mode refuses (session.ts).
 */
import { EACCES, EEXIST, EINVAL, EISDIR, ENOENT, EXDEV, S_IFDIR, S_IFMT, S_IFREG } from './spec.js';
import { errnoOf, FsConfigError, FsErrnoError } from './errors.js';
import type { FsHost, FsSyscalls, HostDirEntry, HostFile, HostNode, HostSetattr, HostStat, HostStatfs } from './host.js';

/** Linux flag values (asm-generic; arm64 differs only for O_DIRECTORY and O_NOFOLLOW). */
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_DIRECTORY = process.arch === 'arm64' ? 0o40000 : 0o200000;
const O_NOFOLLOW = process.arch === 'arm64' ? 0o100000 : 0o400000;
const O_PATH = 0o10000000;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
const RESOLVE_ONE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
const SEEK_SET = 0;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

export class NativeFsHost implements FsHost {
  readonly root: HostNode;
  readonly #sys: FsSyscalls;
  readonly #procFd: number;
  readonly #umask: number;

  /** @throws FsConfigError FS_BAD_OPTION when `dir` is not a directory that can be opened. */
  constructor(sys: FsSyscalls, dir: string) {
    this.#sys = sys;
    this.#umask = sys.umask();
    try {
      this.root = sys.openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
    } catch (e: unknown) {
      throw new FsConfigError('FS_BAD_OPTION', `--shared-dir ${dir}: cannot open the directory (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    try {
      this.#procFd = sys.openat(AT_FDCWD, '/proc/self/fd', O_PATH | O_DIRECTORY);
    } catch (e: unknown) {
      sys.close(this.root);
      throw new FsConfigError('FS_BAD_OPTION', `cannot open /proc/self/fd, needed to reopen O_PATH nodes (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
  }

  lookup(dir: HostNode, name: string): HostNode {
    try {
      return this.#sys.openat2(dir, name, O_PATH | O_NOFOLLOW, 0, RESOLVE_ONE);
    } catch (e: unknown) {
      // EXDEV: the name leads out of the parent (`..`); the guest gets "permission denied".
      if (errnoOf(e) === EXDEV) throw new FsErrnoError(EACCES, `lookup ${JSON.stringify(name)} leaves the directory`);
      throw e;
    }
  }

  release(node: HostNode): void {
    if (node !== this.root) this.#sys.close(node);
  }

  stat(node: HostNode): HostStat {
    return this.#sys.fstatAt(node);
  }

  /** An fd for `node`'s own inode, through its O_PATH fd's /proc/self/fd entry. */
  #reopen(node: HostNode, flags: number): number {
    return this.#sys.openat(this.#procFd, String(node), flags & ~(O_CREAT | O_NOFOLLOW));
  }

  open(node: HostNode, flags: number): HostFile {
    return this.#reopen(node, flags);
  }

  openDir(node: HostNode): HostFile {
    return this.#reopen(node, O_RDONLY | O_DIRECTORY);
  }

  close(file: HostFile): void {
    this.#sys.close(file);
  }

  read(file: HostFile, offset: number, dst: readonly Uint8Array[]): number {
    // One segment (a big buffer) is one pread; a READ's page list is one preadv.
    const [only] = dst;
    return dst.length === 1 && only !== undefined ? this.#sys.pread(file, only, offset) : this.#sys.preadv(file, dst, offset);
  }

  write(file: HostFile, offset: number, src: readonly Uint8Array[]): number {
    const [only] = src;
    return src.length === 1 && only !== undefined ? this.#sys.pwrite(file, only, offset) : this.#sys.pwritev(file, src, offset);
  }

  readDir(dir: HostFile, offset: bigint, maxBytes: number): HostDirEntry[] {
    this.#sys.lseek(dir, offset, SEEK_SET);
    return this.#sys.getdents64(dir, maxBytes);
  }

  create(dir: HostNode, name: string, flags: number, mode: number): { node: HostNode; file: HostFile } {
    const sys = this.#sys;
    let file: number;
    try {
      // O_EXCL first: only a file this call creates is opened through the name. RESOLVE_ONE
      // refuses a symlink planted at the name (ELOOP) instead of following it.
      file = sys.openat2(dir, name, (flags & ~O_NOFOLLOW) | O_CREAT | O_EXCL, mode, RESOLVE_ONE);
    } catch (e: unknown) {
      if (errnoOf(e) !== EEXIST || (flags & O_EXCL) !== 0) throw e;
      return this.#openExisting(dir, name, flags);
    }
    try {
      const node = this.#reopen(file, O_PATH);
      this.#fixMode(node, mode);
      return { node, file };
    } catch (e: unknown) {
      sys.close(file);
      throw e;
    }
  }

  /**
   * CREATE of a name that exists: the entry is looked up as a node first (O_PATH, not followed,
   * nothing opened), and only a regular file is then opened, through that node. Opening a FIFO
   * would block the back-end, a device node would give the guest a host device.
   */
  #openExisting(dir: HostNode, name: string, flags: number): { node: HostNode; file: HostFile } {
    const node = this.lookup(dir, name);
    try {
      const type = this.stat(node).mode & S_IFMT;
      if (type !== S_IFREG) throw new FsErrnoError(type === S_IFDIR ? EISDIR : EEXIST, `CREATE of ${JSON.stringify(name)}, which exists and is not a regular file`);
      return { node, file: this.#reopen(node, flags & ~O_EXCL) };
    } catch (e: unknown) {
      this.#sys.close(node);
      throw e;
    }
  }

  /**
   * Gives a node just created exactly the mode the guest asked for: the guest's kernel has applied
   * the guest's umask already (no FUSE_DONT_MASK), the host applied the process' umask again.
   * Changes the inode through its own node, never through the name (which may have been swapped).
   */
  #fixMode(node: HostNode, mode: number): void {
    if ((mode & this.#umask) === 0) return;
    this.#sys.fchmodat(this.#procFd, String(node), mode & 0o7777, 0);
  }

  /** The node at `name` just created, with its mode fixed when it has the type created. */
  #created(dir: HostNode, name: string, mode: number): HostNode {
    const node = this.lookup(dir, name);
    if ((mode & this.#umask) === 0) return node; // the umask took nothing away: no statx needed
    try {
      if ((this.stat(node).mode & S_IFMT) === (mode & S_IFMT)) this.#fixMode(node, mode);
      return node;
    } catch (e: unknown) {
      this.#sys.close(node);
      throw e;
    }
  }

  mkdir(dir: HostNode, name: string, mode: number): HostNode {
    this.#sys.mkdirat(dir, name, mode & 0o7777);
    return this.#created(dir, name, S_IFDIR | (mode & 0o7777));
  }

  mknod(dir: HostNode, name: string, mode: number, rdev: number): HostNode {
    this.#sys.mknodat(dir, name, mode, BigInt(rdev));
    return this.#created(dir, name, mode);
  }

  symlink(dir: HostNode, name: string, target: string): HostNode {
    this.#sys.symlinkat(target, dir, name);
    return this.lookup(dir, name);
  }

  link(node: HostNode, dir: HostNode, name: string): void {
    // AT_EMPTY_PATH links the inode the O_PATH fd is (a symlink stays a symlink); it needs
    // CAP_DAC_READ_SEARCH. Without it (ENOENT), only regular files are linked, through /proc.
    try {
      this.#sys.linkat(node, '', dir, name, AT_EMPTY_PATH);
    } catch (e: unknown) {
      if (errnoOf(e) !== ENOENT || (this.stat(node).mode & S_IFMT) !== S_IFREG) throw e;
      this.#sys.linkat(this.#procFd, String(node), dir, name, 0x400 /* AT_SYMLINK_FOLLOW: the magic link */);
    }
  }

  unlink(dir: HostNode, name: string): void {
    this.#sys.unlinkat(dir, name, 0);
  }

  rmdir(dir: HostNode, name: string): void {
    this.#sys.unlinkat(dir, name, AT_REMOVEDIR);
  }

  rename(oldDir: HostNode, oldName: string, newDir: HostNode, newName: string, flags: number): void {
    this.#sys.renameat2(oldDir, oldName, newDir, newName, flags);
  }

  readlink(node: HostNode): Uint8Array {
    return this.#sys.readlinkat(node, '');
  }

  setattr(node: HostNode, file: HostFile | undefined, ch: HostSetattr): void {
    const sys = this.#sys;
    if (ch.mode !== undefined) sys.fchmodat(this.#procFd, String(node), ch.mode & 0o7777, 0);
    if (ch.uid !== undefined || ch.gid !== undefined) sys.fchownat(node, '', ch.uid ?? 0xffff_ffff, ch.gid ?? 0xffff_ffff, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (ch.size !== undefined) {
      // Only a truncate needs the type (a chmod, chown or touch does not: one statx fewer).
      const type = this.stat(node).mode & S_IFMT;
      if (type === S_IFDIR) throw new FsErrnoError(EISDIR, 'truncate of a directory');
      if (type !== S_IFREG) throw new FsErrnoError(EINVAL, 'truncate of a special file');
      if (file !== undefined) sys.ftruncate(file, ch.size);
      else {
        const fd = this.#reopen(node, O_WRONLY);
        try {
          sys.ftruncate(fd, ch.size);
        } finally {
          sys.close(fd);
        }
      }
    }
    if (ch.atime !== undefined || ch.mtime !== undefined) {
      const t = (x: HostSetattr['atime']): readonly [bigint, number] => (x === undefined ? [0n, UTIME_OMIT] : x === 'now' ? [0n, UTIME_NOW] : x);
      sys.utimensat(this.#procFd, String(node), t(ch.atime), t(ch.mtime), 0);
    }
  }

  statfs(node: HostNode): HostStatfs {
    return this.#sys.fstatvfs(node);
  }

  fsync(file: HostFile, dataOnly: boolean): void {
    this.#sys.fsync(file, dataOnly);
  }

  fallocate(file: HostFile, mode: number, offset: number, length: number): void {
    this.#sys.fallocate(file, mode, offset, length);
  }

  lseek(file: HostFile, offset: number, whence: number): number {
    return this.#sys.lseek(file, offset, whence);
  }

  dispose(): void {
    this.#sys.close(this.#procFd);
    this.#sys.close(this.root);
  }
}
