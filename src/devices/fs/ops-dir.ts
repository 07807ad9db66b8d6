// SPDX-License-Identifier: Apache-2.0
/**
 * Namespace opcodes of the FUSE session: LOOKUP, MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR,
 * RENAME, RENAME2, READLINK, OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR.
 *
 * Every name is one component handed to the host relative to a directory node the session holds;
 * the host (native-host.ts) resolves it with the kernel's RESOLVE_BENEATH guarantees. Nodes created
 * here are looked up afresh, so the reply describes what is really there.
 * Does not own: framing and errors (session.ts), files (ops-file.ts).
 */
import type { Op, OpResult, Request, FuseSession } from './session.js';
import * as S from './spec.js';
import { BadRequest } from './wire.js';

/** renameat2 flags the guest may pass (RENAME_NOREPLACE, RENAME_EXCHANGE); WHITEOUT is refused. */
const RENAME_FLAGS = 1 | 2;
/** Cap on one READDIR reply, whatever the guest asks (the kernel asks for one page). */
const MAX_READDIR = 128 * 1024;

function lookup(s: FuseSession, r: Request): OpResult {
  const [name] = r.body.name(0);
  return s.entry(s.host.lookup(r.node().host, name));
}

function mkdir(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_MKDIR_IN_SIZE, 'MKDIR');
  const [name] = r.body.name(S.FUSE_MKDIR_IN_SIZE);
  return s.own(s.host.mkdir(r.node().host, name, r.body.u32(0) & 0o7777), r.hdr);
}

function mknod(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_MKNOD_IN_SIZE, 'MKNOD');
  const mode = r.body.u32(0);
  const [name] = r.body.name(S.FUSE_MKNOD_IN_SIZE);
  const type = mode & S.S_IFMT;
  if ((type === S.S_IFCHR || type === S.S_IFBLK) && !s.opts.allowDeviceNodes) return S.EPERM;
  if (type !== S.S_IFREG && type !== S.S_IFIFO && type !== S.S_IFSOCK && type !== S.S_IFCHR && type !== S.S_IFBLK) return S.EINVAL;
  return s.own(s.host.mknod(r.node().host, name, mode & (S.S_IFMT | 0o7777), type === S.S_IFCHR || type === S.S_IFBLK ? r.body.u32(4) : 0), r.hdr);
}

function symlink(s: FuseSession, r: Request): OpResult {
  const [name, next] = r.body.name(0);
  // The target is stored, never resolved by the host: the guest's kernel follows it in the guest.
  const [target] = r.body.cstring(next, S.FUSE_SYMLINK_MAX, 'symlink target', false);
  return s.own(s.host.symlink(r.node().host, name, target), r.hdr);
}

function link(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_LINK_IN_SIZE, 'LINK');
  const old = s.nodes.get(r.body.u64(0));
  if (old === undefined) throw new BadRequest(S.ENOENT, 'LINK of an unknown nodeid');
  const [name] = r.body.name(S.FUSE_LINK_IN_SIZE);
  const dir = r.node();
  s.host.link(old.host, dir.host, name);
  return s.entry(s.host.lookup(dir.host, name));
}

function unlink(s: FuseSession, r: Request): OpResult {
  const [name] = r.body.name(0);
  s.host.unlink(r.node().host, name);
  return 0;
}

function rmdir(s: FuseSession, r: Request): OpResult {
  const [name] = r.body.name(0);
  s.host.rmdir(r.node().host, name);
  return 0;
}

function rename(s: FuseSession, r: Request, fixed: number, flags: number): OpResult {
  if ((flags & ~RENAME_FLAGS) !== 0) return S.EINVAL;
  const newDir = s.nodes.get(r.body.u64(0));
  if (newDir === undefined) throw new BadRequest(S.ENOENT, 'RENAME to an unknown nodeid');
  const [oldName, next] = r.body.name(fixed, 'old name');
  const [newName] = r.body.name(next, 'new name');
  s.host.rename(r.node().host, oldName, newDir.host, newName, flags);
  return 0;
}

function readlink(s: FuseSession, r: Request): OpResult {
  const node = r.node();
  if (node.type !== S.S_IFLNK) return S.EINVAL;
  return s.host.readlink(node.host);
}

function opendir(s: FuseSession, r: Request): OpResult {
  const node = r.node();
  if (node.type !== S.S_IFDIR) return S.ENOTDIR;
  if (s.handles.full) return S.EMFILE;
  const h = s.handles.add(s.host.openDir(node.host), node, true);
  const out = new Uint8Array(S.FUSE_OPEN_OUT_SIZE);
  new DataView(out.buffer).setBigUint64(0, h.id, true);
  return out;
}

function readdir(s: FuseSession, r: Request, plus: boolean): OpResult {
  r.body.need(S.FUSE_READ_IN_SIZE, 'READDIR');
  const h = s.handles.get(r.body.u64(0), true);
  if (h === undefined) return S.EBADF;
  const offset = r.body.u64(8);
  const size = Math.min(r.body.u32(16), MAX_READDIR, Math.max(0, r.chain.writableLength - S.FUSE_OUT_HEADER_SIZE));
  const entries = s.host.readDir(h.file, offset, size);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    const need = S.direntSize(e.name.byteLength) + (plus ? S.FUSE_ENTRY_OUT_SIZE : 0);
    if (at + need > size) break;
    if (plus) {
      const dot = e.name.byteLength <= 2 && e.name.every((b) => b === 0x2e);
      // "." and "..", and entries gone meanwhile, go without attributes (nodeid 0: no lookup
      // counted). Names are looked up under the handle's own directory fd: the node the guest
      // opened it through may have been forgotten (and its fd closed) since.
      const entry = dot ? undefined : plusEntry(s, h.file, e.name);
      if (entry !== undefined) out.set(entry, at);
      at += S.FUSE_ENTRY_OUT_SIZE;
    }
    v.setBigUint64(at, e.ino, true);
    v.setBigUint64(at + 8, e.off, true);
    v.setUint32(at + 16, e.name.byteLength, true);
    v.setUint32(at + 20, e.type, true);
    out.set(e.name, at + S.FUSE_DIRENT_SIZE);
    at += S.direntSize(e.name.byteLength);
  }
  return out.subarray(0, at);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function plusEntry(s: FuseSession, dir: number, raw: Uint8Array): Uint8Array | undefined {
  try {
    return s.entry(s.host.lookup(dir, utf8.decode(raw)));
  } catch {
    // Gone since getdents, not UTF-8, or the node table is full: the entry without attributes.
    return undefined;
  }
}

function releasedir(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_RELEASE_IN_SIZE, 'RELEASEDIR');
  return s.handles.release(r.body.u64(0), true) ? 0 : S.EBADF;
}

function fsyncdir(s: FuseSession, r: Request): OpResult {
  r.body.need(S.FUSE_FSYNC_IN_SIZE, 'FSYNCDIR');
  const h = s.handles.get(r.body.u64(0), true);
  if (h === undefined) return S.EBADF;
  s.host.fsync(h.file, (r.body.u32(8) & 1) !== 0);
  return 0;
}

export const dirOps: ReadonlyArray<readonly [number, Op]> = [
  [S.FUSE_LOOKUP, lookup],
  [S.FUSE_MKDIR, mkdir],
  [S.FUSE_MKNOD, mknod],
  [S.FUSE_SYMLINK, symlink],
  [S.FUSE_LINK, link],
  [S.FUSE_UNLINK, unlink],
  [S.FUSE_RMDIR, rmdir],
  [S.FUSE_RENAME, (s, r) => (r.body.need(S.FUSE_RENAME_IN_SIZE, 'RENAME'), rename(s, r, S.FUSE_RENAME_IN_SIZE, 0))],
  [S.FUSE_RENAME2, (s, r) => (r.body.need(S.FUSE_RENAME2_IN_SIZE, 'RENAME2'), rename(s, r, S.FUSE_RENAME2_IN_SIZE, r.body.u32(8)))],
  [S.FUSE_READLINK, readlink],
  [S.FUSE_OPENDIR, opendir],
  [S.FUSE_READDIR, (s, r) => readdir(s, r, false)],
  [S.FUSE_READDIRPLUS, (s, r) => readdir(s, r, true)],
  [S.FUSE_RELEASEDIR, releasedir],
  [S.FUSE_FSYNCDIR, fsyncdir],
];
