// SPDX-License-Identifier: Apache-2.0
/** eventfd counter semantics: accumulate, reset on read, semaphore mode, overflow, EAGAIN as 0n. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SysError, SysUsageError } from './errors.js';
import { EFD_NONBLOCK, EFD_SEMAPHORE, eventfdCreate, eventfdRead, eventfdSignal, eventfdWrite } from './eventfd.js';
import { isNonBlocking } from './fd.js';
import { Resources, hasCloexec } from './testkit.js';

test('writes add up; a read returns the sum and resets; an empty non-blocking read is 0n', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate());
  assert.ok(hasCloexec(fd));
  assert.ok(isNonBlocking(fd));
  assert.equal(eventfdRead(fd), 0n);
  eventfdWrite(fd);
  eventfdWrite(fd, 2n);
  eventfdWrite(fd, 1n << 40n);
  assert.equal(eventfdRead(fd), 3n + (1n << 40n));
  assert.equal(eventfdRead(fd), 0n);
});

test('initial value and semaphore mode: each read takes one', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate(EFD_NONBLOCK | EFD_SEMAPHORE, 2));
  assert.equal(eventfdRead(fd), 1n);
  assert.equal(eventfdRead(fd), 1n);
  assert.equal(eventfdRead(fd), 0n);
});

test('a write past 2^64-2 is EAGAIN on a non-blocking eventfd; out-of-range values are refused', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate());
  eventfdWrite(fd, 0xffff_ffff_ffff_fffen);
  assert.throws(() => eventfdWrite(fd, 1n), (e: unknown) => e instanceof SysError && e.errnoName === 'EAGAIN');
  assert.equal(eventfdRead(fd), 0xffff_ffff_ffff_fffen);
  assert.throws(() => eventfdWrite(fd, 1n << 64n), SysUsageError);
  assert.throws(() => eventfdWrite(fd, -1n), SysUsageError);
  assert.throws(() => eventfdCreate(0x4000_0000), SysUsageError);
  assert.throws(() => eventfdCreate(EFD_NONBLOCK, -1), SysUsageError);
});

test('a blocking eventfd (flags 0) is created without O_NONBLOCK but still CLOEXEC', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate(0, 5));
  assert.ok(!isNonBlocking(fd));
  assert.ok(hasCloexec(fd));
  assert.equal(eventfdRead(fd), 5n);
});

test('eventfd calls on a closed fd are EBADF', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate());
  res.close(fd);
  assert.throws(() => eventfdRead(fd), (e: unknown) => e instanceof SysError && e.syscall === 'read(eventfd)' && e.errnoName === 'EBADF');
  assert.throws(() => eventfdWrite(fd), (e: unknown) => e instanceof SysError && e.errnoName === 'EBADF');
});

test('eventfdSignal: adds 1; on a saturated non-blocking counter returns false instead of throwing', (t) => {
  const res = new Resources(t);
  const fd = res.fd(eventfdCreate());
  assert.equal(eventfdSignal(fd), true);
  assert.equal(eventfdRead(fd), 1n);
  eventfdWrite(fd, 0xffff_ffff_ffff_fffen);
  assert.equal(eventfdSignal(fd), false);
  assert.equal(eventfdRead(fd), 0xffff_ffff_ffff_fffen, 'nothing was added');
});
