// SPDX-License-Identifier: Apache-2.0
/** close, dup, isOpenFd, listOpenFds, non-blocking mode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SysError, SysUsageError } from './errors.js';
import { eventfdCreate, eventfdRead, eventfdWrite } from './eventfd.js';
import { close, closeQuiet, dup, isNonBlocking, isOpenFd, listOpenFds, setNonBlocking } from './fd.js';
import { socketPair } from './socket.js';
import { Resources, hasCloexec } from './testkit.js';

test('dup gives a distinct CLOEXEC descriptor of the same file', (t) => {
  const res = new Resources(t);
  const efd = res.fd(eventfdCreate());
  const copy = res.fd(dup(efd));
  assert.notEqual(copy, efd);
  assert.ok(hasCloexec(copy));
  eventfdWrite(efd, 3n);
  assert.equal(eventfdRead(copy), 3n);
});

test('close releases the fd; a second close is EBADF; closeQuiet reports instead of throwing', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate());
  assert.ok(isOpenFd(fd));
  assert.ok(listOpenFds().includes(fd));
  res.close(fd);
  assert.ok(!isOpenFd(fd));
  assert.ok(!listOpenFds().includes(fd));
  assert.throws(() => close(fd), (e: unknown) => e instanceof SysError && e.errnoName === 'EBADF');
  assert.equal(closeQuiet(fd), false);
  assert.equal(isOpenFd(-1), false);
});

test('listOpenFds does not report the descriptor it used to read /proc/self/fd', () => {
  const fds = listOpenFds();
  assert.ok(fds.every((fd) => isOpenFd(fd)));
  assert.deepEqual(fds, [...fds].sort((a, b) => a - b));
});

test('setNonBlocking sets and clears O_NONBLOCK', (t) => {
  const res = new Resources(t);
  const [a] = res.fds(socketPair());
  assert.equal(isNonBlocking(a), false);
  setNonBlocking(a, true);
  assert.equal(isNonBlocking(a), true);
  setNonBlocking(a, false);
  assert.equal(isNonBlocking(a), false);
});

test('a closed or negative fd is refused before or by libc, with a typed error', () => {
  assert.throws(() => setNonBlocking(-1, true), (e: unknown) => e instanceof SysError && e.errnoName === 'EBADF');
  assert.throws(() => eventfdRead(-1), SysUsageError);
});
