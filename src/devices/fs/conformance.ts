// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-fs's part of the conformance suite (VIRTIO 1.3 §5.11; FUSE protocol of Linux
 * include/uapi/linux/fuse.h), written against `ConformanceDriver` through client.ts, so the same
 * checks judge AVP's back-end and virtiofsd.
 *
 * Owns: INIT; each opcode's success and errno paths on a share holding `hello.txt` (4096 bytes of
 * 0x3c, made by the set-up; checks leave it as they found it and remove what they create);
 * hostile requests (lengths that lie, names with `/` or without NUL, unknown nodeids and file
 * handles, forged BATCH_FORGET counts, replies with no room); and the escape cases: `..` at the
 * root, absolute and escaping relative symlinks, a symlink swapped in (RENAME_EXCHANGE) between
 * lookups, a hard link of an unknown node or a symlink, device nodes. A write opcode answered
 * EROFS makes a check SKIP ("read-only share"), except in fs.read-only, which wants exactly that.
 * Does not own: running checks, transports.
 */
import { fail, pass, reject, skip, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { direntNames, FuseClient } from './client.js';
import { FUSE, HELLO, HELLO_SIZE, ROOT, SPEC, check, fresh, isType, must, mustOk } from './conformance-kit.js';
import { hostileChecks } from './conformance-hostile.js';
import * as S from './spec.js';

const deviceChecks: DeviceCheck[] = [
  {
    id: 'fs.init',
    title: 'FUSE_INIT gets a 7.x reply with max_write >= 4096',
    source: `${SPEC}; ${FUSE} (struct fuse_init_out)`,
    level: 'MUST',
    group: 'device',
    devices: ['fs'],
    run(d) {
      d.start({ queueSize: 64 });
      const r = new FuseClient(d).init();
      if (r.error !== 0) return fail(`INIT answered error ${r.error}`);
      if (r.len !== r.used) return fail(`out.len ${r.len} but used length ${r.used}`);
      if (r.payload.byteLength < 24) return fail(`INIT reply of ${r.payload.byteLength} bytes`);
      const v = new DataView(r.payload.buffer, r.payload.byteOffset);
      const [major, minor, maxWrite] = [v.getUint32(0, true), v.getUint32(4, true), v.getUint32(20, true)];
      if (major !== 7) return fail(`major ${major}`);
      if (maxWrite < 4096) return fail(`max_write ${maxWrite}`);
      return pass(`7.${minor}, flags 0x${v.getUint32(12, true).toString(16)}, max_write ${maxWrite}`);
    },
  },
  {
    id: 'fs.before-init',
    title: 'A request before FUSE_INIT is answered with an error',
    source: `${SPEC}; ${FUSE} ("INIT is the first request of a session")`,
    level: 'SHOULD',
    group: 'device',
    devices: ['fs'],
    run(d) {
      d.start({ queueSize: 64 });
      const r = new FuseClient(d).send(S.FUSE_GETATTR, ROOT, [0, 0, 0n]);
      if (r.error === undefined) return reject(`no reply header (used length ${r.used})`);
      return r.error < 0 ? pass(`error ${r.error}`) : fail('GETATTR was served before INIT');
    },
  },
  check('fs.lookup', 'LOOKUP finds hello.txt with its size, GETATTR agrees, a missing name is ENOENT', `${SPEC}; ${FUSE} (FUSE_LOOKUP, FUSE_GETATTR)`, 'device', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP hello.txt');
    if (!isType(e.mode, S.S_IFREG) || e.size !== BigInt(HELLO_SIZE)) return fail(`mode 0o${e.mode.toString(8)} size ${e.size}`);
    const a = must(c.getattr(e.nodeid), 'GETATTR');
    if (a.ino !== e.ino || a.size !== e.size) return fail(`GETATTR ino ${a.ino} size ${a.size}, LOOKUP ino ${e.ino} size ${e.size}`);
    const missing = c.lookup(ROOT, 'conf-missing-entry');
    if (missing !== S.ENOENT) return fail(`missing name: ${typeof missing === 'number' ? `errno ${missing}` : 'found'}`);
    return pass(`ino ${e.ino}`);
  }),
  check('fs.read', 'OPEN and READ return the file bytes; READ at end of file returns 0 bytes', `${FUSE} (FUSE_OPEN, FUSE_READ, FUSE_RELEASE)`, 'device', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const fh = must(c.open(e.nodeid, 0), 'OPEN');
    const data = must(c.read(e.nodeid, fh, 0n, HELLO_SIZE), 'READ');
    if (data.byteLength !== HELLO_SIZE || !data.every((b) => b === 0x3c)) return fail(`READ returned ${data.byteLength} bytes, not 4096 x 0x3c`);
    const tail = must(c.read(e.nodeid, fh, BigInt(HELLO_SIZE), 4096), 'READ at EOF');
    if (tail.byteLength !== 0) return fail(`READ at EOF returned ${tail.byteLength} bytes`);
    mustOk(c.release(e.nodeid, fh), 'RELEASE');
    return pass();
  }),
  check('fs.create-write', 'CREATE, WRITE, READ back, SETATTR size, FSYNC, FLUSH, UNLINK', `${FUSE} (FUSE_CREATE, FUSE_WRITE, FUSE_SETATTR, FUSE_UNLINK)`, 'device', (c) => {
    const name = fresh('file');
    const f = must(c.create(ROOT, name), 'CREATE');
    const data = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
    const n = c.write(f.nodeid, f.fh, 100n, data);
    if (n !== data.byteLength) return fail(`WRITE returned ${n}`);
    const back = must(c.read(f.nodeid, f.fh, 100n, 3000), 'READ');
    if (!Buffer.from(back).equals(Buffer.from(data))) return fail('READ did not return what was written');
    const sa = c.send(S.FUSE_SETATTR, f.nodeid, [S.FATTR_SIZE, 0, 0n, 10n, 0n, 0n, 0n, 0n, 0, 0, 0, 0, 0, 0, 0, 0]);
    if (sa.error !== 0) return fail(`SETATTR size: error ${sa.error}`);
    const size = new DataView(sa.payload.buffer, sa.payload.byteOffset).getBigUint64(16 + 8, true);
    if (size !== 10n) return fail(`size ${size} after truncating to 10`);
    mustOk(c.simple(S.FUSE_FSYNC, f.nodeid, [f.fh, 0, 0]), 'FSYNC');
    mustOk(c.simple(S.FUSE_FLUSH, f.nodeid, [f.fh, 0, 0, 0n]), 'FLUSH');
    mustOk(c.release(f.nodeid, f.fh), 'RELEASE');
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    if (c.lookup(ROOT, name) !== S.ENOENT) return fail('still there after UNLINK');
    if (c.lookup(ROOT, name) !== S.ENOENT) return fail('still there after UNLINK');
    return pass();
  }),
  check('fs.create-exists', 'CREATE with O_EXCL of an existing name is EEXIST', `${FUSE} (FUSE_CREATE); open(2) O_EXCL`, 'device', (c) => {
    const r = c.send(S.FUSE_CREATE, ROOT, [2 | 0o100 | 0o200, 0o100644, 0o22, 0, HELLO]);
    if (r.error === -S.EROFS) return skip('read-only share');
    return r.error === -S.EEXIST ? pass() : fail(`error ${r.error}`);
  }),
  check('fs.dir', 'MKDIR, READDIR lists ".", ".." and the new entry, RMDIR of a non-empty directory fails, RMDIR', `${FUSE} (FUSE_MKDIR, FUSE_OPENDIR, FUSE_READDIR, FUSE_RMDIR)`, 'device', (c) => {
    const dir = fresh('dir');
    const r = c.send(S.FUSE_MKDIR, ROOT, [0o755, 0o22, dir]);
    if (r.error === -S.EROFS) return skip('read-only share');
    if (r.error !== 0) return fail(`MKDIR error ${r.error}`);
    const dn = must(c.lookup(ROOT, dir), 'LOOKUP dir');
    const f = must(c.create(dn.nodeid, 'inner'), 'CREATE inner');
    mustOk(c.release(f.nodeid, f.fh), 'RELEASE');
    const fh = must(c.open(dn.nodeid, 0, S.FUSE_OPENDIR), 'OPENDIR');
    const list = must(c.read(dn.nodeid, fh, 0n, 4096, S.FUSE_READDIR), 'READDIR');
    const names = direntNames(list).sort();
    mustOk(c.release(dn.nodeid, fh, S.FUSE_RELEASEDIR), 'RELEASEDIR');
    if (names.join(',') !== '.,..,inner') return fail(`READDIR: ${names.join(',')}`);
    const notEmpty = c.simple(S.FUSE_RMDIR, ROOT, [dir]);
    mustOk(c.simple(S.FUSE_UNLINK, dn.nodeid, ['inner']), 'UNLINK');
    mustOk(c.simple(S.FUSE_RMDIR, ROOT, [dir]), 'RMDIR');
    return notEmpty === S.ENOTEMPTY ? pass() : fail(`RMDIR of a non-empty directory: errno ${notEmpty}`);
  }),
  check('fs.rename', 'RENAME moves a file; RENAME2 NOREPLACE onto an existing name is EEXIST', `${FUSE} (FUSE_RENAME, FUSE_RENAME2); rename(2)`, 'device', (c) => {
    const a = fresh('a');
    const b = fresh('b');
    const f = must(c.create(ROOT, a), 'CREATE');
    mustOk(c.release(f.nodeid, f.fh), 'RELEASE');
    mustOk(c.simple(S.FUSE_RENAME, ROOT, [ROOT, a, b]), 'RENAME');
    const gone = c.lookup(ROOT, a);
    const moved = c.lookup(ROOT, b);
    const noreplace = c.simple(S.FUSE_RENAME2, ROOT, [ROOT, 1, 0, b, HELLO]);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [b]), 'UNLINK');
    if (gone !== S.ENOENT) return fail('the old name still exists');
    if (typeof moved === 'number' || moved.ino !== f.ino) return fail('the new name is not the file');
    return noreplace === S.EEXIST ? pass() : fail(`RENAME2 NOREPLACE: errno ${noreplace}`);
  }),
  check('fs.symlink', 'SYMLINK stores the target and READLINK returns it', `${FUSE} (FUSE_SYMLINK, FUSE_READLINK)`, 'device', (c) => {
    const l = fresh('link');
    const r = c.send(S.FUSE_SYMLINK, ROOT, [l, HELLO]);
    if (r.error === -S.EROFS) return skip('read-only share');
    if (r.error !== 0) return fail(`SYMLINK error ${r.error}`);
    const e = must(c.lookup(ROOT, l), 'LOOKUP');
    const t = c.send(S.FUSE_READLINK, e.nodeid, []);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [l]), 'UNLINK');
    if (!isType(e.mode, S.S_IFLNK)) return fail(`mode 0o${e.mode.toString(8)}`);
    const target = new TextDecoder().decode(t.payload);
    return t.error === 0 && target === HELLO ? pass() : fail(`READLINK: error ${t.error}, ${JSON.stringify(target)}`);
  }),
  check('fs.link', 'LINK makes a second name for the same inode (nlink 2)', `${FUSE} (FUSE_LINK); link(2)`, 'device', (c) => {
    const src = fresh('src');
    const dst = fresh('dst');
    const f = must(c.create(ROOT, src), 'CREATE');
    mustOk(c.release(f.nodeid, f.fh), 'RELEASE');
    const r = c.send(S.FUSE_LINK, ROOT, [f.nodeid, dst]);
    const second = c.lookup(ROOT, dst);
    c.simple(S.FUSE_UNLINK, ROOT, [dst]);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [src]), 'UNLINK');
    if (r.error !== 0) return fail(`LINK error ${r.error}`);
    if (typeof second === 'number' || second.ino !== f.ino || second.nlink !== 2) return fail(`second name: ${JSON.stringify(second, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    return pass();
  }),
  check('fs.statfs', 'STATFS reports block size, blocks and name length', `${FUSE} (FUSE_STATFS)`, 'device', (c) => {
    const r = c.send(S.FUSE_STATFS, ROOT, []);
    if (r.error !== 0 || r.payload.byteLength < S.FUSE_STATFS_OUT_SIZE) return fail(`error ${r.error}, ${r.payload.byteLength} bytes`);
    const v = new DataView(r.payload.buffer, r.payload.byteOffset);
    return v.getBigUint64(0, true) > 0n && v.getUint32(40, true) > 0 && v.getUint32(44, true) > 0 ? pass() : fail('zero blocks, bsize or namelen');
  }),
  check('fs.lseek-fallocate', 'FALLOCATE grows a file, LSEEK SEEK_DATA finds data', `${FUSE} (FUSE_FALLOCATE, FUSE_LSEEK)`, 'device', (c) => {
    const name = fresh('alloc');
    const f = must(c.create(ROOT, name), 'CREATE');
    const fa = c.simple(S.FUSE_FALLOCATE, f.nodeid, [f.fh, 0n, 8192n, 0, 0]);
    const a = c.getattr(f.nodeid);
    c.write(f.nodeid, f.fh, 0n, new Uint8Array(10).fill(1));
    const ls = c.send(S.FUSE_LSEEK, f.nodeid, [f.fh, 0n, 3, 0]);
    c.release(f.nodeid, f.fh);
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    if (fa !== 0) return fail(`FALLOCATE errno ${fa}`);
    if (typeof a === 'number' || a.size !== 8192n) return fail('size after FALLOCATE is not 8192');
    if (ls.error === -S.ENOSYS) return pass('LSEEK is ENOSYS (allowed: the kernel falls back)');
    return ls.error === 0 ? pass() : fail(`LSEEK error ${ls.error}`);
  }),
  check('fs.errno-paths', 'Each opcode fails with the errno of its system call: ENOENT, ENOTDIR, EEXIST, EINVAL, ENOTEMPTY', `${FUSE}; unlink(2), rmdir(2), mkdir(2), readlink(2), rename(2), link(2)`, 'device', (c) => {
    const dir = fresh('errdir');
    const m = c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, dir]);
    if (m.error === -S.EROFS) return skip('read-only share');
    if (m.error !== 0) return fail(`MKDIR error ${m.error}`);
    const hello = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const got: Array<[string, number, number]> = [
      ['UNLINK of a missing name', c.simple(S.FUSE_UNLINK, ROOT, ['conf-missing']), S.ENOENT],
      ['RMDIR of a file', c.simple(S.FUSE_RMDIR, ROOT, [HELLO]), S.ENOTDIR],
      ['MKDIR of an existing name', -(c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, dir]).error ?? 0), S.EEXIST],
      ['READLINK of a regular file', -(c.send(S.FUSE_READLINK, hello.nodeid, []).error ?? 0), S.EINVAL],
      ['RENAME of a missing name', c.simple(S.FUSE_RENAME, ROOT, [ROOT, 'conf-missing', 'conf-x']), S.ENOENT],
      ['LINK onto an existing name', -(c.send(S.FUSE_LINK, ROOT, [hello.nodeid, dir]).error ?? 0), S.EEXIST],
      ['LOOKUP under a regular file', (() => { const r = c.lookup(hello.nodeid, 'x'); return typeof r === 'number' ? r : 0; })(), S.ENOTDIR],
    ];
    mustOk(c.simple(S.FUSE_RMDIR, ROOT, [dir]), 'RMDIR');
    const wrong = got.filter(([, errno, want]) => errno !== want);
    return wrong.length === 0 ? pass() : fail(wrong.map(([what, errno, want]) => `${what}: errno ${errno}, expected ${want}`).join('; '));
  }),
  check('fs.readdirplus', 'READDIRPLUS lists hello.txt with its attributes and a nodeid that GETATTR accepts', `${FUSE} (FUSE_READDIRPLUS, struct fuse_direntplus)`, 'device', (c) => {
    const fh = must(c.open(ROOT, 0, S.FUSE_OPENDIR), 'OPENDIR');
    const r = c.send(S.FUSE_READDIRPLUS, ROOT, [fh, 0n, 4096, 0, 0n, 0, 0], { outLen: 4096 });
    mustOk(c.release(ROOT, fh, S.FUSE_RELEASEDIR), 'RELEASEDIR');
    if (r.error !== 0) return fail(`READDIRPLUS error ${r.error}`);
    const v = new DataView(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
    for (let at = 0; at + S.FUSE_ENTRY_OUT_SIZE + S.FUSE_DIRENT_SIZE <= r.payload.byteLength; ) {
      const namelen = v.getUint32(at + S.FUSE_ENTRY_OUT_SIZE + 16, true);
      const nameAt = at + S.FUSE_ENTRY_OUT_SIZE + S.FUSE_DIRENT_SIZE;
      const name = new TextDecoder().decode(r.payload.subarray(nameAt, nameAt + namelen));
      if (name === HELLO) {
        const nodeid = v.getBigUint64(at, true);
        const size = v.getBigUint64(at + 40 + 8, true);
        if (nodeid === 0n) return fail('hello.txt came without a nodeid');
        if (size !== BigInt(HELLO_SIZE)) return fail(`hello.txt's size in READDIRPLUS is ${size}`);
        const a = must(c.getattr(nodeid), 'GETATTR of the READDIRPLUS nodeid');
        c.forget(nodeid, 1n);
        return a.size === BigInt(HELLO_SIZE) ? pass() : fail(`GETATTR size ${a.size}`);
      }
      at += S.FUSE_ENTRY_OUT_SIZE + S.direntSize(namelen);
    }
    return fail('hello.txt is not in the READDIRPLUS reply');
  }),
  check('fs.mknod', 'MKNOD of a FIFO makes a FIFO; UNLINK removes it', `${FUSE} (FUSE_MKNOD); mknod(2)`, 'device', (c) => {
    const name = fresh('fifo');
    const r = c.send(S.FUSE_MKNOD, ROOT, [S.S_IFIFO | 0o644, 0, 0o22, 0, name]);
    if (r.error === -S.EROFS) return skip('read-only share');
    if (r.error !== 0) return fail(`MKNOD error ${r.error}`);
    const e = must(c.lookup(ROOT, name), 'LOOKUP');
    mustOk(c.simple(S.FUSE_UNLINK, ROOT, [name]), 'UNLINK');
    return isType(e.mode, S.S_IFIFO) ? pass() : fail(`mode 0o${e.mode.toString(8)}`);
  }),
  check('fs.xattr', 'GETXATTR and LISTXATTR get a well-formed answer (ENOSYS, ENODATA, EOPNOTSUPP or a value)', `${FUSE} (FUSE_GETXATTR, FUSE_LISTXATTR)`, 'device', (c) => {
    const g = c.send(S.FUSE_GETXATTR, ROOT, [0, 0, 'user.avp']);
    const l = c.send(S.FUSE_LISTXATTR, ROOT, [0, 0]);
    for (const [what, r] of [['GETXATTR', g], ['LISTXATTR', l]] as const) {
      if (r.error === undefined || r.len !== r.used) return fail(`${what}: out.len ${r.len}, used length ${r.used}`);
      if (r.error !== 0 && ![-S.ENOSYS, -61 /* ENODATA */, -S.EOPNOTSUPP].includes(r.error)) return fail(`${what}: error ${r.error}`);
    }
    return pass(`GETXATTR ${g.error}, LISTXATTR ${l.error}`);
  }),
  check('fs.destroy', 'DESTROY is answered; the session ends', `${FUSE} (FUSE_DESTROY)`, 'device', (c) => {
    const r = c.send(S.FUSE_DESTROY, 0n, []);
    return r.error === 0 && r.len === S.FUSE_OUT_HEADER_SIZE ? pass() : fail(`error ${r.error}, out.len ${r.len}`);
  }),
  check('fs.forget', 'FORGET on hiprio gets no reply and the session goes on', `${SPEC} ("FUSE_FORGET ... on the hiprio queue"); ${FUSE}`, 'device', (c) => {
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const used = c.forget(e.nodeid, 1n);
    if (used !== 0) return fail(`FORGET got used length ${used}`);
    const again = c.lookup(ROOT, HELLO);
    return typeof again === 'number' ? fail(`LOOKUP after FORGET: errno ${again}`) : pass();
  }),
  check('fs.read-only', 'On a read-only share every write opcode is refused with EROFS', 'AVP virtio-fs --read-only', 'device', (c) => {
    const dir = fresh('ro');
    const probe = c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, dir]);
    if (probe.error === 0) {
      c.simple(S.FUSE_RMDIR, ROOT, [dir]);
      return skip('the share is writable');
    }
    const e = must(c.lookup(ROOT, HELLO), 'LOOKUP');
    const ops: Array<[string, number, bigint, Array<number | bigint | string>]> = [
      ['CREATE', S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, 'x']],
      ['SYMLINK', S.FUSE_SYMLINK, ROOT, ['x', 'y']],
      ['UNLINK', S.FUSE_UNLINK, ROOT, [HELLO]],
      ['RENAME', S.FUSE_RENAME, ROOT, [ROOT, HELLO, 'x']],
      ['SETATTR', S.FUSE_SETATTR, e.nodeid, [S.FATTR_SIZE, 0, 0n, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0, 0, 0, 0, 0]],
    ];
    for (const [what, op, node, parts] of ops) {
      const r = c.send(op, node, parts);
      if (r.error !== -S.EROFS) return fail(`${what}: error ${r.error}, not EROFS`);
    }
    const fh = c.open(e.nodeid, 2);
    return fh === S.EROFS ? pass() : fail(`OPEN O_RDWR: ${typeof fh === 'number' ? `errno ${fh}` : 'granted'}`);
  }),
];

export const fsConformance: DeviceConformance = {
  device: 'fs',
  deviceId: S.FS_DEVICE_ID,
  configSize: S.FS_CONFIG_SIZE,
  probeQueue: S.FS_FIRST_REQUEST_QUEUE,
  queues: [S.FS_HIPRIO_QUEUE, S.FS_FIRST_REQUEST_QUEUE],
  probe(d) {
    // Any well-formed FUSE reply shows the device serves: INIT (or an error if already INITed).
    const req = new Uint8Array(S.FUSE_IN_HEADER_SIZE + S.FUSE_INIT_IN_SIZE);
    const v = new DataView(req.buffer);
    v.setUint32(0, req.byteLength, true);
    v.setUint32(4, S.FUSE_INIT, true);
    v.setBigUint64(8, 0x77n, true);
    v.setUint32(40, 7, true);
    v.setUint32(44, 31, true);
    const out = d.in(S.FUSE_OUT_HEADER_SIZE + S.FUSE_INIT_OUT_SIZE, 0xee);
    return {
      buffers: [d.out(req), out],
      verify(used) {
        if (used.len < S.FUSE_OUT_HEADER_SIZE) return `used length ${used.len}: no reply header`;
        const b = d.bytes(out);
        const rv = new DataView(b.buffer, b.byteOffset);
        if (rv.getBigUint64(8, true) !== 0x77n) return 'reply unique does not match';
        if (rv.getUint32(0, true) !== used.len) return `out.len ${rv.getUint32(0, true)} but used length ${used.len}`;
        return null;
      },
    };
  },
  wrongDirection(d) {
    // A request with no device-writable buffer: there is nowhere to reply.
    const req = new Uint8Array(S.FUSE_IN_HEADER_SIZE + 16);
    const v = new DataView(req.buffer);
    v.setUint32(0, req.byteLength, true);
    v.setUint32(4, S.FUSE_GETATTR, true);
    v.setBigUint64(16, ROOT, true);
    return {
      buffers: [d.out(req)],
      judge(used) {
        if (used === null) return reject('the chain without a device-writable buffer was not returned');
        return used.len === 0 ? pass('returned with used length 0') : fail(`used length ${used.len} for a chain without a device-writable byte`);
      },
    };
  },
  checks: [...deviceChecks, ...hostileChecks],
};
