// SPDX-License-Identifier: Apache-2.0
/** Manifest sizes: VM memory in MiB, blk sizes in bytes, binary multiples, and what is refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diskBytes, formatBytes, memoryMiB } from './units.js';

test('memoryMiB: numbers are MiB; units are binary; fractions of a MiB are refused', () => {
  assert.equal(memoryMiB(256), 256);
  assert.equal(memoryMiB('256M'), 256);
  assert.equal(memoryMiB('1G'), 1024);
  assert.equal(memoryMiB('1gib'), 1024);
  assert.equal(memoryMiB('2048 KiB'), 2);
  assert.equal(memoryMiB('1000K'), undefined);
  assert.equal(memoryMiB('1.5G'), undefined);
  assert.equal(memoryMiB('256'), undefined, 'a string needs a unit');
  assert.equal(memoryMiB(1.5), undefined);
});

test('diskBytes: numbers are bytes; units are binary', () => {
  assert.equal(diskBytes(4096), 4096);
  assert.equal(diskBytes('64M'), 64 * 1024 * 1024);
  assert.equal(diskBytes('1T'), 2 ** 40);
  assert.equal(diskBytes('8k'), 8192);
  assert.equal(diskBytes('x'), undefined);
});

test('formatBytes', () => {
  assert.equal(formatBytes(64 * 2 ** 20), '64 MiB');
  assert.equal(formatBytes(2 ** 30), '1 GiB');
  assert.equal(formatBytes(1536), '1536 bytes');
});
