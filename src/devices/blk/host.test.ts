// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk over a real image file (`FileBlockHost`) through the in-process harness, and the file
 * host's own I/O paths: vectored batching, short transfers, fallocate and its fallbacks, read-only.
 * fallocate is a fake that records calls (devices may not import sys, which owns the real one).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeviceHarness } from '../../device/harness.js';
import { featureBit } from '../../spec/virtio.js';
import { BlkDevice, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, FileBlockHost, type FileBlockHostOptions } from './index.js';
import { BlkDriver, pattern, segmentBytes } from './testing.js';

const OK = 0;
const IOERR = 1;
const T_DISCARD = 11;
const T_WRITE_ZEROES = 13;
const F_RO = 5;
const PUNCH = 0x02 | 0x01; // PUNCH_HOLE | KEEP_SIZE, from linux/falloc.h
const ZERO = 0x10 | 0x01; // ZERO_RANGE | KEEP_SIZE

/** A temp image of `size` bytes filled with pattern(size, 7); removed after the test. */
function tempImage(t: TestContext, size: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avp-blk-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, pattern(size, 7));
  return file;
}

function openHost(t: TestContext, file: string, opts: FileBlockHostOptions = {}): FileBlockHost {
  const host = new FileBlockHost(file, opts);
  t.after(() => host.close());
  return host;
}

function device(host: FileBlockHost, opts: { writeback?: boolean } = {}) {
  const dev = new BlkDevice({ host, ...opts });
  const h = new DeviceHarness(dev, { memorySize: 16 << 20 });
  return { dev, h, d: new BlkDriver(h) };
}

type FallocateCall = [fd: number, mode: number, offset: number, length: number];

/** A fallocate that records its calls and makes the range read as zeros (as the real one would). */
function fakeFallocate(calls: FallocateCall[], fail?: (mode: number) => unknown) {
  return (fd: number, mode: number, offset: number, length: number): void => {
    calls.push([fd, mode, offset, length]);
    const e = fail?.(mode);
    if (e !== undefined) throw e;
    fs.writeSync(fd, new Uint8Array(length), 0, length, offset);
  };
}

/** What sys's SysError looks like to a device: code SYS_CALL_FAILED and an errno name. */
function sysError(errnoName: string): Error {
  return Object.assign(new Error(`fallocate failed: ${errnoName}`), { code: 'SYS_CALL_FAILED', errnoName });
}

test('blk file: written data lands in the image at the right offsets, including the last sector, and reads back', (t) => {
  const file = tempImage(t, 1 << 20);
  const host = openHost(t, file);
  const { d, dev } = device(host);
  assert.equal(dev.capacity, 2048);
  const expected = pattern(1 << 20, 7);
  for (const [sector, n] of [[0, 512], [100, 8192], [2047, 512]] as const) {
    const data = pattern(n, sector + 11);
    assert.equal(d.write(sector, data).status, OK);
    expected.set(data, sector * 512);
    const r = d.read(sector, n);
    assert.deepEqual([r.status, r.len, r.data], [OK, n + 1, data]);
  }
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), expected);
});

test('blk file: FLUSH (and every write in writethrough mode) calls fdatasync on the image', (t) => {
  const host = openHost(t, tempImage(t, 64 * 1024));
  const sync = t.mock.method(fs, 'fdatasyncSync');
  const { d, h } = device(host);
  d.write(0, new Uint8Array(512));
  assert.equal(sync.mock.callCount(), 0, 'writeback: no sync per write');
  assert.equal(d.flush().status, OK);
  assert.equal(sync.mock.callCount(), 1);
  assert.equal(sync.mock.calls[0]?.arguments[0], host.fd);
  h.runner.writeConfig(32, Uint8Array.of(0));
  d.write(0, new Uint8Array(512));
  assert.equal(sync.mock.callCount(), 2, 'writethrough: synced before the write completes');
});

test('blk file: DISCARD punches a hole through the injected fallocate; WRITE_ZEROES punches only with unmap', (t) => {
  const file = tempImage(t, 64 * 1024);
  const calls: FallocateCall[] = [];
  const host = openHost(t, file, { fallocate: fakeFallocate(calls) });
  assert.deepEqual([FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE], [PUNCH, ZERO]);
  const { d, h } = device(host);
  assert.deepEqual(h.runner.readConfig(56, 1), Uint8Array.of(1), 'write_zeroes_may_unmap: holes can be punched');
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(2, 4)]).status, OK);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(10, 1, 1), segmentBytes(20, 2)]).status, OK);
  assert.deepEqual(calls, [
    [host.fd, PUNCH, 1024, 2048],
    [host.fd, PUNCH, 5120, 512],
    [host.fd, ZERO, 10240, 1024],
  ]);
  const expected = pattern(64 * 1024, 7);
  expected.fill(0, 1024, 3072);
  expected.fill(0, 5120, 5632);
  expected.fill(0, 10240, 11264);
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), expected);
  assert.deepEqual(d.read(2, 2048).data, new Uint8Array(2048), 'a discarded range reads back as zeros');
  assert.equal(fs.statSync(file).size, 64 * 1024, 'size kept');
});

test('blk file: without fallocate, discard and write-zeroes write zeros in bounded chunks', (t) => {
  const file = tempImage(t, 64 * 1024);
  const host = openHost(t, file, { zeroChunkSize: 4096 });
  const { d, h } = device(host);
  assert.deepEqual(h.runner.readConfig(56, 1), Uint8Array.of(0), 'write_zeroes_may_unmap: nothing can be deallocated');
  const writes = t.mock.method(fs, 'writeSync');
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(8, 20, 1)]).status, OK);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(40, 1)]).status, OK);
  const lengths = writes.mock.calls.map((c) => c.arguments[3]);
  assert.deepEqual(lengths, [4096, 4096, 2048, 512], '10240 bytes in chunks of at most 4096, then 512');
  const expected = pattern(64 * 1024, 7);
  expected.fill(0, 4096, 14336);
  expected.fill(0, 20480, 20992);
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), expected);
});

test('blk file: fallocate answering EOPNOTSUPP falls back to writing zeros, and that mode is not tried again', (t) => {
  const file = tempImage(t, 64 * 1024);
  const calls: FallocateCall[] = [];
  const host = openHost(t, file, { fallocate: fakeFallocate(calls, () => sysError('EOPNOTSUPP')) });
  const { d } = device(host);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 2)]).status, OK);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(4, 2)]).status, OK);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(8, 1, 1)]).status, OK);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(9, 1)]).status, OK);
  assert.deepEqual(calls.map((c) => c[1]), [PUNCH, ZERO], 'each unsupported mode tried once');
  const expected = pattern(64 * 1024, 7);
  expected.fill(0, 0, 1024);
  expected.fill(0, 2048, 3072);
  expected.fill(0, 4096, 5120);
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), expected);
  // A Node-style error code counts too.
  const calls2: FallocateCall[] = [];
  const host2 = openHost(t, file, { fallocate: fakeFallocate(calls2, () => Object.assign(new Error('nope'), { code: 'ENOTSUP' })) });
  host2.discard(0, 512);
  assert.equal(calls2.length, 1);
});

test('blk file: any other fallocate failure is IOERR with a log line', (t) => {
  const host = openHost(t, tempImage(t, 64 * 1024), { fallocate: fakeFallocate([], () => sysError('EIO')) });
  const { d, h, dev } = device(host);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1)]).status, IOERR);
  assert.ok(h.logs.some((l) => l.includes('discard at sector 0 failed: fallocate failed: EIO')), h.logs.join('\n'));
  assert.equal(dev.metrics().errors.host, 1);
});

test('blk file: read-only image: RO offered, every write refused, the file bytes and mtime unchanged', (t) => {
  const file = tempImage(t, 64 * 1024);
  const past = new Date('2001-02-03T04:05:06Z');
  fs.utimesSync(file, past, past);
  const before = fs.statSync(file).mtimeMs;
  const host = openHost(t, file, { readOnly: true });
  const sync = t.mock.method(fs, 'fdatasyncSync');
  const { d, dev } = device(host);
  assert.ok(dev.offeredFeatures & featureBit(F_RO));
  assert.equal(d.write(0, new Uint8Array(512)).status, IOERR);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1)]).status, IOERR);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1)]).status, IOERR);
  assert.deepEqual(d.read(3, 1024).data, pattern(64 * 1024, 7).subarray(1536, 2560));
  assert.equal(d.flush().status, OK);
  assert.equal(sync.mock.callCount(), 0, 'nothing to sync on a read-only image');
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), pattern(64 * 1024, 7));
  assert.equal(fs.statSync(file).mtimeMs, before);
  assert.throws(() => host.writev([new Uint8Array(512)], 0), { code: 'BLK_HOST_READ_ONLY' });
  assert.throws(() => fs.writeSync(host.fd, new Uint8Array(1), 0, 1, 0), { code: 'EBADF' }, 'the file is open O_RDONLY');
});

test('blk file: an image that shrank after it was opened: reading past the new end is IOERR', (t) => {
  const file = tempImage(t, 64 * 1024);
  const host = openHost(t, file);
  const { d, h } = device(host);
  fs.truncateSync(file, 32 * 1024);
  assert.equal(d.read(64, 512).status, IOERR);
  assert.ok(h.logs.some((l) => l.includes('the image ended')), h.logs.join('\n'));
  assert.equal(d.read(0, 512).status, OK);
});

test('blk file host: more than IOV_MAX segments go out in batches of at most 1024', (t) => {
  const host = openHost(t, tempImage(t, 8192));
  const reads = t.mock.method(fs, 'readvSync');
  const segs = Array.from({ length: 3000 }, () => new Uint8Array(2));
  host.readv(segs, 100);
  assert.deepEqual(reads.mock.calls.map((c) => (c.arguments[1] as unknown[]).length), [1024, 1024, 952]);
  assert.deepEqual(Buffer.concat(segs), Buffer.from(pattern(8192, 7).subarray(100, 6100)));
  const writes = t.mock.method(fs, 'writevSync');
  host.writev(Array.from({ length: 1025 }, () => Uint8Array.of(9)), 0);
  assert.equal(writes.mock.callCount(), 2);
  assert.ok(new Uint8Array(fs.readFileSync(host.path)).subarray(0, 1025).every((b) => b === 9));
});

test('blk file host: short transfers resume where they stopped', (t) => {
  const host = openHost(t, tempImage(t, 8192));
  const real = fs.readvSync;
  // At most 100 bytes of the first segment per call, as a signal-interrupted preadv might do.
  t.mock.method(fs, 'readvSync', (fd: number, bufs: NodeJS.ArrayBufferView[], pos: number) => {
    const first = bufs[0] as Uint8Array;
    return real(fd, [first.subarray(0, Math.min(100, first.byteLength))], pos);
  });
  const a = new Uint8Array(300);
  const b = new Uint8Array(1000);
  host.readv([a, new Uint8Array(0), b], 1000);
  assert.deepEqual(Buffer.concat([a, b]), Buffer.from(pattern(8192, 7).subarray(1000, 2300)));
});

test('blk file host: refuses a non-regular file, bad options, and ranges outside the image', (t) => {
  const file = tempImage(t, 4096);
  assert.throws(() => new FileBlockHost('/dev/null'), { code: 'BLK_HOST_NOT_A_FILE' }, 'a character device');
  assert.throws(() => new FileBlockHost(path.dirname(file), { readOnly: true }), { code: 'BLK_HOST_NOT_A_FILE' }, 'a directory');
  assert.throws(() => new FileBlockHost(file, { zeroChunkSize: 0 }), { code: 'BLK_BAD_OPTION' });
  assert.throws(() => new FileBlockHost(path.join(path.dirname(file), 'missing.img')), { code: 'ENOENT' });
  const host = openHost(t, file);
  assert.throws(() => host.readv([new Uint8Array(1)], 4096), { code: 'BLK_HOST_OUT_OF_RANGE' });
  assert.throws(() => host.discard(4000, 100), { code: 'BLK_HOST_OUT_OF_RANGE' });
  assert.throws(() => host.writeZeroes(-1, 1, false), { code: 'BLK_HOST_OUT_OF_RANGE' });
  host.close();
  host.close(); // idempotent
  assert.equal(host.fd, -1);
});
