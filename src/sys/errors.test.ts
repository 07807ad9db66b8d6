// SPDX-License-Identifier: Apache-2.0
/** SysError messages and fields, errno name table, isErrno. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../errors.js';
import { SysEofError, SysError, SysUsageError, errnoDescription, errnoName, errnoNumber, isErrno } from './errors.js';
import { close } from './fd.js';

test('close(-1) throws SysError EBADF with syscall, errno, name and message', () => {
  assert.throws(
    () => close(-1),
    (e: unknown) => {
      assert.ok(e instanceof SysError);
      assert.equal(e.code, 'SYS_CALL_FAILED');
      assert.equal(e.syscall, 'close');
      assert.equal(e.errno, 9);
      assert.equal(e.errnoName, 'EBADF');
      assert.equal(e.message, 'close failed: EBADF (bad file descriptor)');
      assert.equal(e.name, 'SysError');
      assert.ok(hasCode(e, 'SYS_CALL_FAILED'));
      assert.ok(isErrno(e, 'EBADF'));
      assert.ok(!isErrno(e, 'EAGAIN'));
      return true;
    },
  );
});

test('errno names: common Linux values, and aliases resolve to the glibc spelling', () => {
  const expected: Array<[number, string]> = [
    [1, 'EPERM'], [2, 'ENOENT'], [4, 'EINTR'], [5, 'EIO'], [9, 'EBADF'], [11, 'EAGAIN'], [12, 'ENOMEM'],
    [13, 'EACCES'], [17, 'EEXIST'], [22, 'EINVAL'], [24, 'EMFILE'], [28, 'ENOSPC'], [32, 'EPIPE'],
    [35, 'EDEADLK'], [95, 'EOPNOTSUPP'], [98, 'EADDRINUSE'], [104, 'ECONNRESET'], [107, 'ENOTCONN'],
    [110, 'ETIMEDOUT'], [111, 'ECONNREFUSED'],
  ];
  for (const [n, name] of expected) {
    assert.equal(errnoName(n), name, `errno ${n}`);
    assert.equal(errnoNumber(name), n);
  }
  assert.equal(errnoNumber('EWOULDBLOCK'), 11);
  assert.equal(errnoName(9999), 'ERRNO_9999');
  assert.throws(() => errnoNumber('ENOTANERRNO'), RangeError);
});

test('errno descriptions come from the system error map', () => {
  assert.equal(errnoDescription(11), 'resource temporarily unavailable');
  assert.equal(errnoDescription(9999), 'unknown error');
  assert.equal(new SysError('recvmsg', 9).message, 'recvmsg failed: EBADF (bad file descriptor)');
});

test('SysEofError and SysUsageError carry their codes', () => {
  const eof = new SysEofError(12, 5);
  assert.equal(eof.code, 'SYS_EOF');
  assert.equal(eof.expected, 12);
  assert.equal(eof.received, 5);
  assert.equal(eof.message, 'peer closed the stream after 5 of 12 bytes');
  assert.equal(new SysUsageError('x').code, 'SYS_INVALID_ARGUMENT');
  assert.ok(!isErrno(eof, 'EBADF'));
});
