// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-fs FUSE session over the real native host (fs-testing.ts): INIT negotiation as Linux
 * 6.12 and older kernels send it, the inode table's lookup counts (LOOKUP, READDIRPLUS, FORGET,
 * BATCH_FORGET, DESTROY), the caps on nodes and handles, host fds given back, and the fixes of the
 * review (regression tests named after them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { direntNames, type Entry, type FuseClient } from '../devices/fs/client.js';
import * as S from '../devices/fs/spec.js';
import { listOpenFds } from '../sys/index.js';
import { fsBed, type FsBed } from './fs-testing.js';

const ROOT = S.FUSE_ROOT_ID;

function bed(t: { after: (fn: () => void) => void }, options: Record<string, unknown> = {}, opts: Parameters<typeof fsBed>[1] = {}): FsBed {
  const b = fsBed(options, opts);
  t.after(() => b.close());
  return b;
}

function entry(c: FuseClient, parent: bigint, name: string): Entry {
  const e = c.lookup(parent, name);
  assert.ok(typeof e !== 'number', `LOOKUP ${name}: errno ${String(e)}`);
  return e;
}

/** fuse_init_in as Linux 6.12 sends it (seen on the wire: 7.41, flags 0x7bfffffb, flags2 0x1ff). */
const LINUX_612_INIT = [7, 41, 131072, 0x7bfffffb, 0x1ff, ...new Array<number>(11).fill(0)];

test('INIT: Linux 6.12 gets 7.31 and the granted subset of what it offered', (t) => {
  const b = bed(t, {}, { init: false });
  const r = b.client.send(S.FUSE_INIT, 0n, LINUX_612_INIT);
  assert.equal(r.error, 0);
  assert.equal(r.len, 16 + 64, 'full fuse_init_out');
  const v = new DataView(r.payload.buffer, r.payload.byteOffset);
  assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true)], [7, 31]);
  assert.equal(v.getUint32(8, true), 131072, 'max_readahead as asked');
  const flags = v.getUint32(12, true);
  const want = S.FUSE_ASYNC_READ | S.FUSE_ATOMIC_O_TRUNC | S.FUSE_BIG_WRITES | S.FUSE_AUTO_INVAL_DATA | S.FUSE_DO_READDIRPLUS | S.FUSE_READDIRPLUS_AUTO | S.FUSE_PARALLEL_DIROPS | S.FUSE_MAX_PAGES | S.FUSE_CACHE_SYMLINKS;
  assert.equal(flags, want >>> 0);
  assert.equal(flags & (S.FUSE_WRITEBACK_CACHE | S.FUSE_INIT_EXT), 0, 'no writeback cache, no flags2');
  assert.ok(v.getUint32(20, true) >= 4096, 'max_write');
  assert.equal(v.getUint16(28, true), 256, 'max_pages: 1 MiB');
});

test('INIT: only flags the kernel offered are granted; old kernels get the 24-byte reply; major 8 gets "use 7"', (t) => {
  const b = bed(t, {}, { init: false });
  const few = b.client.send(S.FUSE_INIT, 0n, [7, 22, 4096, S.FUSE_ASYNC_READ | (1 << 31)]);
  assert.equal(few.error, 0);
  assert.equal(few.len, 16 + 24, 'FUSE_COMPAT_22_INIT_OUT_SIZE');
  assert.equal(new DataView(few.payload.buffer, few.payload.byteOffset).getUint32(12, true), S.FUSE_ASYNC_READ);
  b.renew();
  const b2 = bed(t, {}, { init: false });
  const major = b2.client.send(S.FUSE_INIT, 0n, [8, 0, 0, 0]);
  assert.equal(major.error, 0);
  assert.equal(major.len, 16 + 8);
  assert.equal(new DataView(major.payload.buffer, major.payload.byteOffset).getUint32(0, true), 7);
  assert.equal(b2.client.send(S.FUSE_INIT, 0n, [6, 0, 0, 0]).error, -S.EPROTO, 'major 6 is refused');
  assert.equal(b2.client.send(S.FUSE_INIT, 0n, [7]).error, -S.EINVAL, 'a body too short for fuse_init_in');
});

test('INIT: requests before INIT get EIO, a second INIT EPROTO; after DESTROY a new INIT starts a new session', (t) => {
  const b = bed(t, {}, { init: false });
  assert.equal(b.client.send(S.FUSE_GETATTR, ROOT, [0, 0, 0n]).error, -S.EIO);
  assert.equal(b.client.init().error, 0);
  assert.equal(b.client.init().error, -S.EPROTO);
  const hello = entry(b.client, ROOT, 'hello.txt');
  assert.equal(b.client.simple(S.FUSE_DESTROY, 0n, []), 0);
  assert.equal(b.client.send(S.FUSE_GETATTR, hello.nodeid, [0, 0, 0n]).error, -S.EIO, 'DESTROY ended the session');
  assert.equal(b.client.init().error, 0);
  assert.equal(b.client.getattr(hello.nodeid), S.ENOENT, 'nodes of the old session are gone');
  assert.equal(entry(b.client, ROOT, 'hello.txt').ino, hello.ino);
});

test('lookup counts: one nodeid per inode; FORGET subtracts; the node goes at zero; the root is never forgotten', (t) => {
  const b = bed(t);
  const c = b.client;
  const base = b.device.session.nodes.size;
  const a = entry(c, ROOT, 'hello.txt');
  const a2 = entry(c, ROOT, 'hello.txt');
  const a3 = entry(c, ROOT, 'hello.txt');
  assert.equal(a2.nodeid, a.nodeid);
  assert.equal(a3.nodeid, a.nodeid);
  assert.equal(b.device.session.nodes.get(a.nodeid)?.lookups, 3n);
  assert.equal(c.forget(a.nodeid, 2n), 0, 'FORGET has no reply');
  assert.ok(typeof c.getattr(a.nodeid) !== 'number', 'one lookup left');
  c.forget(a.nodeid, 1n);
  assert.equal(c.getattr(a.nodeid), S.ENOENT, 'gone at zero');
  assert.equal(b.device.session.nodes.size, base);
  c.forget(ROOT, 1000n);
  c.forget(0xfeedn, 1n);
  assert.ok(typeof c.getattr(ROOT) !== 'number', 'the root stays');
  const again = entry(c, ROOT, 'hello.txt');
  assert.ok(again.nodeid > a.nodeid, 'nodeids are not reused within a session');
});

test('lookup counts: BATCH_FORGET releases each node it names, only the entries actually present', (t) => {
  const b = bed(t, {}, { prepare: (share) => ['a', 'b', 'c'].forEach((n) => writeFileSync(join(share, n), n)) });
  const c = b.client;
  const ids = ['a', 'b', 'c'].map((n) => entry(c, ROOT, n).nodeid);
  const [a, bb, cc] = ids as [bigint, bigint, bigint];
  entry(c, ROOT, 'a');
  // count claims 5 entries, 3 are present: a twice (2 lookups), b once; c is not named.
  c.send(S.FUSE_BATCH_FORGET, 0n, [5, 0, a, 1n, a, 1n, bb, 1n], { queue: 0, writable: 0 });
  assert.equal(c.getattr(a), S.ENOENT);
  assert.equal(c.getattr(bb), S.ENOENT);
  assert.ok(typeof c.getattr(cc) !== 'number');
});

test('READDIRPLUS counts one lookup per entry with attributes; "." and ".." carry none', (t) => {
  const b = bed(t, {}, { prepare: (share) => ['x', 'y'].forEach((n) => writeFileSync(join(share, n), n)) });
  const c = b.client;
  const fh = c.open(ROOT, 0, S.FUSE_OPENDIR);
  assert.ok(typeof fh !== 'number');
  const r = c.send(S.FUSE_READDIRPLUS, ROOT, [fh, 0n, 4096, 0, 0n, 0, 0], { outLen: 4096 });
  assert.equal(r.error, 0);
  const v = new DataView(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
  const seen = new Map<string, bigint>();
  for (let at = 0; at < r.payload.byteLength; ) {
    const nodeid = v.getBigUint64(at, true);
    const namelen = v.getUint32(at + S.FUSE_ENTRY_OUT_SIZE + 16, true);
    const name = Buffer.from(r.payload.subarray(at + S.FUSE_ENTRY_OUT_SIZE + 24, at + S.FUSE_ENTRY_OUT_SIZE + 24 + namelen)).toString();
    seen.set(name, nodeid);
    at += S.FUSE_ENTRY_OUT_SIZE + S.direntSize(namelen);
  }
  assert.deepEqual([...seen.keys()].sort(), ['.', '..', 'hello.txt', 'x', 'y']);
  assert.equal(seen.get('.'), 0n);
  assert.equal(seen.get('..'), 0n);
  for (const n of ['hello.txt', 'x', 'y']) {
    const id = seen.get(n) ?? 0n;
    assert.equal(b.device.session.nodes.get(id)?.lookups, 1n, n);
    c.forget(id, 1n);
    assert.equal(c.getattr(id), S.ENOENT, `${n} released by its one FORGET`);
  }
  assert.equal(c.release(ROOT, fh, S.FUSE_RELEASEDIR), 0);
});

test('regression: READDIRPLUS after the directory\'s node was forgotten lists through the handle\'s own fd', (t) => {
  const b = bed(t, {}, { prepare: (share) => writeFileSync(join(share, 'other'), 'o') });
  const c = b.client;
  const r0 = c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, 'd']);
  assert.equal(r0.error, 0);
  const d = entry(c, ROOT, 'd');
  const f = c.create(d.nodeid, 'inside');
  assert.ok(typeof f !== 'number');
  c.release(f.nodeid, f.fh);
  const fh = c.open(d.nodeid, 0, S.FUSE_OPENDIR);
  assert.ok(typeof fh !== 'number');
  c.forget(d.nodeid, 2n);
  // The forgotten node's fd number may now be another node's (a directory elsewhere in the share).
  entry(c, ROOT, 'other');
  const r = c.send(S.FUSE_READDIRPLUS, d.nodeid, [fh, 0n, 4096, 0, 0n, 0, 0], { outLen: 4096 });
  assert.equal(r.error, 0);
  const names: string[] = [];
  const v = new DataView(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
  for (let at = 0; at < r.payload.byteLength; ) {
    const namelen = v.getUint32(at + S.FUSE_ENTRY_OUT_SIZE + 16, true);
    names.push(Buffer.from(r.payload.subarray(at + S.FUSE_ENTRY_OUT_SIZE + 24, at + S.FUSE_ENTRY_OUT_SIZE + 24 + namelen)).toString());
    at += S.FUSE_ENTRY_OUT_SIZE + S.direntSize(namelen);
  }
  assert.deepEqual(names.sort(), ['.', '..', 'inside']);
});

test('nodes are capped: past --max-nodes a LOOKUP is ENFILE; a FORGET makes room again', (t) => {
  const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
  const b = bed(t, { maxNodes: 16 }, { prepare: (share) => names.forEach((n) => writeFileSync(join(share, n), n)) });
  const c = b.client;
  const got = names.map((n) => c.lookup(ROOT, n));
  const ok = got.filter((e): e is Entry => typeof e !== 'number');
  assert.equal(ok.length, 15, 'the root and 15 more');
  assert.ok(got.slice(15).every((e) => e === S.ENFILE));
  c.forget(ok[0]?.nodeid ?? 0n, 1n);
  assert.ok(typeof c.lookup(ROOT, 'f19') !== 'number');
});

test('handles are capped: past --max-handles OPEN and OPENDIR are EMFILE; RELEASE makes room again', (t) => {
  const b = bed(t, { maxHandles: 16 });
  const c = b.client;
  const hello = entry(c, ROOT, 'hello.txt');
  const fhs = Array.from({ length: 16 }, () => c.open(hello.nodeid, 0));
  assert.ok(fhs.every((f) => typeof f !== 'number'));
  assert.equal(c.open(hello.nodeid, 0), S.EMFILE);
  assert.equal(c.open(ROOT, 0, S.FUSE_OPENDIR), S.EMFILE);
  assert.equal(c.send(S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, 'new']).error, -S.EMFILE);
  assert.equal(c.release(hello.nodeid, fhs[0] as bigint), 0);
  assert.equal(c.release(hello.nodeid, fhs[0] as bigint), S.EBADF, 'a handle is released once');
  assert.ok(typeof c.open(hello.nodeid, 0) !== 'number');
});

test('host fds: a session that opened, created and listed gives every fd back at DESTROY and at dispose', (t) => {
  const before = listOpenFds().length;
  const b = fsBed();
  t.after(() => b.close());
  const c = b.client;
  for (let i = 0; i < 20; i++) {
    const f = c.create(ROOT, `n${i}`);
    assert.ok(typeof f !== 'number');
    c.write(f.nodeid, f.fh, 0n, new Uint8Array(10));
  }
  const d = c.open(ROOT, 0, S.FUSE_OPENDIR);
  assert.ok(typeof d !== 'number');
  c.send(S.FUSE_READDIRPLUS, ROOT, [d, 0n, 4096, 0, 0n, 0, 0]);
  assert.ok(listOpenFds().length > before + 20);
  assert.equal(c.simple(S.FUSE_DESTROY, 0n, []), 0);
  assert.equal(b.device.session.handles.size, 0);
  assert.equal(b.device.session.nodes.size, 1, 'only the root');
  b.close();
  assert.equal(listOpenFds().length, before, 'the root and /proc/self/fd closed too');
});

test('regression: a created file, directory and node get exactly the mode the guest asked for, whatever the host umask', (t) => {
  const b = bed(t);
  const c = b.client;
  const old = process.umask(0o077);
  t.after(() => process.umask(old));
  assert.equal(c.send(S.FUSE_MKDIR, ROOT, [0o775, 0o002, 'd']).error, 0);
  const f = c.create(ROOT, 'f', 0o664);
  assert.ok(typeof f !== 'number');
  assert.equal(c.send(S.FUSE_MKNOD, ROOT, [S.S_IFIFO | 0o666, 0, 0, 0, 'p']).error, 0);
  assert.equal(statSync(join(b.share, 'd')).mode & 0o7777, 0o775);
  assert.equal(statSync(join(b.share, 'f')).mode & 0o7777, 0o664);
  assert.equal(statSync(join(b.share, 'p')).mode & 0o7777, 0o666);
});

test('CREATE of an existing regular file opens it (O_TRUNC truncates); with O_EXCL it is EEXIST', (t) => {
  const b = bed(t);
  const c = b.client;
  assert.equal(c.send(S.FUSE_CREATE, ROOT, [2 | 0o100 | 0o200, 0o100644, 0, 0, 'hello.txt']).error, -S.EEXIST);
  const r = c.send(S.FUSE_CREATE, ROOT, [2 | 0o100 | 0o1000, 0o100644, 0, 0, 'hello.txt']);
  assert.equal(r.error, 0);
  assert.equal(statSync(join(b.share, 'hello.txt')).size, 0);
  const dir = c.send(S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, '.']);
  assert.notEqual(dir.error, 0, 'CREATE of a directory name');
});

test('READ, WRITE, READDIR, RENAME, LSEEK and STATFS agree with the host', (t) => {
  const b = bed(t);
  const c = b.client;
  const f = c.create(ROOT, 'data');
  assert.ok(typeof f !== 'number');
  const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff));
  for (let at = 0; at < bytes.length; at += 32768) assert.equal(c.write(f.nodeid, f.fh, BigInt(at), bytes.subarray(at, at + 32768)), Math.min(32768, bytes.length - at));
  assert.ok(readFileSync(join(b.share, 'data')).equals(bytes), 'the host has what the guest wrote');
  const back = c.read(f.nodeid, f.fh, 65536n, 65536);
  assert.ok(typeof back !== 'number' && Buffer.from(back).equals(bytes.subarray(65536)), 'short read at the end of the file');
  const hole = c.send(S.FUSE_LSEEK, f.nodeid, [f.fh, 0n, 4, 0]);
  assert.equal(hole.error, 0);
  assert.equal(new DataView(hole.payload.buffer, hole.payload.byteOffset).getBigUint64(0, true), BigInt(bytes.length), 'SEEK_HOLE: the end');
  assert.equal(c.send(S.FUSE_LSEEK, f.nodeid, [f.fh, 0n, 1, 0]).error, -S.EINVAL, 'SEEK_CUR means nothing here');
  c.release(f.nodeid, f.fh);
  assert.equal(c.simple(S.FUSE_RENAME2, ROOT, [ROOT, 2, 0, 'data', 'hello.txt']), 0, 'RENAME_EXCHANGE');
  assert.equal(statSync(join(b.share, 'hello.txt')).size, bytes.length);
  assert.equal(c.simple(S.FUSE_RENAME2, ROOT, [ROOT, 4, 0, 'data', 'x']), S.EINVAL, 'RENAME_WHITEOUT refused');
  const dh = c.open(ROOT, 0, S.FUSE_OPENDIR);
  assert.ok(typeof dh !== 'number');
  const list = c.read(ROOT, dh, 0n, 4096, S.FUSE_READDIR);
  assert.ok(typeof list !== 'number');
  assert.deepEqual(direntNames(list).filter((n) => n !== '.' && n !== '..').sort(), readdirSync(b.share).sort());
  const st = c.send(S.FUSE_STATFS, ROOT, []);
  assert.equal(st.error, 0);
  assert.equal(new DataView(st.payload.buffer, st.payload.byteOffset).getUint32(44, true), 255, 'namelen');
});
