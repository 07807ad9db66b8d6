// SPDX-License-Identifier: Apache-2.0
/** listenUnix / acceptUnix / connectUnix / socketPair / shutdown on real sockets at temp paths. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SysError, SysUsageError } from './errors.js';
import { listOpenFds, setNonBlocking } from './fd.js';
import { recvMsg, sendMsg } from './message.js';
import { SHUT_WR, acceptUnix, connectUnix, listenUnix, peerCredentials, shutdown, socketPair, unlinkQuiet } from './socket.js';
import { Resources, hasCloexec } from './testkit.js';

function isErrnoError(name: string): (e: unknown) => boolean {
  return (e) => e instanceof SysError && e.errnoName === name;
}

test('listen, connect, accept on a temp path: socket file is mode 0600, data flows both ways', (t) => {
  const res = new Resources(t);
  const path = join(res.tempDir(), 'vhost.sock');
  const listener = res.fd(listenUnix(path, 4));
  const st = statSync(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  const client = res.fd(connectUnix(path));
  const server = res.fd(acceptUnix(listener));
  for (const fd of [listener, client, server]) assert.ok(hasCloexec(fd), `fd ${fd} has CLOEXEC`);

  sendMsg(client, new Uint8Array([1, 2, 3]));
  const buf = new Uint8Array(8);
  assert.equal(recvMsg(server, buf).bytes, 3);
  assert.deepEqual([...buf.subarray(0, 3)], [1, 2, 3]);
  sendMsg(server, new Uint8Array([9]));
  assert.equal(recvMsg(client, buf).bytes, 1);
  assert.equal(buf[0], 9);
});

test('listenUnix on an existing path fails EADDRINUSE, leaves the file, leaks no fd', (t) => {
  const res = new Resources(t);
  const path = join(res.tempDir(), 'taken');
  writeFileSync(path, 'not a socket');
  const before = listOpenFds();
  assert.throws(() => listenUnix(path), isErrnoError('EADDRINUSE'));
  assert.deepEqual(listOpenFds(), before);
  assert.ok(existsSync(path));
  unlinkQuiet(path);
  assert.ok(!existsSync(path));
  unlinkQuiet(path); // absent: no error
});

test('connectUnix reports ENOENT and ECONNREFUSED and leaks no fd', (t) => {
  const res = new Resources(t);
  const dir = res.tempDir();
  const before = listOpenFds();
  assert.throws(() => connectUnix(join(dir, 'missing')), isErrnoError('ENOENT'));
  const path = join(dir, 'closed.sock');
  res.close(res.fd(listenUnix(path)));
  assert.throws(() => connectUnix(path), isErrnoError('ECONNREFUSED'));
  assert.deepEqual(listOpenFds(), before);
});

test('socket paths that do not fit sun_path are refused before any syscall', () => {
  assert.throws(() => listenUnix(`/tmp/${'x'.repeat(110)}`), SysUsageError);
  assert.throws(() => connectUnix(''), SysUsageError);
  assert.throws(() => connectUnix('/tmp/a\0b'), SysUsageError);
  // 107 bytes is the longest path that fits (108 with the NUL).
  assert.throws(() => connectUnix(`/tmp/${'y'.repeat(102)}`), isErrnoError('ENOENT'));
});

test('accept on a non-blocking listener with nothing pending is EAGAIN', (t) => {
  const res = new Resources(t);
  const listener = res.fd(listenUnix(join(res.tempDir(), 's')));
  setNonBlocking(listener, true);
  assert.throws(() => acceptUnix(listener), isErrnoError('EAGAIN'));
});

test('shutdown(SHUT_WR) gives the peer EOF; shutdown of a bad fd is EBADF', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  assert.ok(hasCloexec(a) && hasCloexec(b));
  shutdown(a, SHUT_WR);
  assert.equal(recvMsg(b, new Uint8Array(4)).bytes, 0);
  assert.throws(() => shutdown(-1), isErrnoError('EBADF'));
});

test('peerCredentials names this process at the other end of a socket pair', (t) => {
  const res = new Resources(t);
  const [a] = res.fds(socketPair());
  const cred = peerCredentials(a);
  assert.equal(cred.pid, process.pid);
  assert.equal(cred.uid, process.getuid?.());
});
