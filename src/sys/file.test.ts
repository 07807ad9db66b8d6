// SPDX-License-Identifier: Apache-2.0
/** fallocate: punch hole and zero range on a real file; size kept; errors named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SysError, SysUsageError } from './errors.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, fallocate } from './file.js';
import { memfdCreate } from './memory.js';
import { Resources } from './testkit.js';

const BLOCK = 4096;

/** A temp file of `blocks` blocks filled with 0xab. */
function filledFile(res: Resources, blocks: number): number {
  const fd = res.fd(openSync(join(res.tempDir(), 'image'), 'w+'));
  writeSync(fd, Buffer.alloc(blocks * BLOCK, 0xab), 0, blocks * BLOCK, 0);
  return fd;
}

function readAll(fd: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  assert.equal(readSync(fd, out, 0, length, 0), length);
  return out;
}

function assertRegions(data: Buffer, zeroFrom: number, zeroTo: number): void {
  assert.ok(data.subarray(0, zeroFrom).every((b) => b === 0xab), 'bytes before the range are kept');
  assert.ok(data.subarray(zeroFrom, zeroTo).every((b) => b === 0), 'the range reads as zeros');
  assert.ok(data.subarray(zeroTo).every((b) => b === 0xab), 'bytes after the range are kept');
}

test('punch hole: the range reads as zeros, the file size is unchanged', (t) => {
  const res = new Resources(t);
  const fd = filledFile(res, 4);
  const blocksBefore = fstatSync(fd).blocks;
  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BLOCK, 2 * BLOCK);
  assert.equal(fstatSync(fd).size, 4 * BLOCK);
  assert.ok(fstatSync(fd).blocks < blocksBefore, 'the hole frees blocks');
  assertRegions(readAll(fd, 4 * BLOCK), BLOCK, 3 * BLOCK);
});

test('punch hole past the end with KEEP_SIZE does not grow the file', (t) => {
  const res = new Resources(t);
  const fd = filledFile(res, 2);
  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BLOCK, 10 * BLOCK);
  assert.equal(fstatSync(fd).size, 2 * BLOCK);
  assertRegions(readAll(fd, 2 * BLOCK), BLOCK, 2 * BLOCK);
});

test('zero range: an unaligned range reads as zeros, the size is unchanged', (t) => {
  const res = new Resources(t);
  const fd = filledFile(res, 3);
  fallocate(fd, FALLOC_FL_ZERO_RANGE, 100, BLOCK + 50);
  assert.equal(fstatSync(fd).size, 3 * BLOCK);
  assertRegions(readAll(fd, 3 * BLOCK), 100, BLOCK + 150);
});

test('fallocate errors: PUNCH_HOLE without KEEP_SIZE is EOPNOTSUPP, bad fd is EBADF, bad range refused', (t) => {
  const res = new Resources(t);
  const fd = filledFile(res, 1);
  const named = (name: string) => (e: unknown) => e instanceof SysError && e.syscall === 'fallocate' && e.errnoName === name;
  assert.throws(() => fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, BLOCK), named('EOPNOTSUPP'));
  const memfd = res.fd(memfdCreate('avp-test', BLOCK));
  res.close(memfd);
  assert.throws(() => fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, BLOCK), named('EBADF'));
  assert.throws(() => fallocate(fd, 0, 0, 0), SysUsageError);
  assert.throws(() => fallocate(fd, 0, -1, 1), SysUsageError);
});
