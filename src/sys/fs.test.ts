// SPDX-License-Identifier: Apache-2.0
/**
 * The file calls of sys/fs.ts against the real kernel: openat2's RESOLVE_* refusals (the ground
 * the fs back-end's "no escape" stands on), statx of O_PATH fds, getdents64 with resumable
 * cookies, readlinkat on a symlink's own fd, pread/pwrite, the umask and fd-limit readers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fs from './fs.js';
import { SysError } from './errors.js';

function tree(t: { after: (fn: () => void) => void }): { dir: string; fd: number } {
  const root = mkdtempSync(join(tmpdir(), 'avp-sysfs-'));
  const dir = join(root, 'dir');
  mkdirSync(dir);
  writeFileSync(join(root, 'outside'), 'x');
  writeFileSync(join(dir, 'file'), 'hello');
  symlinkSync('../outside', join(dir, 'up'));
  symlinkSync('/etc', join(dir, 'abs'));
  const fd = fs.openat(fs.AT_FDCWD, dir, fs.O_PATH | fs.O_DIRECTORY);
  t.after(() => {
    fs.close(fd);
    rmSync(root, { recursive: true, force: true });
  });
  return { dir, fd };
}

const errno = (f: () => unknown): string => {
  try {
    f();
  } catch (e: unknown) {
    if (e instanceof SysError) return e.errnoName;
    throw e;
  }
  return 'no error';
};

test('openat2 RESOLVE_BENEATH refuses "..", absolute paths and symlinks leading out (EXDEV); NO_SYMLINKS refuses any symlink (ELOOP)', (t) => {
  const { fd } = tree(t);
  const beneath = fs.RESOLVE_BENEATH;
  assert.equal(errno(() => fs.openat2(fd, '..', fs.O_PATH, 0, beneath)), 'EXDEV');
  assert.equal(errno(() => fs.openat2(fd, '../outside', fs.O_PATH, 0, beneath)), 'EXDEV');
  assert.equal(errno(() => fs.openat2(fd, '/etc/passwd', fs.O_PATH, 0, beneath)), 'EXDEV');
  assert.equal(errno(() => fs.openat2(fd, 'up', fs.O_RDONLY, 0, beneath)), 'EXDEV');
  assert.equal(errno(() => fs.openat2(fd, 'abs/passwd', fs.O_PATH, 0, beneath)), 'EXDEV');
  assert.equal(errno(() => fs.openat2(fd, 'up', fs.O_RDONLY, 0, beneath | fs.RESOLVE_NO_SYMLINKS)), 'ELOOP');
  const link = fs.openat2(fd, 'up', fs.O_PATH | fs.O_NOFOLLOW, 0, beneath | fs.RESOLVE_NO_SYMLINKS);
  try {
    assert.equal(fs.fstatAt(link).mode & constants.S_IFMT, constants.S_IFLNK, 'O_PATH|O_NOFOLLOW gives the symlink itself');
    assert.equal(Buffer.from(fs.readlinkat(link, '')).toString(), '../outside');
  } finally {
    fs.close(link);
  }
  assert.throws(() => fs.openat2(fd, 'file\0x', fs.O_PATH, 0, beneath), /NUL/, 'a NUL would shorten the C string: refused before the call');
});

test('statx of an O_PATH fd matches lstat; pread and pwrite at offsets', (t) => {
  const { dir, fd } = tree(t);
  const node = fs.openat2(fd, 'file', fs.O_PATH | fs.O_NOFOLLOW, 0, fs.RESOLVE_BENEATH);
  const st = fs.fstatAt(node);
  const want = lstatSync(join(dir, 'file'), { bigint: true });
  assert.equal(st.ino, want.ino);
  assert.equal(st.size, want.size);
  assert.equal(st.mode, Number(want.mode));
  assert.equal(st.nlink, Number(want.nlink));
  assert.equal(st.mtimeSec * 1_000_000_000n + BigInt(st.mtimeNsec), want.mtimeNs);
  const rw = fs.openat(fs.AT_FDCWD, join(dir, 'file'), fs.O_RDWR);
  try {
    assert.equal(fs.pwrite(rw, Buffer.from('XY'), 3), 2);
    const buf = new Uint8Array(10);
    assert.equal(fs.pread(rw, buf, 1), 4);
    assert.equal(Buffer.from(buf.subarray(0, 4)).toString(), 'elXY');
  } finally {
    fs.close(rw);
    fs.close(node);
  }
  assert.equal(readFileSync(join(dir, 'file'), 'utf8'), 'helXY');
});

test('preadv and pwritev move many buffers in one call, in order, and stop short at the end of the file', (t) => {
  const { dir } = tree(t);
  const fd = fs.openat(fs.AT_FDCWD, join(dir, 'vec'), fs.O_RDWR | fs.O_CREAT, 0o644);
  try {
    // More buffers than IOV_MAX (1024), so the call is split.
    const bufs = Array.from({ length: 1500 }, (_, i) => new Uint8Array(3).fill(i & 0xff));
    assert.equal(fs.pwritev(fd, bufs, 10), 4500);
    const back = Array.from({ length: 1600 }, () => new Uint8Array(3));
    assert.equal(fs.preadv(fd, back, 10), 4500, 'short: the file ends after 4500 bytes');
    assert.ok(back.slice(0, 1500).every((b, i) => b.every((x) => x === (i & 0xff))));
    assert.equal(fs.preadv(fd, [new Uint8Array(0), new Uint8Array(4)], 10), 4);
  } finally {
    fs.close(fd);
  }
  assert.equal(readFileSync(join(dir, 'vec')).byteLength, 4510);
});

test('getdents64 lists every entry once, and resumes after any entry by its cookie', (t) => {
  const { dir } = tree(t);
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `n${i}`), '');
  const d = fs.openat(fs.AT_FDCWD, dir, fs.O_RDONLY | fs.O_DIRECTORY);
  try {
    const names: string[] = [];
    let cookie = 0n;
    for (;;) {
      fs.lseek(d, cookie, fs.SEEK_SET);
      // A small buffer: several calls, each resumed from the last entry's cookie.
      const batch = fs.getdents64(d, 1024);
      if (batch.length === 0) break;
      names.push(...batch.map((e) => Buffer.from(e.name).toString()));
      cookie = batch[batch.length - 1]?.off ?? 0n;
    }
    assert.equal(names.length, new Set(names).size, 'no entry twice');
    assert.deepEqual(names.filter((n) => n !== '.' && n !== '..').sort(), ['abs', 'file', 'up', ...Array.from({ length: 300 }, (_, i) => `n${i}`)].sort());
  } finally {
    fs.close(d);
  }
});

test('umask is read without being changed; the open-file limit is positive', () => {
  const old = process.umask(0o027);
  try {
    assert.equal(fs.umask(), 0o027);
    assert.equal(process.umask(), 0o027, 'unchanged');
  } finally {
    process.umask(old);
  }
  assert.ok(fs.openFileLimit() >= 64);
});
