// SPDX-License-Identifier: Apache-2.0
/** readSome / writeSome / acceptNonBlocking / connectUnixNonBlocking on real sockets at temp paths. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SysError } from './errors.js';
import { isNonBlocking, setNonBlocking } from './fd.js';
import { SHUT_WR, listenUnix, shutdown, socketPair } from './socket.js';
import { acceptNonBlocking, connectUnixNonBlocking, readSome, writeSome } from './stream.js';
import { Resources, hasCloexec } from './testkit.js';

const errno = (name: string) => (e: unknown) => e instanceof SysError && e.errnoName === name;

test('readSome: null when nothing is there, bytes when there are, 0 at end of stream (blocking fd or not)', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const buf = new Uint8Array(16);
  assert.equal(isNonBlocking(b), false, 'MSG_DONTWAIT works on a blocking fd too');
  assert.equal(readSome(b, buf), null);
  assert.equal(writeSome(a, Uint8Array.of(1, 2, 3)), 3);
  assert.equal(readSome(b, buf), 3);
  assert.deepEqual([...buf.subarray(0, 3)], [1, 2, 3]);
  shutdown(a, SHUT_WR);
  assert.equal(readSome(b, buf), 0);
  assert.throws(() => readSome(b, new Uint8Array(0)), /non-empty buffer/);
});

test('writeSome: writes what fits, then null; EPIPE (not SIGPIPE) once the peer is gone', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const chunk = new Uint8Array(64 * 1024).fill(7);
  let total = 0;
  for (let i = 0; i < 10_000; i++) {
    const n = writeSome(a, chunk);
    if (n === null) break;
    assert.ok(n > 0 && n <= chunk.length);
    total += n;
  }
  assert.ok(total > 0, `the socket buffer took ${total} bytes before it was full`);
  assert.equal(writeSome(a, chunk), null, 'full: would block');
  assert.equal(writeSome(a, new Uint8Array(0)), 0);
  res.close(b);
  assert.throws(() => writeSome(a, chunk), (e: unknown) => errno('EPIPE')(e) || errno('ECONNRESET')(e));
});

test('acceptNonBlocking and connectUnixNonBlocking: null with nobody waiting; non-blocking, close-on-exec sockets; ENOENT / ECONNREFUSED', (t) => {
  const res = new Resources(t);
  const dir = res.tempDir();
  const path = join(dir, 'l.sock');
  const l = res.fd(listenUnix(path));
  setNonBlocking(l, true);
  assert.equal(acceptNonBlocking(l), null);
  const c = res.fd(connectUnixNonBlocking(path));
  const s = acceptNonBlocking(l);
  assert.ok(s !== null);
  res.fd(s);
  for (const fd of [c, s]) {
    assert.equal(isNonBlocking(fd), true);
    assert.ok(hasCloexec(fd));
  }
  assert.equal(writeSome(c, Uint8Array.of(42)), 1);
  const buf = new Uint8Array(4);
  assert.equal(readSome(s, buf), 1);
  assert.equal(buf[0], 42);
  assert.throws(() => connectUnixNonBlocking(join(dir, 'absent.sock')), errno('ENOENT'));
  res.close(l);
  assert.throws(() => connectUnixNonBlocking(path), errno('ECONNREFUSED'));
  assert.throws(() => connectUnixNonBlocking('x'.repeat(200)), /unix socket path/);
});
