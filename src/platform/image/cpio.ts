// SPDX-License-Identifier: Apache-2.0
/**
 * A writer for the "newc" cpio format, the one format the Linux initramfs unpacker reads
 * (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Owns: encoding entries to bytes. Does not own: what goes into the image (build.ts) nor
 * compression (the caller gzips).
 *
 * Written here rather than piped through cpio(1) because the archive must hold /dev/console as a
 * character device (creating a device node on disk needs root) and because fixed inode numbers,
 * owners and times make the same inputs give the same bytes.
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

/**
 * Encodes entries, in the order given, into one newc archive ending with the trailer. Parents
 * must come before their children (the kernel creates entries in archive order). Every entry is
 * owned by root with mtime `mtime` (seconds; 0 by default) so that archives are reproducible.
 */
export function packNewc(entries: readonly CpioEntry[], mtime = 0): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    checkPath(e.path);
    const { mode, nlink, data, rdev } = describeEntry(e);
    chunks.push(...record({ ino: ino++, mode, nlink, mtime, name: e.path, data, rdev }));
  }
  chunks.push(...record({ ino: 0, mode: 0, nlink: 1, mtime: 0, name: TRAILER, data: new Uint8Array(0), rdev: [0, 0] }));
  return Buffer.concat(chunks);
}

function describeEntry(e: CpioEntry): { mode: number; nlink: number; data: Uint8Array; rdev: [number, number] } {
  switch (e.type) {
    case 'dir':
      return { mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, data: new Uint8Array(0), rdev: [0, 0] };
    case 'file':
      return { mode: S_IFREG | (e.mode ?? 0o644), nlink: 1, data: e.data, rdev: [0, 0] };
    case 'symlink':
      // A symlink's target is its file data, without a terminating NUL.
      return { mode: S_IFLNK | 0o777, nlink: 1, data: Buffer.from(e.target, 'utf8'), rdev: [0, 0] };
    case 'chardev':
      return { mode: S_IFCHR | (e.mode ?? 0o600), nlink: 1, data: new Uint8Array(0), rdev: [e.major, e.minor] };
  }
}

interface RecordFields {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  name: string;
  data: Uint8Array;
  rdev: [number, number];
}

function record(f: RecordFields): Buffer[] {
  const name = Buffer.from(`${f.name}\0`, 'utf8');
  // Field order of the newc header; every field is 8 ASCII hex digits.
  const fields = [
    f.ino,
    f.mode,
    0, // uid: root
    0, // gid: root
    f.nlink,
    f.mtime,
    f.data.length,
    0, // devmajor
    0, // devminor
    f.rdev[0],
    f.rdev[1],
    name.length,
    0, // check: only used by the "070702" CRC variant
  ];
  const header = Buffer.from(MAGIC + fields.map(hex8).join(''), 'ascii');
  // The name is padded so that header + name is a multiple of 4; so is the data.
  return [header, name, zeros(pad4(header.length + name.length)), Buffer.from(f.data), zeros(pad4(f.data.length))];
}

function hex8(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`cpio field ${v} does not fit 32 bits`);
  return v.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function zeros(n: number): Buffer {
  return Buffer.alloc(n);
}

function checkPath(path: string): void {
  // The kernel unpacks relative to the rootfs; a leading '/', '..' or an empty component would
  // be at best ignored and at worst escape, so the writer refuses them.
  const parts = path.split('/');
  if (path === '' || parts.some((p) => p === '' || p === '.' || p === '..') || path.includes('\0')) {
    throw new RangeError(`cpio entry path ${JSON.stringify(path)} must be relative, without '.', '..' or empty parts`);
  }
}
