// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-fs hostile-request and escape checks (see conformance.ts for the catalog's shape).
 *
 * Hostile: an in-header `len` larger than the chain or smaller than the header, a WRITE whose size
 * field lies, names containing `/` or lacking their NUL, unknown nodeids and file handles, a
 * BATCH_FORGET claiming 2^32-1 entries, a reply buffer too small for the header, an unknown opcode.
 * A back-end must answer each with an error (PASS), or at worst return the chain unanswered
 * (REJECT); serving the request as if it were valid is a FAIL.
 * Escape: nothing outside the shared directory may become reachable through `..`, a symlink (the
 * server must hand symlinks back as symlinks, never resolve them), a symlink exchanged into place
 * of a directory, a hard link, or a device node the guest creates.
 */
import { fail, pass, reject, skip, type CheckOutcome, type DeviceCheck } from '../../device/conformance.js';
import type { FuseClient, FuseReply } from './client.js';
import { FUSE, HELLO, ROOT, check, fresh, isType, must, mustOk } from './conformance-kit.js';
import * as S from './spec.js';

const HOSTILE = `${FUSE}; DESIGN.md "Guest input is hostile"`;
const ESCAPE = 'AVP virtio-fs: nothing outside the shared directory is reachable';

/** PASS on an error reply, REJECT on no reply, FAIL when the request was served. */
function refused(r: FuseReply, what: string): CheckOutcome {
  if (r.error === undefined) return reject(`${what}: chain returned without a reply (used length ${r.used})`);
  return r.error < 0 ? pass(`${what}: error ${r.error}`) : fail(`${what}: served as valid`);
}

/** Whether the device still answers (a LOOKUP of hello.txt). */
function alive(c: FuseClient): string | null {
  const e = c.lookup(ROOT, HELLO);
  return typeof e === 'number' ? `LOOKUP hello.txt afterwards failed with errno ${e}` : null;
}

/** A symlink `name` → `target` in the root; null (caller SKIPs) on a read-only share. */
function plantSymlink(c: FuseClient, name: string, target: string): bigint | null {
  const r = c.send(S.FUSE_SYMLINK, ROOT, [name, target]);
  if (r.error === -S.EROFS) return null;
  if (r.error !== 0) throw `SYMLINK error ${r.error}`;
  return must(c.lookup(ROOT, name), 'LOOKUP of the symlink').nodeid;
}

/** The symlink node must stay a symlink: not a directory to look into, not a file to open. */
function symlinkStaysPut(c: FuseClient, node: bigint, inside: string): CheckOutcome {
  const a = must(c.getattr(node), 'GETATTR of the symlink');
  if (!isType(a.mode, S.S_IFLNK)) return fail(`the symlink's node has mode 0o${a.mode.toString(8)}: the server followed it`);
  const through = c.lookup(node, inside);
  if (typeof through !== 'number') return fail(`LOOKUP of "${inside}" through the symlink found ino ${through.ino} outside the share`);
  const fh = c.open(node, 0);
  if (typeof fh !== 'number') {
    const data = c.read(node, fh, 0n, 64);
    c.release(node, fh);
    if (typeof data !== 'number' && data.byteLength > 0) return fail('OPEN of the symlink node opened its target and READ returned its bytes');
  }
  const dir = c.open(node, 0, S.FUSE_OPENDIR);
  if (typeof dir !== 'number') {
    const list = c.read(node, dir, 0n, 4096, S.FUSE_READDIR);
    c.release(node, dir, S.FUSE_RELEASEDIR);
    if (typeof list !== 'number' && list.byteLength > 0) return fail('OPENDIR of the symlink node listed its target');
  }
  return pass(`a symlink, LOOKUP through it errno ${through}`);
}

export const hostileChecks: DeviceCheck[] = [
  check('fs.hostile.len-too-long', 'An in-header len beyond the chain is refused', HOSTILE, 'hostile', (c) => refused(c.send(S.FUSE_LOOKUP, ROOT, [HELLO], { claimLen: 4096 }), 'len 4096 for a 50-byte request')),
  check('fs.hostile.len-too-short', 'An in-header len below the header size is refused', HOSTILE, 'hostile', (c) => refused(c.send(S.FUSE_LOOKUP, ROOT, [HELLO], { claimLen: 8 }), 'len 8')),
  check('fs.hostile.write-size', 'A WRITE whose size field exceeds the data sent is refused', HOSTILE, 'hostile', (c) => {
    const name = fresh('wsize');
    const f = c.create(ROOT, name);
    if (f === S.EROFS) return skip('read-only share');
    const file = must(f, 'CREATE');
    const r = c.send(S.FUSE_WRITE, file.nodeid, [file.fh, 0n, 1 << 20, 0, 0n, 0, 0, new Uint8Array(16)]);
    const a = c.getattr(file.nodeid);
    c.release(file.nodeid, file.fh);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    if (typeof a !== 'number' && a.size > 16n) return fail(`the file grew to ${a.size} bytes: the server wrote beyond the data`);
    return refused(r, 'WRITE size 1 MiB with 16 data bytes');
  }),
  check('fs.hostile.name-slash', 'A LOOKUP name containing "/" does not resolve a path', HOSTILE, 'hostile', (c) => {
    const r = c.lookup(ROOT, `../../../../../../../../etc/passwd`);
    if (typeof r !== 'number') return fail(`"../../../etc/passwd" resolved to ino ${r.ino}`);
    return pass(`errno ${r}`);
  }),
  check('fs.hostile.name-no-nul', 'A LOOKUP name without its NUL terminator is refused', HOSTILE, 'hostile', (c) => refused(c.send(S.FUSE_LOOKUP, ROOT, [new TextEncoder().encode(HELLO)]), 'name without NUL'), 'SHOULD'),
  check('fs.hostile.name-nul-inside', 'A name ends at its first NUL: "hello.txt\\0../../etc/passwd" is hello.txt, "\\0hello.txt" is no name', HOSTILE, 'hostile', (c) => {
    const hello = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const r = c.send(S.FUSE_LOOKUP, ROOT, [new TextEncoder().encode(`${HELLO}\0../../../../etc/passwd\0`)]);
    if (r.error === 0) {
      const ino = r.payload.byteLength >= S.FUSE_ENTRY_OUT_SIZE ? new DataView(r.payload.buffer, r.payload.byteOffset).getBigUint64(40, true) : -1n;
      if (ino !== hello.ino) return fail(`the name with a NUL inside resolved to ino ${ino}, not hello.txt's ${hello.ino}`);
    }
    const empty = c.send(S.FUSE_LOOKUP, ROOT, [new TextEncoder().encode(`\0${HELLO}\0`)]);
    if (empty.error === 0) {
      const ino = empty.payload.byteLength >= S.FUSE_ENTRY_OUT_SIZE ? new DataView(empty.payload.buffer, empty.payload.byteOffset).getBigUint64(40, true) : -1n;
      const root = must(c.getattr(ROOT), 'GETATTR root');
      if (ino !== root.ino) return fail(`the empty name resolved to ino ${ino}`);
      return reject('the empty name was looked up as the directory itself');
    }
    return pass(`hello.txt\\0...: ${r.error === 0 ? 'hello.txt' : `error ${r.error}`}; empty name: error ${empty.error}`);
  }),
  check('fs.hostile.short-body', 'SETATTR, READ and CREATE with bodies shorter than their fixed structs are refused', HOSTILE, 'hostile', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const setattr = c.send(S.FUSE_SETATTR, e.nodeid, [S.FATTR_SIZE]);
    const read = c.send(S.FUSE_READ, e.nodeid, [1n]);
    const create = c.send(S.FUSE_CREATE, ROOT, [2 | 0o100]);
    const a = c.getattr(e.nodeid);
    if (typeof a !== 'number' && a.size !== BigInt(4096)) return fail(`hello.txt is ${a.size} bytes after a 4-byte SETATTR`);
    for (const [what, r] of [['SETATTR of 4 bytes', setattr], ['READ of 8 bytes', read], ['CREATE of 4 bytes', create]] as const) {
      const out = refused(r, what);
      if (out.verdict !== 'PASS') return out;
    }
    return pass();
  }),
  check('fs.hostile.unknown-nodeid', 'GETATTR and LOOKUP under a nodeid never handed out are refused', HOSTILE, 'hostile', (c) => {
    const g = c.send(S.FUSE_GETATTR, 0xdead_beefn, [0, 0, 0n]);
    const l = c.send(S.FUSE_LOOKUP, 0xdead_beefn, [HELLO]);
    const first = refused(g, 'GETATTR of nodeid 0xdeadbeef');
    return first.verdict !== 'PASS' ? first : refused(l, 'LOOKUP under nodeid 0xdeadbeef');
  }),
  check('fs.hostile.unknown-fh', 'READ with a file handle never handed out is refused', HOSTILE, 'hostile', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    return refused(c.send(S.FUSE_READ, e.nodeid, [0xdead_beefn, 0n, 4096, 0, 0n, 0, 0]), 'READ of fh 0xdeadbeef');
  }),
  check('fs.hostile.batch-forget', 'A BATCH_FORGET claiming 2^32-1 entries with one present leaves the device serving', HOSTILE, 'hostile', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    c.send(S.FUSE_BATCH_FORGET, 0n, [0xffff_ffff, 0, e.nodeid, 1n], { queue: 0, writable: 0 });
    const err = alive(c);
    return err === null ? pass() : fail(err);
  }),
  check('fs.hostile.no-reply-room', 'A request with 8 writable bytes gets no partial header and the device goes on', HOSTILE, 'hostile', (c, d) => {
    const r = c.send(S.FUSE_GETATTR, ROOT, [0, 0, 0n], { writable: 8 });
    if (r.used > 8) return fail(`used length ${r.used} for 8 writable bytes`);
    const stray = d.strayWrites();
    if (stray !== null) return fail(stray);
    const err = alive(c);
    return err === null ? (r.used === 0 ? reject('returned with used length 0') : pass()) : fail(err);
  }),
  check('fs.hostile.unknown-opcode', 'An unknown opcode is answered with an error (ENOSYS)', HOSTILE, 'hostile', (c) => refused(c.send(4000, ROOT, []), 'opcode 4000')),
  check('fs.escape.dotdot', 'LOOKUP ".." at the root gives nothing outside the share', ESCAPE, 'hostile', (c) => {
    const root = must(c.getattr(ROOT), 'GETATTR root');
    const up = c.lookup(ROOT, '..');
    if (typeof up === 'number') return pass(`errno ${up}`);
    return up.ino === root.ino ? pass('".." of the root is the root') : fail(`".." of the root is ino ${up.ino}, not the root's ${root.ino}`);
  }),
  check('fs.escape.absolute-symlink', 'A symlink to "/etc" stays a symlink: nothing under /etc is reachable through it', ESCAPE, 'hostile', (c) => {
    const name = fresh('abs');
    const node = plantSymlink(c, name, '/etc');
    if (node === null) return skip('read-only share: no symlink can be planted');
    const out = symlinkStaysPut(c, node, 'passwd');
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    return out;
  }),
  check('fs.escape.relative-symlink', 'A relative symlink climbing out ("../../../../../../etc") stays a symlink', ESCAPE, 'hostile', (c) => {
    const name = fresh('rel');
    const node = plantSymlink(c, name, '../../../../../../../../etc');
    if (node === null) return skip('read-only share: no symlink can be planted');
    const out = symlinkStaysPut(c, node, 'passwd');
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    return out;
  }),
  check('fs.escape.symlink-swap', 'A directory looked up, then swapped with a symlink to /etc (RENAME_EXCHANGE): its node stays the directory', ESCAPE, 'hostile', (c) => {
    const dir = fresh('swapd');
    const link = fresh('swapl');
    const m = c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, dir]);
    if (m.error === -S.EROFS) return skip('read-only share');
    const dn = must(c.lookup(ROOT, dir), 'LOOKUP dir');
    if (plantSymlink(c, link, '/etc') === null) return skip('read-only share');
    const x = c.simple(S.FUSE_RENAME2, ROOT, [ROOT, 2, 0, dir, link]);
    const swapped = c.lookup(ROOT, dir);
    const through = c.lookup(dn.nodeid, 'passwd');
    // Clean up whichever way the exchange went.
    c.simple(S.FUSE_UNLINK, ROOT, [x === 0 ? dir : link]);
    c.simple(S.FUSE_RMDIR, ROOT, [x === 0 ? link : dir]);
    if (x !== 0) return skip(`RENAME2 RENAME_EXCHANGE is not supported here (errno ${x})`);
    if (typeof swapped === 'number' || !isType(swapped.mode, S.S_IFLNK)) return fail('after the exchange the name is not the symlink');
    if (typeof through !== 'number') return fail(`the old directory node now reaches ino ${through.ino} under /etc`);
    return pass(`LOOKUP under the old node: errno ${through}`);
  }),
  check('fs.escape.hardlink', 'LINK of an unknown nodeid is refused; LINK of a symlink to /etc/passwd links the symlink, not the file', ESCAPE, 'hostile', (c) => {
    const forged = c.send(S.FUSE_LINK, ROOT, [0x7fff_0000n, fresh('forged')]);
    if (forged.error === -S.EROFS) return skip('read-only share');
    if (forged.error === 0) return fail('LINK of a nodeid never handed out succeeded');
    const name = fresh('hl');
    const node = plantSymlink(c, name, '/etc/passwd');
    if (node === null) return skip('read-only share');
    const copy = fresh('hl2');
    const r = c.send(S.FUSE_LINK, ROOT, [node, copy]);
    const e = c.lookup(ROOT, copy);
    c.simple(S.FUSE_UNLINK, ROOT, [copy]);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    if (r.error !== 0) return pass(`LINK of the symlink: error ${r.error}`);
    if (typeof e === 'number') return pass('the new name does not resolve');
    return isType(e.mode, S.S_IFLNK) ? pass('the new name is a symlink') : fail(`the new name is mode 0o${e.mode.toString(8)}: the link followed the symlink out`);
  }),
  check('fs.escape.device-node', 'MKNOD of a character device (1:3, /dev/null) is refused', ESCAPE, 'hostile', (c) => {
    const name = fresh('dev');
    const r = c.send(S.FUSE_MKNOD, ROOT, [S.S_IFCHR | 0o666, S.encodeDev(1, 3), 0, 0, name]);
    if (r.error === 0) {
      c.simple(S.FUSE_UNLINK, ROOT, [name]);
      return fail('the guest created a character device node on the host');
    }
    return pass(`error ${r.error}`);
  }),
];
