// SPDX-License-Identifier: Apache-2.0
/** memfdCreate, mmapShared, munmap, views and the MAX_VIEW_BYTES guard (including > 4 GiB). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, readSync, writeSync } from 'node:fs';
import { SysError, SysUsageError } from './errors.js';
import { F_SEAL_SEAL, F_SEAL_SHRINK, MAX_VIEW_BYTES, fdFileSize, ftruncate, getSeals, mapViews, memfdCreate, mmapShared, munmap, sealAgainstShrink } from './memory.js';
import { socketPair } from './socket.js';
import type { Mapping } from './memory.js';
import { Resources, hasCloexec } from './testkit.js';

const PAGE = 4096;

test('memfdCreate makes a CLOEXEC file of the requested size', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 3 * PAGE));
  assert.equal(fstatSync(fd).size, 3 * PAGE);
  assert.ok(hasCloexec(fd));
});

test('a shared mapping and the file see each other\'s writes', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 2 * PAGE));
  const m = res.mapping(mmapShared(fd, 2 * PAGE));
  assert.equal(m.length, 2 * PAGE);
  assert.equal(typeof m.address, 'bigint');
  assert.equal(m.buffer.byteLength, 2 * PAGE);
  assert.equal(m.buffer, m.buffer, 'the same ArrayBuffer on every access');
  new Uint8Array(m.buffer)[PAGE + 1] = 0x77;
  const out = Buffer.alloc(1);
  readSync(fd, out, 0, 1, PAGE + 1);
  assert.equal(out[0], 0x77);
  writeSync(fd, Buffer.from([0x99]), 0, 1, 3);
  assert.equal(new Uint8Array(m.buffer)[3], 0x99);
});

test('a mapping at a page offset starts at that offset of the file', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 3 * PAGE));
  writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, 2 * PAGE);
  const m = res.mapping(mmapShared(fd, PAGE, 2 * PAGE));
  assert.deepEqual([...new Uint8Array(m.buffer, 0, 3)], [1, 2, 3]);
});

test('views: sub-ranges alias the mapping, out-of-range views are refused', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 3 * PAGE));
  const m = res.mapping(mmapShared(fd, 3 * PAGE));
  const sub = new Uint8Array(m.view(PAGE, 16));
  sub[2] = 5;
  assert.equal(new Uint8Array(m.buffer)[PAGE + 2], 5);
  assert.equal(m.view(3 * PAGE, 0).byteLength, 0);
  assert.throws(() => m.view(3 * PAGE - 1, 2), SysUsageError);
  assert.throws(() => m.view(-1, 1), SysUsageError);
  assert.throws(() => m.view(0.5, 1), SysUsageError);

  const chunks = mapViews(m, PAGE + 100);
  assert.deepEqual(chunks.map((c) => [c.offset, c.buffer.byteLength]), [[0, PAGE + 100], [PAGE + 100, PAGE + 100], [2 * PAGE + 200, PAGE - 200]]);
  const last = chunks[2]?.buffer;
  assert.ok(last);
  new Uint8Array(last)[0] = 0xee;
  assert.equal(new Uint8Array(m.buffer)[2 * PAGE + 200], 0xee);
  assert.throws(() => mapViews(m, 0), SysUsageError);
  assert.throws(() => mapViews(m, MAX_VIEW_BYTES + 1), SysUsageError);
});

test('munmap closes the mapping: no new views, a second munmap is a no-op', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', PAGE));
  const m = mmapShared(fd, PAGE);
  assert.equal(m.closed, false);
  munmap(m);
  assert.equal(m.closed, true);
  assert.throws(() => m.buffer, SysUsageError);
  assert.throws(() => m.view(0, 1), SysUsageError);
  munmap(m);
  const fake: Mapping = { address: 0x1000n, length: PAGE, buffer: new ArrayBuffer(0), closed: false, view: () => new ArrayBuffer(0) };
  assert.throws(() => munmap(fake), SysUsageError);
});

test('mmap errors carry errno names', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 2 * PAGE));
  assert.throws(() => mmapShared(fd, PAGE, 100), (e: unknown) => e instanceof SysError && e.syscall === 'mmap' && e.errnoName === 'EINVAL');
  assert.throws(() => mmapShared(fd, 0), SysUsageError);
  assert.throws(() => mmapShared(1 << 20, PAGE), (e: unknown) => e instanceof SysError && e.errnoName === 'EBADF');
});

test('a mapping above 4 GiB: one view is refused (not a process abort), mapViews covers it', (t) => {
  const res = new Resources(t);
  // Sparse: tmpfs allocates only the pages that are touched.
  const size = MAX_VIEW_BYTES + 2 * PAGE;
  const fd = res.fd(memfdCreate('avp-big', size));
  const m = res.mapping(mmapShared(fd, size));
  assert.throws(() => m.buffer, SysUsageError);
  assert.throws(() => m.view(0, MAX_VIEW_BYTES + 1), SysUsageError);
  const whole4g = m.view(0, MAX_VIEW_BYTES);
  assert.equal(whole4g.byteLength, MAX_VIEW_BYTES);
  new Uint8Array(whole4g)[MAX_VIEW_BYTES - 1] = 0x11;

  const chunks = mapViews(m);
  assert.deepEqual(chunks.map((c) => [c.offset, c.buffer.byteLength]), [[0, MAX_VIEW_BYTES], [MAX_VIEW_BYTES, 2 * PAGE]]);
  const tail = chunks[1]?.buffer;
  assert.ok(tail);
  new Uint8Array(tail)[2 * PAGE - 1] = 0x22;
  const out = Buffer.alloc(2);
  readSync(fd, out, 0, 1, MAX_VIEW_BYTES - 1);
  readSync(fd, out, 1, 1, size - 1);
  assert.deepEqual([...out], [0x11, 0x22]);
});

test('fdFileSize reports a memfd\'s size and a non-file as not regular', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 5 * PAGE));
  assert.deepEqual(fdFileSize(fd), { regular: true, size: 5 * PAGE });
  ftruncate(fd, PAGE);
  assert.deepEqual(fdFileSize(fd), { regular: true, size: PAGE });
  const [a, b] = res.fds(socketPair());
  assert.deepEqual(fdFileSize(a), { regular: false, size: 0 });
  void b;
});

test('sealAgainstShrink: a sealable memfd gets F_SEAL_SHRINK and can no longer shrink, but still grow', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', 4 * PAGE, { allowSealing: true }));
  assert.equal(getSeals(fd), 0);
  assert.equal(sealAgainstShrink(fd), true);
  assert.equal(getSeals(fd), F_SEAL_SHRINK);
  assert.throws(() => ftruncate(fd, PAGE), (e: unknown) => e instanceof SysError && e.errnoName === 'EPERM');
  ftruncate(fd, 8 * PAGE);
  assert.equal(sealAgainstShrink(fd), true, 'already sealed: still true');
});

test('sealAgainstShrink: false for a memfd made without MFD_ALLOW_SEALING and for a non-shmem fd', (t) => {
  const res = new Resources(t);
  const fd = res.fd(memfdCreate('avp-test', PAGE));
  assert.equal(getSeals(fd), F_SEAL_SEAL);
  assert.equal(sealAgainstShrink(fd), false);
  const [a] = res.fds(socketPair());
  assert.equal(getSeals(a), null);
  assert.equal(sealAgainstShrink(a), false);
});
