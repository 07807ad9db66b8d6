// SPDX-License-Identifier: Apache-2.0
/**
 * No escape from a virtio-fs share: each way out a guest could try is a named test, run against
 * the real native host (openat2 RESOLVE_BENEATH, O_PATH | O_NOFOLLOW nodes; sys/fs.ts) on a
 * temporary tree with a secret beside the share (fs-testing.ts). A test fails if any byte of the
 * secret comes back, if anything outside the share changes, or if the back-end blocks.
 * Read-only mode refusing every write opcode is here too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Entry, FuseClient } from '../devices/fs/client.js';
import * as S from '../devices/fs/spec.js';
import { fsSyscalls } from '../sys/index.js';
import { SECRET, fsBed, type FsBed } from './fs-testing.js';

const ROOT = S.FUSE_ROOT_ID;
const isRoot = process.getuid?.() === 0;
const secretBytes = Buffer.from(SECRET);

function entry(c: FuseClient, parent: bigint, name: string): Entry {
  const e = c.lookup(parent, name);
  assert.ok(typeof e !== 'number', `LOOKUP ${name}: errno ${String(e)}`);
  return e;
}

/** Every way a guest could read through a node: OPEN+READ, OPENDIR+READDIR, LOOKUP of a name under it. */
function assertNothingThrough(c: FuseClient, node: bigint, what: string): void {
  const under = c.lookup(node, 'secret');
  assert.ok(typeof under === 'number', `${what}: LOOKUP "secret" under it found ino ${typeof under === 'number' ? '' : under.ino}`);
  const fh = c.open(node, 0);
  if (typeof fh !== 'number') {
    const data = c.read(node, fh, 0n, 4096);
    assert.ok(typeof data === 'number' || data.byteLength === 0, `${what}: OPEN+READ returned ${typeof data === 'number' ? 0 : data.byteLength} bytes`);
  }
  const dh = c.open(node, 0, S.FUSE_OPENDIR);
  assert.ok(typeof dh === 'number', `${what}: OPENDIR succeeded`);
  const created = c.send(S.FUSE_CREATE, node, [2 | 0o100, 0o100644, 0, 0, 'planted']);
  assert.notEqual(created.error, 0, `${what}: CREATE under it succeeded`);
}

/** The outside folder's names and the secret's bytes, mode, times and link count. */
function outsideState(bed: FsBed): string {
  // atime is left out: reading the secret here to compare it moves it.
  const s = statSync(join(bed.outside, 'secret'));
  return JSON.stringify({ names: readdirSync(bed.outside).sort(), root: readdirSync(bed.root).sort(), data: readFileSync(join(bed.outside, 'secret'), 'latin1'), mode: s.mode, nlink: s.nlink, mtime: s.mtimeMs, uid: s.uid, gid: s.gid });
}

function withBed(t: { after: (fn: () => void) => void }, options: Record<string, unknown> = {}, prepare?: (share: string, outside: string) => void): FsBed {
  const bed = fsBed(options, prepare === undefined ? {} : { prepare });
  t.after(() => bed.close());
  return bed;
}

test('escape: LOOKUP of ".." at the root does not leave the share', (t) => {
  const bed = withBed(t);
  const up = bed.client.lookup(ROOT, '..');
  const parent = statSync(bed.root);
  if (typeof up === 'number') assert.equal(up, S.EACCES, 'refused as permission denied (openat2 RESOLVE_BENEATH says EXDEV)');
  else assert.notEqual(up.ino, BigInt(parent.ino), '".." must not be the share\'s parent');
  const dir = bed.client.send(S.FUSE_MKDIR, ROOT, [0o755, 0, 'sub']);
  assert.equal(dir.error, 0);
  const sub = entry(bed.client, ROOT, 'sub');
  const up2 = bed.client.lookup(sub.nodeid, '..');
  assert.ok(typeof up2 === 'number', '".." of a subdirectory is refused too: the guest\'s kernel resolves ".." itself');
});

test('escape: names containing "/" are refused by every opcode that takes a name', (t) => {
  const bed = withBed(t);
  const before = outsideState(bed);
  const c = bed.client;
  const bad = ['../outside/secret', '/etc/passwd', 'a/b', '..//outside'];
  for (const name of bad) {
    assert.equal(c.lookup(ROOT, name), S.EINVAL, `LOOKUP ${name}`);
    assert.equal(c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, name]).error, -S.EINVAL, `MKDIR ${name}`);
    assert.equal(c.send(S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, name]).error, -S.EINVAL, `CREATE ${name}`);
    assert.equal(c.send(S.FUSE_MKNOD, ROOT, [0o100644, 0, 0, 0, name]).error, -S.EINVAL, `MKNOD ${name}`);
    assert.equal(c.send(S.FUSE_SYMLINK, ROOT, [name, 'target']).error, -S.EINVAL, `SYMLINK ${name}`);
    assert.equal(c.simple(S.FUSE_UNLINK, ROOT, [name]), S.EINVAL, `UNLINK ${name}`);
    assert.equal(c.simple(S.FUSE_RMDIR, ROOT, [name]), S.EINVAL, `RMDIR ${name}`);
    assert.equal(c.simple(S.FUSE_RENAME, ROOT, [ROOT, 'hello.txt', name]), S.EINVAL, `RENAME to ${name}`);
    assert.equal(c.simple(S.FUSE_RENAME, ROOT, [ROOT, name, 'x']), S.EINVAL, `RENAME from ${name}`);
  }
  const hello = entry(c, ROOT, 'hello.txt');
  assert.equal(c.send(S.FUSE_LINK, ROOT, [hello.nodeid, '../outside/linked']).error, -S.EINVAL);
  assert.equal(outsideState(bed), before, 'nothing outside changed');
  assert.deepEqual(readdirSync(bed.share), ['hello.txt']);
});

test('escape: an absolute symlink to a folder outside stays a symlink; nothing is reachable through it', (t) => {
  const bed = withBed(t, {}, (share, outside) => symlinkSync(outside, join(share, 'abs')));
  const before = outsideState(bed);
  const l = entry(bed.client, ROOT, 'abs');
  assert.equal(l.mode & S.S_IFMT, S.S_IFLNK, 'LOOKUP returns the symlink itself');
  assertNothingThrough(bed.client, l.nodeid, 'absolute symlink');
  const target = bed.client.send(S.FUSE_READLINK, l.nodeid, []);
  assert.equal(Buffer.from(target.payload).toString(), bed.outside, 'READLINK gives the target as text, for the guest to resolve in the guest');
  assert.equal(outsideState(bed), before);
});

test('escape: a relative symlink climbing out (../outside) stays a symlink; nothing is reachable through it', (t) => {
  const bed = withBed(t, {}, (share) => {
    mkdirSync(join(share, 'd'));
    symlinkSync('../../outside', join(share, 'd', 'rel'));
    symlinkSync('../outside/secret', join(share, 'file-link'));
  });
  const before = outsideState(bed);
  const d = entry(bed.client, ROOT, 'd');
  const rel = entry(bed.client, d.nodeid, 'rel');
  assert.equal(rel.mode & S.S_IFMT, S.S_IFLNK);
  assertNothingThrough(bed.client, rel.nodeid, 'relative directory symlink');
  const fl = entry(bed.client, ROOT, 'file-link');
  assert.equal(fl.mode & S.S_IFMT, S.S_IFLNK);
  assert.equal(bed.client.open(fl.nodeid, 0), S.ELOOP, 'OPEN of a symlink node is refused, never followed');
  assert.equal(bed.client.send(S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, 'file-link']).error, -S.EEXIST, 'CREATE over a symlink does not follow it');
  const trunc = bed.client.send(S.FUSE_SETATTR, fl.nodeid, [S.FATTR_SIZE, 0, 0n, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.notEqual(trunc.error, 0, 'SETATTR size on the symlink node fails');
  assert.equal(outsideState(bed), before, 'the secret is untouched');
});

test('escape: a symlink swapped in during lookups (a racing thread exchanges a directory and a symlink to outside) never reaches outside', async (t) => {
  const inside = 'inside the share\n';
  const bed = withBed(t, {}, (share) => {
    mkdirSync(join(share, 'd'));
    // The same name as the outside secret, other bytes: LOOKUP d/secret succeeds whenever d is
    // the real directory, and reading the outside one instead would show.
    writeFileSync(join(share, 'd', 'secret'), inside);
    symlinkSync('../outside', join(share, 'l'));
  });
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const fsModule = new URL('../sys/fs.js', import.meta.url).href;
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     import(workerData.fsModule).then((fs) => {
       const flag = workerData.flag;
       while (Atomics.load(flag, 0) === 0) {
         fs.renameat2(fs.AT_FDCWD, workerData.a, fs.AT_FDCWD, workerData.b, fs.RENAME_EXCHANGE);
         Atomics.add(flag, 1, 1);
       }
     });`,
    { eval: true, workerData: { fsModule, flag, a: join(bed.share, 'd'), b: join(bed.share, 'l') } },
  );
  const stop = async (): Promise<void> => {
    Atomics.store(flag, 0, 1);
    await worker.terminate();
  };
  t.after(stop);
  const seen = { dir: 0, link: 0, gone: 0, readInside: 0, refusedUnder: 0 };
  for (let i = 0; i < 200_000 && (i < 2000 || seen.dir === 0 || seen.link === 0); i++) {
    if (i % 100 === 99) bed.renew();
    const c = bed.client;
    for (const name of ['d', 'l']) {
      const e = c.lookup(ROOT, name);
      if (typeof e === 'number') {
        seen.gone++;
        continue;
      }
      if ((e.mode & S.S_IFMT) === S.S_IFLNK) seen.link++;
      else seen.dir++;
      const s = c.lookup(e.nodeid, 'secret');
      if (typeof s === 'number') seen.refusedUnder++;
      else {
        const fh = c.open(s.nodeid, 0);
        if (typeof fh !== 'number') {
          const data = c.read(s.nodeid, fh, 0n, 256);
          c.release(s.nodeid, fh);
          assert.ok(typeof data === 'number' || !Buffer.from(data).equals(secretBytes), `iteration ${i}: the outside secret was read through "${name}"`);
          if (typeof data !== 'number' && Buffer.from(data).toString() === inside) seen.readInside++;
        }
        c.forget(s.nodeid, 1n);
      }
      c.forget(e.nodeid, 1n);
    }
  }
  await stop();
  t.diagnostic(`swaps ${Atomics.load(flag, 1)}, ${JSON.stringify(seen)}`);
  assert.ok(seen.dir > 0 && seen.link > 0, `both the directory and the symlink were met under the same name (${JSON.stringify(seen)})`);
  assert.ok(seen.readInside > 0, 'the inside file was read through the directory');
});

test('escape: LINK of a nodeid never handed out is refused (no hard link to an outside file)', (t) => {
  const bed = withBed(t);
  const before = outsideState(bed);
  for (const forged of [0n, 2n ** 63n, 0xdead_beefn, 7n]) {
    const r = bed.client.send(S.FUSE_LINK, ROOT, [forged, `forged-${forged}`]);
    assert.equal(r.error, -S.ENOENT, `LINK of nodeid ${forged}`);
  }
  assert.equal(outsideState(bed), before, 'the secret has one link still');
  assert.deepEqual(readdirSync(bed.share), ['hello.txt']);
});

test('escape: LINK of a symlink to an outside file links the symlink, never the outside file', (t) => {
  const bed = withBed(t, {}, (share, outside) => symlinkSync(join(outside, 'secret'), join(share, 'to-secret')));
  const before = outsideState(bed);
  const l = entry(bed.client, ROOT, 'to-secret');
  const r = bed.client.send(S.FUSE_LINK, ROOT, [l.nodeid, 'copy']);
  assert.equal(r.error, 0, `LINK error ${r.error}`);
  assert.ok(lstatSync(join(bed.share, 'copy')).isSymbolicLink(), 'the new name is a symlink (a hard link to the symlink inode)');
  assert.equal(statSync(join(bed.outside, 'secret')).nlink, 1, 'the outside file got no new link');
  assert.equal(outsideState(bed), before);
});

test('escape: a hard link to an outside file placed in the share by the host is that file; LINK from it stays inside', (t) => {
  // The host chose to share this inode; the guest may use it, and only under names inside the share.
  const bed = withBed(t, {}, (share, outside) => linkSync(join(outside, 'secret'), join(share, 'hard')));
  const h = entry(bed.client, ROOT, 'hard');
  const r = bed.client.send(S.FUSE_LINK, ROOT, [h.nodeid, '../escaped']);
  assert.equal(r.error, -S.EINVAL);
  assert.deepEqual(readdirSync(bed.root).sort(), ['outside', 'share']);
});

test('escape: MKNOD of character and block device nodes is refused by default', (t) => {
  const bed = withBed(t);
  for (const [type, what] of [[S.S_IFCHR, 'character'], [S.S_IFBLK, 'block']] as const) {
    const r = bed.client.send(S.FUSE_MKNOD, ROOT, [type | 0o666, S.encodeDev(1, 3), 0, 0, `dev-${what}`]);
    assert.equal(r.error, -S.EPERM, `${what} device`);
  }
  assert.deepEqual(readdirSync(bed.share), ['hello.txt']);
  const fifo = bed.client.send(S.FUSE_MKNOD, ROOT, [S.S_IFIFO | 0o644, 0, 0, 0, 'fifo']);
  assert.equal(fifo.error, 0, 'a FIFO is not a device node: allowed');
});

test('escape: with --allow-device-nodes, MKNOD of a character device is allowed (root only)', { skip: !isRoot && 'mknod of a device needs root' }, (t) => {
  const bed = withBed(t, { allowDeviceNodes: true });
  const r = bed.client.send(S.FUSE_MKNOD, ROOT, [S.S_IFCHR | 0o666, S.encodeDev(1, 3), 0, 0, 'null']);
  assert.equal(r.error, 0);
  const s = statSync(join(bed.share, 'null'));
  assert.ok(s.isCharacterDevice());
  assert.equal(s.rdev, (1 << 8) | 3);
});

test('escape: a device node or FIFO already in the share is never opened on the host (OPEN, CREATE)', (t) => {
  const bed = withBed(t, {}, (share) => {
    fsSyscalls.mknodat(fsSyscalls.AT_FDCWD, join(share, 'fifo'), constants.S_IFIFO | 0o666, 0n);
    if (isRoot) fsSyscalls.mknodat(fsSyscalls.AT_FDCWD, join(share, 'zero'), constants.S_IFCHR | 0o666, BigInt((1 << 8) | 5));
  });
  const names = isRoot ? ['fifo', 'zero'] : ['fifo'];
  for (const name of names) {
    const e = entry(bed.client, ROOT, name);
    // A FIFO opened for reading on the host would block the back-end forever: this returning at all is half the test.
    assert.equal(bed.client.open(e.nodeid, 0), S.EACCES, `OPEN ${name}`);
    assert.equal(bed.client.open(e.nodeid, 2), S.EACCES, `OPEN ${name} O_RDWR`);
    assert.equal(bed.client.send(S.FUSE_CREATE, ROOT, [0 | 0o100, 0o100644, 0, 0, name]).error, -S.EEXIST, `CREATE over ${name}`);
    assert.equal(bed.client.send(S.FUSE_CREATE, ROOT, [1 | 0o100 | 0o1000, 0o100644, 0, 0, name]).error, -S.EEXIST, `CREATE O_TRUNC over ${name}`);
  }
  assert.equal(bed.device.session.handles.size, 0, 'no host file was opened');
});

test('escape: SETATTR of mode and times on a symlink to an outside file changes the symlink, not the file', (t) => {
  const bed = withBed(t, {}, (share, outside) => {
    utimesSync(join(outside, 'secret'), 1_000_000, 1_000_000);
    symlinkSync(join(outside, 'secret'), join(share, 'to-secret'));
  });
  // Stat only: reading the secret would move its atime.
  const times0 = (): string => { const x = statSync(join(bed.outside, 'secret')); return JSON.stringify([x.atimeMs, x.mtimeMs, x.mode, x.uid, x.gid]); };
  const before = times0();
  const l = entry(bed.client, ROOT, 'to-secret');
  // valid, padding, fh, size, lock_owner, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, unused, uid, gid, unused
  const times = bed.client.send(S.FUSE_SETATTR, l.nodeid, [S.FATTR_ATIME | S.FATTR_MTIME, 0, 0n, 0n, 0n, 2_000_000n, 2_000_000n, 0n, 0, 0, 0, 0, 0, 0, 0, 0]);
  const symlinkMtime = lstatSync(join(bed.share, 'to-secret')).mtimeMs;
  const now = bed.client.send(S.FUSE_SETATTR, l.nodeid, [S.FATTR_ATIME_NOW | S.FATTR_MTIME_NOW | S.FATTR_ATIME | S.FATTR_MTIME, 0, 0n, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0, 0, 0, 0, 0]);
  const mode = bed.client.send(S.FUSE_SETATTR, l.nodeid, [S.FATTR_MODE, 0, 0n, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0o777, 0, 0, 0, 0]);
  const own = bed.client.send(S.FUSE_SETATTR, l.nodeid, [S.FATTR_UID | S.FATTR_GID, 0, 0n, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0, 0, 4242, 4242, 0]);
  t.diagnostic(`times ${times.error}, now ${now.error}, mode ${mode.error}, owner ${own.error}`);
  assert.equal(times.error, 0, 'times are set on the symlink itself');
  assert.equal(times0(), before, 'the outside file kept its times, mode and owner');
  assert.equal(symlinkMtime, 2e9, 'the symlink got the times');
});

test('escape: "." and ".." as names of creating and removing opcodes change nothing outside the share', (t) => {
  const bed = withBed(t);
  const before = outsideState(bed);
  const c = bed.client;
  const hello = entry(c, ROOT, 'hello.txt');
  for (const name of ['.', '..']) {
    assert.notEqual(c.send(S.FUSE_MKDIR, ROOT, [0o755, 0, name]).error, 0, `MKDIR ${name}`);
    assert.notEqual(c.send(S.FUSE_MKNOD, ROOT, [0o100644, 0, 0, 0, name]).error, 0, `MKNOD ${name}`);
    assert.notEqual(c.send(S.FUSE_CREATE, ROOT, [2 | 0o100 | 0o1000, 0o100644, 0, 0, name]).error, 0, `CREATE ${name}`);
    assert.notEqual(c.send(S.FUSE_SYMLINK, ROOT, [name, '/etc']).error, 0, `SYMLINK ${name}`);
    assert.notEqual(c.send(S.FUSE_LINK, ROOT, [hello.nodeid, name]).error, 0, `LINK ${name}`);
    assert.notEqual(c.simple(S.FUSE_UNLINK, ROOT, [name]), 0, `UNLINK ${name}`);
    assert.notEqual(c.simple(S.FUSE_RMDIR, ROOT, [name]), 0, `RMDIR ${name}`);
    assert.notEqual(c.simple(S.FUSE_RENAME, ROOT, [ROOT, name, 'moved']), 0, `RENAME from ${name}`);
    assert.notEqual(c.simple(S.FUSE_RENAME, ROOT, [ROOT, 'hello.txt', name]), 0, `RENAME onto ${name}`);
  }
  assert.equal(outsideState(bed), before);
  assert.deepEqual(readdirSync(bed.share), ['hello.txt']);
  assert.ok(statSync(bed.share).isDirectory());
});

test('read-only: every write opcode is refused with EROFS and the share is unchanged', (t) => {
  const bed = withBed(t, { readOnly: true }, (share) => mkdirSync(join(share, 'dir')));
  const c = bed.client;
  const hello = entry(c, ROOT, 'hello.txt');
  const dir = entry(c, ROOT, 'dir');
  const snapshot = (): string => JSON.stringify(readdirSync(bed.share).sort().map((n) => [n, lstatSync(join(bed.share, n)).mode, lstatSync(join(bed.share, n)).size, lstatSync(join(bed.share, n)).mtimeMs]));
  const before = snapshot();
  const fh = c.open(hello.nodeid, 0);
  assert.ok(typeof fh !== 'number', 'OPEN read-only is allowed');
  const setattr = (valid: number): Array<number | bigint> => [valid, 0, fh, 0n, 0n, 0n, 0n, 0n, 0, 0, 0, 0o777, 0, 0, 0, 0];
  const writes: Array<[string, number, bigint, Array<number | bigint | string | Uint8Array>]> = [
    ['SETATTR size', S.FUSE_SETATTR, hello.nodeid, setattr(S.FATTR_SIZE)],
    ['SETATTR mode', S.FUSE_SETATTR, hello.nodeid, setattr(S.FATTR_MODE)],
    ['SETATTR times', S.FUSE_SETATTR, hello.nodeid, setattr(S.FATTR_ATIME_NOW | S.FATTR_MTIME_NOW)],
    ['SYMLINK', S.FUSE_SYMLINK, ROOT, ['l', 'hello.txt']],
    ['MKNOD', S.FUSE_MKNOD, ROOT, [S.S_IFIFO | 0o644, 0, 0, 0, 'fifo']],
    ['MKDIR', S.FUSE_MKDIR, ROOT, [0o755, 0, 'newdir']],
    ['UNLINK', S.FUSE_UNLINK, ROOT, ['hello.txt']],
    ['RMDIR', S.FUSE_RMDIR, ROOT, ['dir']],
    ['RENAME', S.FUSE_RENAME, ROOT, [ROOT, 'hello.txt', 'moved']],
    ['RENAME2', S.FUSE_RENAME2, ROOT, [ROOT, 0, 0, 'hello.txt', 'moved']],
    ['LINK', S.FUSE_LINK, ROOT, [hello.nodeid, 'linked']],
    ['WRITE', S.FUSE_WRITE, hello.nodeid, [fh, 0n, 4, 0, 0n, 0, 0, new Uint8Array(4)]],
    ['CREATE', S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, 'created']],
    ['CREATE of an existing file', S.FUSE_CREATE, ROOT, [2 | 0o100, 0o100644, 0, 0, 'hello.txt']],
    ['FALLOCATE', S.FUSE_FALLOCATE, hello.nodeid, [fh, 0n, 1n << 20n, 0, 0]],
    ['SETXATTR', S.FUSE_SETXATTR, hello.nodeid, [2, 0, 'user.x', 'v']],
    ['REMOVEXATTR', S.FUSE_REMOVEXATTR, hello.nodeid, ['user.x']],
  ];
  for (const [what, op, node, parts] of writes) assert.equal(c.send(op, node, parts).error, -S.EROFS, what);
  for (const [what, flags] of [['O_WRONLY', 1], ['O_RDWR', 2], ['O_RDONLY|O_TRUNC', 0o1000]] as const) assert.equal(c.open(hello.nodeid, flags), S.EROFS, `OPEN ${what}`);
  const data = c.read(hello.nodeid, fh, 0n, 4096);
  assert.ok(typeof data !== 'number' && data.byteLength === 4096, 'reading still works');
  assert.equal(c.release(hello.nodeid, fh), 0);
  assert.equal(c.simple(S.FUSE_RELEASEDIR, dir.nodeid, [0n, 0, 0, 0n]), S.EBADF);
  assert.equal(snapshot(), before, 'the share is unchanged');
});
