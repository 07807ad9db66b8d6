// SPDX-License-Identifier: Apache-2.0
/**
 * File opcodes of the FUSE session: GETATTR, SETATTR, OPEN, CREATE, READ, WRITE, RELEASE, FSYNC,
 * FALLOCATE, LSEEK, and the xattr opcodes (answered ENOSYS, which the kernel remembers).
 *
 * READ data goes from the host straight into the guest's buffers and WRITE data straight from
 * them (pread/pwrite on views of guest memory): no copy, and no allocation by a guest-claimed size.
 * Sizes are capped by max_write and by the room the chain really has.
 * Does not own: framing (session.ts), namespace opcodes (ops-dir.ts).
 */
import type { ChainReader } from '../../queue/chain.js';
import type { HostSetattr } from './host.js';
import type { FuseSession, Op, OpResult, Request } from './session.js';
import * as S from './spec.js';
import { BadRequest, writeReply, writeReplyInPlace } from './wire.js';

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;
const O_EXCL = 0o200;
/** Open flags passed on to the host: access mode, O_APPEND, O_TRUNC, O_DSYNC, O_SYNC, O_EXCL. */
const OPEN_FLAGS_KEPT = O_ACCMODE | 0o2000 | O_TRUNC | 0o4010000 | O_EXCL;
/** FUSE_GETATTR_FH is ignored: a node's attributes are the same through any of its handles. */

function getattr(s: FuseSession, r: Request): OpResult {
  return s.attrOut(r.node());
}

function setattr(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_SETATTR_IN_SIZE, 'SETATTR');
  const b = r.body;
  const valid = b.u32(0);
  const node = r.node();
  let file: number | undefined;
  if ((valid & S.FATTR_FH) !== 0) {
    const h = s.handles.get(b.u64(8), false);
    if (h === undefined) return S.EBADF;
    file = h.file;
  }
  const ch: HostSetattr = {};
  if (valid & S.FATTR_MODE) ch.mode = b.u32(68);
  if (valid & S.FATTR_UID) ch.uid = b.u32(76);
  if (valid & S.FATTR_GID) ch.gid = b.u32(80);
  if (valid & S.FATTR_SIZE) ch.size = b.safe(16, 'size');
  const time = (now: number, set: number, sec: number, nsec: number): HostSetattr['atime'] => {
    if (valid & now) return 'now';
    if (!(valid & set)) return undefined;
    const ns = b.u32(nsec);
    if (ns > 999_999_999) throw new BadRequest(S.EINVAL, 'nanoseconds out of range');
    return [BigInt.asIntN(64, b.u64(sec)), ns];
  };
  const atime = time(S.FATTR_ATIME_NOW, S.FATTR_ATIME, 32, 56);
  const mtime = time(S.FATTR_MTIME_NOW, S.FATTR_MTIME, 40, 60);
  if (atime !== undefined) ch.atime = atime;
  if (mtime !== undefined) ch.mtime = mtime;
  s.host.setattr(node.host, file, ch);
  return s.attrOut(node);
}

function openReply(id: bigint): Uint8Array {
  const out = new Uint8Array(S.FUSE_OPEN_OUT_SIZE);
  new DataView(out.buffer).setBigUint64(0, id, true);
  return out;
}

/** Whether an open with `flags` could change the file (refused on a read-only share). */
function writes(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
}

function open(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_OPEN_IN_SIZE, 'OPEN');
  const node = r.node();
  if (node.type === S.S_IFDIR) return S.EISDIR;
  // Only regular files are opened on the host: a FIFO would block the back-end, a device node
  // would give the guest a host device. The guest's kernel opens special files itself.
  if (node.type !== S.S_IFREG) return node.type === S.S_IFLNK ? S.ELOOP : S.EACCES;
  const flags = r.body.u32(0);
  if (s.opts.readOnly && writes(flags)) return S.EROFS;
  if (s.handles.full) return S.EMFILE;
  return openReply(s.handles.add(s.host.open(node.host, flags & OPEN_FLAGS_KEPT), node, false).id);
}

function create(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_CREATE_IN_SIZE, 'CREATE');
  const [name] = r.body.name(S.FUSE_CREATE_IN_SIZE);
  const flags = r.body.u32(0);
  const dir = r.node();
  if (s.handles.full) return S.EMFILE;
  const { node, file } = s.host.create(dir.host, name, flags & OPEN_FLAGS_KEPT, r.body.u32(4) & 0o7777);
  let entry: Uint8Array;
  try {
    entry = s.own(node, r.hdr);
  } catch (e: unknown) {
    s.host.close(file);
    throw e;
  }
  // Safe: own() just added the node the entry names.
  const added = s.nodes.get(new DataView(entry.buffer).getBigUint64(0, true))!;
  const h = s.handles.add(file, added, false);
  const out = new Uint8Array(S.FUSE_ENTRY_OUT_SIZE + S.FUSE_OPEN_OUT_SIZE);
  out.set(entry, 0);
  out.set(openReply(h.id), S.FUSE_ENTRY_OUT_SIZE);
  return out;
}

/** READ: data from the host file straight into the reply's buffers. */
export function readData(s: FuseSession, r: Request): number {
  r.body.need(S.FUSE_READ_IN_SIZE, 'READ');
  const h = s.handles.get(r.body.u64(0), false);
  if (h === undefined) throw new BadRequest(S.EBADF, 'READ of an unknown fh');
  const offset = r.body.safe(8, 'offset');
  const size = Math.min(r.body.u32(16), s.opts.maxWrite);
  if (r.chain.writableLength < S.FUSE_OUT_HEADER_SIZE) return 0;
  const n = writeReplyInPlace(r.chain, r.hdr.unique, size, (segs) => s.host.read(h.file, offset, segs));
  s.counters.bytesRead += n - S.FUSE_OUT_HEADER_SIZE;
  return n;
}

/** WRITE: data from the request's buffers straight into the host file. */
export function writeData(s: FuseSession, r: Request, reader: ChainReader): number {
  r.body.need(S.FUSE_WRITE_IN_SIZE, 'WRITE');
  const h = s.handles.get(r.body.u64(0), false);
  if (h === undefined) throw new BadRequest(S.EBADF, 'WRITE to an unknown fh');
  const offset = r.body.safe(8, 'offset');
  const size = r.body.u32(16);
  // The data must be exactly what the header says is there: in.len = 40 + 40 + size.
  if (r.hdr.len !== S.FUSE_IN_HEADER_SIZE + S.FUSE_WRITE_IN_SIZE + size || size > reader.remaining) throw new BadRequest(S.EINVAL, `WRITE size ${size} does not match the request length ${r.hdr.len}`);
  if (size > s.opts.maxWrite) throw new BadRequest(S.EINVAL, `WRITE of ${size} bytes over max_write`);
  if (offset + size > Number.MAX_SAFE_INTEGER) throw new BadRequest(S.EFBIG, 'WRITE past 8 PiB');
  const n = s.host.write(h.file, offset, reader.segments(size));
  s.counters.bytesWritten += n;
  const out = new Uint8Array(S.FUSE_WRITE_OUT_SIZE);
  new DataView(out.buffer).setUint32(0, n, true);
  return writeReply(r.chain, r.hdr.unique, 0, out);
}

function release(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_RELEASE_IN_SIZE, 'RELEASE');
  return s.handles.release(r.body.u64(0), false) ? 0 : S.EBADF;
}

function fsync(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_FSYNC_IN_SIZE, 'FSYNC');
  const h = s.handles.get(r.body.u64(0), false);
  if (h === undefined) return S.EBADF;
  s.host.fsync(h.file, (r.body.u32(8) & 1) !== 0);
  return 0;
}

function fallocate(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_FALLOCATE_IN_SIZE, 'FALLOCATE');
  const h = s.handles.get(r.body.u64(0), false);
  if (h === undefined) return S.EBADF;
  const offset = r.body.safe(8, 'offset');
  const length = r.body.safe(16, 'length');
  if (length === 0 || offset + length > Number.MAX_SAFE_INTEGER) return S.EINVAL;
  s.host.fallocate(h.file, r.body.u32(24), offset, length);
  return 0;
}

function lseek(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_LSEEK_IN_SIZE, 'LSEEK');
  const h = s.handles.get(r.body.u64(0), false);
  if (h === undefined) return S.EBADF;
  const whence = r.body.u32(16);
  // SEEK_SET, SEEK_END, SEEK_DATA, SEEK_HOLE; SEEK_CUR has no meaning without a file position.
  if (whence !== 0 && whence !== 2 && whence !== 3 && whence !== 4) return S.EINVAL;
  const out = new Uint8Array(S.FUSE_LSEEK_OUT_SIZE);
  new DataView(out.buffer).setBigUint64(0, BigInt(s.host.lseek(h.file, r.body.safe(8, 'offset'), whence)), true);
  return out;
}

const nosys: Op = () => S.ENOSYS;

export const fileOps: ReadonlyArray<readonly [number, Op]> = [
  [S.FUSE_GETATTR, getattr],
  [S.FUSE_SETATTR, setattr],
  [S.FUSE_OPEN, open],
  [S.FUSE_CREATE, create],
  [S.FUSE_RELEASE, release],
  [S.FUSE_FSYNC, fsync],
  [S.FUSE_FALLOCATE, fallocate],
  [S.FUSE_LSEEK, lseek],
  // Extended attributes are not served: ENOSYS makes the kernel stop asking (fc->no_xattr).
  [S.FUSE_GETXATTR, nosys],
  [S.FUSE_LISTXATTR, nosys],
  [S.FUSE_SETXATTR, nosys],
  [S.FUSE_REMOVEXATTR, nosys],
];
