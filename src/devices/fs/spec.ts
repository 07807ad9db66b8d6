// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-fs (VIRTIO 1.3 §5.11, "File System Device") and the FUSE wire format it carries
 * (Linux include/uapi/linux/fuse.h, protocol 7.31+; names spelled as there).
 *
 * Owns: the device ID, queue layout and config layout; FUSE opcodes, INIT flags, FATTR bits, the
 * errno values replies carry (Linux numbers: the guest is Linux whatever the host is), and the
 * sizes and field offsets of every struct the device reads or writes. Encoding helpers write into a
 * DataView at explicit little-endian offsets (virtio-fs is little-endian, §5.11.6).
 * Does not own: request semantics (model.ts, ops.ts) or the host (host.ts).
 */

export const FS_DEVICE_ID = 26;
/** Queue 0 is hiprio (FORGET, BATCH_FORGET, INTERRUPT); request queues follow (no NOTIFICATION). */
export const FS_HIPRIO_QUEUE = 0;
export const FS_FIRST_REQUEST_QUEUE = 1;
export const FS_QUEUE_MAX_SIZE = 1024;
/** `tag char[36] @0`, `num_request_queues le32 @36` (§5.11.4). */
export const FS_TAG_BYTES = 36;
export const FS_CONFIG_SIZE = 40;

export const FUSE_KERNEL_VERSION = 7;
/** The minor version this server speaks; struct sizes below are those of 7.31 and later. */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1n;

/** Opcodes (enum fuse_opcode). */
export const FUSE_LOOKUP = 1;
export const FUSE_FORGET = 2;
export const FUSE_GETATTR = 3;
export const FUSE_SETATTR = 4;
export const FUSE_READLINK = 5;
export const FUSE_SYMLINK = 6;
export const FUSE_MKNOD = 8;
export const FUSE_MKDIR = 9;
export const FUSE_UNLINK = 10;
export const FUSE_RMDIR = 11;
export const FUSE_RENAME = 12;
export const FUSE_LINK = 13;
export const FUSE_OPEN = 14;
export const FUSE_READ = 15;
export const FUSE_WRITE = 16;
export const FUSE_STATFS = 17;
export const FUSE_RELEASE = 18;
export const FUSE_FSYNC = 20;
export const FUSE_SETXATTR = 21;
export const FUSE_GETXATTR = 22;
export const FUSE_LISTXATTR = 23;
export const FUSE_REMOVEXATTR = 24;
export const FUSE_FLUSH = 25;
export const FUSE_INIT = 26;
export const FUSE_OPENDIR = 27;
export const FUSE_READDIR = 28;
export const FUSE_RELEASEDIR = 29;
export const FUSE_FSYNCDIR = 30;
export const FUSE_ACCESS = 34;
export const FUSE_CREATE = 35;
export const FUSE_INTERRUPT = 36;
export const FUSE_DESTROY = 38;
export const FUSE_BATCH_FORGET = 42;
export const FUSE_FALLOCATE = 43;
export const FUSE_READDIRPLUS = 44;
export const FUSE_RENAME2 = 45;
export const FUSE_LSEEK = 46;
export const FUSE_COPY_FILE_RANGE = 47;
export const FUSE_SYNCFS = 50;
export const FUSE_TMPFILE = 51;
export const FUSE_STATX = 52;

/** Opcode names for traces and metrics (fuse.h spelling without the FUSE_ prefix). */
export const FUSE_OPCODE_NAMES: Readonly<Record<number, string>> = {
  1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 4: 'SETATTR', 5: 'READLINK', 6: 'SYMLINK', 8: 'MKNOD', 9: 'MKDIR',
  10: 'UNLINK', 11: 'RMDIR', 12: 'RENAME', 13: 'LINK', 14: 'OPEN', 15: 'READ', 16: 'WRITE', 17: 'STATFS',
  18: 'RELEASE', 20: 'FSYNC', 21: 'SETXATTR', 22: 'GETXATTR', 23: 'LISTXATTR', 24: 'REMOVEXATTR', 25: 'FLUSH',
  26: 'INIT', 27: 'OPENDIR', 28: 'READDIR', 29: 'RELEASEDIR', 30: 'FSYNCDIR', 31: 'GETLK', 32: 'SETLK',
  33: 'SETLKW', 34: 'ACCESS', 35: 'CREATE', 36: 'INTERRUPT', 37: 'BMAP', 38: 'DESTROY', 39: 'IOCTL', 40: 'POLL',
  41: 'NOTIFY_REPLY', 42: 'BATCH_FORGET', 43: 'FALLOCATE', 44: 'READDIRPLUS', 45: 'RENAME2', 46: 'LSEEK',
  47: 'COPY_FILE_RANGE', 48: 'SETUPMAPPING', 49: 'REMOVEMAPPING', 50: 'SYNCFS', 51: 'TMPFILE', 52: 'STATX',
};

/** `LOOKUP`, or `OP<n>` for an opcode fuse.h does not name. */
export function opcodeName(opcode: number): string {
  return FUSE_OPCODE_NAMES[opcode] ?? `OP${opcode}`;
}

/** INIT flags (fuse_init_in.flags / fuse_init_out.flags). */
export const FUSE_ASYNC_READ = 1 << 0;
export const FUSE_ATOMIC_O_TRUNC = 1 << 3;
export const FUSE_BIG_WRITES = 1 << 5;
export const FUSE_AUTO_INVAL_DATA = 1 << 12;
export const FUSE_DO_READDIRPLUS = 1 << 13;
export const FUSE_READDIRPLUS_AUTO = 1 << 14;
export const FUSE_WRITEBACK_CACHE = 1 << 16;
export const FUSE_PARALLEL_DIROPS = 1 << 18;
export const FUSE_MAX_PAGES = 1 << 22;
export const FUSE_CACHE_SYMLINKS = 1 << 23;
/** flags2 (bits 32 and up of the 64-bit flag set) is valid only with this bit (7.36). */
export const FUSE_INIT_EXT = 1 << 30;

/** setattr `valid` bits (FATTR_*). */
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;

/** Linux errno values (asm-generic/errno-base.h, errno.h) as FUSE replies carry them, negated. */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const EFBIG = 27;
export const ENOSPC = 28;
export const EROFS = 30;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const EPROTO = 71;
export const EOPNOTSUPP = 95;

/** File types in st_mode and the DT_* values of dirents (linux/stat.h, dirent.h). */
export const S_IFMT = 0o170000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o60000;
export const S_IFDIR = 0o40000;
export const S_IFCHR = 0o20000;
export const S_IFIFO = 0o10000;
export const S_IFSOCK = 0o140000;

/** Struct sizes (bytes). */
export const FUSE_IN_HEADER_SIZE = 40;
export const FUSE_OUT_HEADER_SIZE = 16;
export const FUSE_ATTR_SIZE = 88;
export const FUSE_ENTRY_OUT_SIZE = 128;
export const FUSE_ATTR_OUT_SIZE = 104;
export const FUSE_OPEN_OUT_SIZE = 16;
export const FUSE_INIT_IN_SIZE = 64;
/** fuse_init_in before 7.36 (no flags2/unused): major, minor, max_readahead, flags. */
export const FUSE_INIT_IN_COMPAT_SIZE = 16;
export const FUSE_INIT_OUT_SIZE = 64;
export const FUSE_GETATTR_IN_SIZE = 16;
export const FUSE_SETATTR_IN_SIZE = 88;
export const FUSE_OPEN_IN_SIZE = 8;
export const FUSE_CREATE_IN_SIZE = 16;
export const FUSE_MKNOD_IN_SIZE = 16;
export const FUSE_MKDIR_IN_SIZE = 8;
export const FUSE_RENAME_IN_SIZE = 8;
export const FUSE_RENAME2_IN_SIZE = 16;
export const FUSE_LINK_IN_SIZE = 8;
export const FUSE_READ_IN_SIZE = 40;
export const FUSE_WRITE_IN_SIZE = 40;
export const FUSE_WRITE_OUT_SIZE = 8;
export const FUSE_RELEASE_IN_SIZE = 24;
export const FUSE_FLUSH_IN_SIZE = 24;
export const FUSE_FSYNC_IN_SIZE = 16;
export const FUSE_FORGET_IN_SIZE = 8;
export const FUSE_BATCH_FORGET_IN_SIZE = 8;
export const FUSE_FORGET_ONE_SIZE = 16;
export const FUSE_FALLOCATE_IN_SIZE = 32;
export const FUSE_LSEEK_IN_SIZE = 24;
export const FUSE_LSEEK_OUT_SIZE = 8;
export const FUSE_STATFS_OUT_SIZE = 80;
/** fuse_dirent without its name: ino u64, off u64, namelen u32, type u32. */
export const FUSE_DIRENT_SIZE = 24;

/** Longest name (NAME_MAX) and symlink target (PATH_MAX - 1) accepted. */
export const FUSE_NAME_MAX = 255;
export const FUSE_SYMLINK_MAX = 4095;

/** `fuse_in_header`. */
export interface FuseInHeader {
  readonly len: number;
  readonly opcode: number;
  readonly unique: bigint;
  readonly nodeid: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly totalExtlen: number;
}

export function decodeInHeader(v: DataView, at = 0): FuseInHeader {
  return {
    len: v.getUint32(at, true),
    opcode: v.getUint32(at + 4, true),
    unique: v.getBigUint64(at + 8, true),
    nodeid: v.getBigUint64(at + 16, true),
    uid: v.getUint32(at + 24, true),
    gid: v.getUint32(at + 28, true),
    pid: v.getUint32(at + 32, true),
    totalExtlen: v.getUint16(at + 36, true),
  };
}

/** Writes `fuse_out_header { len, error, unique }`. */
export function encodeOutHeader(v: DataView, at: number, len: number, error: number, unique: bigint): void {
  v.setUint32(at, len, true);
  v.setInt32(at + 4, error, true);
  v.setBigUint64(at + 8, unique, true);
}

/** The attributes a reply carries (`struct fuse_attr`), from the host's stat. */
export interface FuseAttr {
  readonly ino: bigint;
  readonly size: bigint;
  readonly blocks: bigint;
  readonly atime: bigint;
  readonly mtime: bigint;
  readonly ctime: bigint;
  readonly atimensec: number;
  readonly mtimensec: number;
  readonly ctimensec: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly blksize: number;
}

export function encodeAttr(v: DataView, at: number, a: FuseAttr): void {
  v.setBigUint64(at, a.ino, true);
  v.setBigUint64(at + 8, a.size, true);
  v.setBigUint64(at + 16, a.blocks, true);
  v.setBigUint64(at + 24, a.atime, true);
  v.setBigUint64(at + 32, a.mtime, true);
  v.setBigUint64(at + 40, a.ctime, true);
  v.setUint32(at + 48, a.atimensec, true);
  v.setUint32(at + 52, a.mtimensec, true);
  v.setUint32(at + 56, a.ctimensec, true);
  v.setUint32(at + 60, a.mode, true);
  v.setUint32(at + 64, a.nlink, true);
  v.setUint32(at + 68, a.uid, true);
  v.setUint32(at + 72, a.gid, true);
  v.setUint32(at + 76, a.rdev, true);
  v.setUint32(at + 80, a.blksize, true);
  v.setUint32(at + 84, 0, true); // flags (FUSE_ATTR_SUBMOUNT): never set, no submounts
}

/** `fuse_entry_out`: nodeid, generation, entry_valid, attr_valid (+nsec), attr. */
export function encodeEntryOut(v: DataView, at: number, nodeid: bigint, validSec: number, a: FuseAttr): void {
  v.setBigUint64(at, nodeid, true);
  v.setBigUint64(at + 8, 0n, true); // generation: node ids are never reused within a session
  v.setBigUint64(at + 16, BigInt(validSec), true);
  v.setBigUint64(at + 24, BigInt(validSec), true);
  v.setUint32(at + 32, 0, true);
  v.setUint32(at + 36, 0, true);
  encodeAttr(v, at + 40, a);
}

/** `fuse_attr_out`: attr_valid, attr_valid_nsec, dummy, attr. */
export function encodeAttrOut(v: DataView, at: number, validSec: number, a: FuseAttr): void {
  v.setBigUint64(at, BigInt(validSec), true);
  v.setUint32(at + 8, 0, true);
  v.setUint32(at + 12, 0, true);
  encodeAttr(v, at + 16, a);
}

/** Linux's new_encode_dev: the 32-bit dev_t a fuse_attr.rdev carries. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Bytes a fuse_dirent with a name of `n` bytes takes (padded to 8, FUSE_DIRENT_ALIGN). */
export function direntSize(n: number): number {
  return (FUSE_DIRENT_SIZE + n + 7) & ~7;
}
