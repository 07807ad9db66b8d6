// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk through the in-process harness with the in-memory host (VIRTIO 1.3 §5.2).
 * Expected bytes are built by hand (`testing.ts` uses DataView, never the codecs under test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness, type HarnessOptions } from '../../device/harness.js';
import { VIRTQ_DESC_F_WRITE } from '../../spec/split-ring.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask } from '../../spec/virtio.js';
import { BlkDevice, type BlkOptions } from './index.js';
import { MemoryBlockHost } from './testing.js';
import { BlkDriver, STATUS_UNWRITTEN, concat, pattern, reqHeaderBytes, segmentBytes } from './testing.js';

const OK = 0;
const IOERR = 1;
const UNSUPP = 2;
const T_IN = 0;
const T_OUT = 1;
const T_GET_ID = 8;
const T_DISCARD = 11;
const T_WRITE_ZEROES = 13;
const F_SIZE_MAX = 1;
const F_SEG_MAX = 2;
const F_RO = 5;
const F_BLK_SIZE = 6;
const F_FLUSH = 9;
const F_TOPOLOGY = 10;
const F_CONFIG_WCE = 11;
const F_MQ = 12;
const F_DISCARD = 13;
const F_WRITE_ZEROES = 14;

interface Setup {
  host: MemoryBlockHost;
  dev: BlkDevice;
  h: DeviceHarness<BlkDevice>;
  d: BlkDriver<BlkDevice>;
}

/** A device over a MemoryBlockHost of `size` bytes (default 64 KiB = 128 sectors) in a 16 MiB guest. */
function setup(opts: Omit<BlkOptions, 'host'> & { host?: MemoryBlockHost; size?: number } = {}, harness: HarnessOptions = {}): Setup {
  const { size, host: given, ...rest } = opts;
  const host = given ?? new MemoryBlockHost(size ?? 64 * 1024);
  const dev = new BlkDevice({ host, ...rest });
  const h = new DeviceHarness(dev, { memorySize: 16 << 20, ...harness });
  return { host, dev, h, d: new BlkDriver(h) };
}

test('blk: offers VERSION_1, INDIRECT, EVENT_IDX, SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, CONFIG_WCE, DISCARD, WRITE_ZEROES', () => {
  const { dev } = setup();
  assert.equal(
    dev.offeredFeatures,
    featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, F_SIZE_MAX, F_SEG_MAX, F_BLK_SIZE, F_FLUSH, F_CONFIG_WCE, F_DISCARD, F_WRITE_ZEROES),
  );
  assert.equal(dev.deviceId, 2);
  assert.deepEqual(dev.queueMaxSizes, [256]);
  const extra = new BlkDevice({ host: new MemoryBlockHost(4096), numQueues: 3, topology: { physicalBlockExp: 3, alignmentOffset: 0, minIoSize: 1, optIoSize: 0 } });
  assert.equal(extra.offeredFeatures & featureMask(F_MQ, F_TOPOLOGY), featureMask(F_MQ, F_TOPOLOGY));
  assert.deepEqual(extra.queueMaxSizes, [256, 256, 256]);
  const plain = new BlkDevice({ host: new MemoryBlockHost(4096, { discard: false, writeZeroes: false }) });
  assert.equal(plain.offeredFeatures & featureMask(F_DISCARD, F_WRITE_ZEROES, F_MQ, F_RO, F_TOPOLOGY), 0n);
});

test('blk: config space holds every field at its §5.2.4 offset; any prefix or slice reads', () => {
  const host = new MemoryBlockHost((1 << 20) + 100);
  const { h } = setup(
    { host, blkSize: 4096, numQueues: 4, queueMaxSize: 128, topology: { physicalBlockExp: 3, alignmentOffset: 1, minIoSize: 2, optIoSize: 64 } },
    { queueSize: 128 },
  );
  const expected = new Uint8Array(60);
  const v = new DataView(expected.buffer);
  v.setBigUint64(0, 2048n, true); // capacity: floor((1 MiB + 100) / 512); the partial sector is not exposed
  v.setUint32(8, 1 << 20, true); // size_max
  v.setUint32(12, 126, true); // seg_max: min(queue, 128) - 2
  v.setUint32(20, 4096, true); // blk_size
  v.setUint8(24, 3); // physical_block_exp
  v.setUint8(25, 1); // alignment_offset
  v.setUint16(26, 2, true); // min_io_size
  v.setUint32(28, 64, true); // opt_io_size
  v.setUint8(32, 1); // writeback
  v.setUint16(34, 4, true); // num_queues
  v.setUint32(36, 32768, true); // max_discard_sectors
  v.setUint32(40, 16, true); // max_discard_seg
  v.setUint32(44, 8, true); // discard_sector_alignment = blk_size / 512
  v.setUint32(48, 32768, true); // max_write_zeroes_sectors
  v.setUint32(52, 16, true); // max_write_zeroes_seg
  v.setUint8(56, 1); // write_zeroes_may_unmap
  assert.deepEqual(h.runner.readConfig(0, 60), expected);
  assert.deepEqual(h.runner.readConfig(0, 57), expected.subarray(0, 57), 'QEMU 7.2 reads a 57-byte prefix');
  assert.deepEqual(h.runner.readConfig(0, 8), expected.subarray(0, 8));
  assert.deepEqual(h.runner.readConfig(32, 1), Uint8Array.of(1));
  assert.deepEqual(h.runner.readConfig(34, 2), Uint8Array.of(4, 0));
  assert.deepEqual(h.runner.readConfig(57, 3), Uint8Array.of(0, 0, 0));
  assert.throws(() => h.runner.readConfig(58, 3), { code: 'DEVICE_CONFIG_OUT_OF_RANGE' });
});

test('blk: config shows 0 in the discard/write-zeroes fields when they are not offered, and may_unmap follows the host', () => {
  const none = new BlkDevice({ host: new MemoryBlockHost(8192, { discard: false, writeZeroes: false }) });
  assert.deepEqual(none.readConfig(36, 24), new Uint8Array(24));
  const noUnmap = new BlkDevice({ host: new MemoryBlockHost(8192, { mayUnmap: false }) });
  assert.deepEqual(noUnmap.readConfig(56, 1), Uint8Array.of(0));
});

test('blk: write then read round trip at several offsets, including the last sector', () => {
  const { host, d } = setup({ size: 1 << 20 });
  for (const [sector, n] of [[0, 512], [7, 4096], [2040, 8 * 512], [2047, 512]] as const) {
    const data = pattern(n, sector + 1);
    const w = d.write(sector, data);
    assert.deepEqual([w.status, w.len], [OK, 1], `write at ${sector}: status OK, used length 1 (the status byte)`);
    assert.deepEqual(host.data.subarray(sector * 512, sector * 512 + n), data);
    const r = d.read(sector, n);
    assert.deepEqual([r.status, r.len], [OK, n + 1], `read at ${sector}: used length = data + status`);
    assert.deepEqual(r.data, data);
  }
  assert.deepEqual(host.calls.slice(0, 2), [
    { op: 'writev', offset: 0, length: 512 },
    { op: 'readv', offset: 0, length: 512 },
  ]);
  assert.deepEqual(host.calls.at(-1), { op: 'readv', offset: 2047 * 512, length: 512 });
  const m = d.h.device.metrics();
  assert.deepEqual([m.requests.in, m.requests.out, m.bytesRead, m.bytesWritten, m.flushes], [4, 4, 9216, 9216, 0]);
});

test('blk: a header split across two descriptors, and a header sharing its descriptor with data', () => {
  const { host, d } = setup();
  const data = pattern(1024, 9);
  const hdr = reqHeaderBytes(T_OUT, 3);
  const w = d.submit([{ out: hdr.subarray(0, 5) }, { out: hdr.subarray(5) }, { out: data }, { in: 1 }]);
  assert.equal(w.status, OK);
  assert.deepEqual(host.data.subarray(3 * 512, 5 * 512), data);
  const w2 = d.submit([{ out: concat(reqHeaderBytes(T_OUT, 10), data) }, { in: 1 }]);
  assert.equal(w2.status, OK);
  assert.deepEqual(host.data.subarray(10 * 512, 12 * 512), data);
  const rh = reqHeaderBytes(T_IN, 3);
  const r = d.submit([{ out: rh.subarray(0, 15) }, { out: rh.subarray(15) }, { in: 1024 }, { in: 1 }]);
  assert.deepEqual([r.status, r.len], [OK, 1025]);
  assert.deepEqual(r.data, data);
});

test('blk: data split across several descriptors, direct and through an indirect table', () => {
  for (const indirect of [false, true]) {
    const { host, d } = setup();
    const data = pattern(1536, indirect ? 2 : 1);
    const w = d.submit([{ out: reqHeaderBytes(T_OUT, 20) }, { out: data.subarray(0, 300) }, { out: data.subarray(300, 512) }, { out: data.subarray(512) }, { in: 1 }], { indirect });
    assert.equal(w.status, OK);
    assert.deepEqual(host.data.subarray(20 * 512, 23 * 512), data);
    const r = d.submit([{ out: reqHeaderBytes(T_IN, 20) }, { in: 100 }, { in: 1000 }, { in: 436 }, { in: 1 }], { indirect });
    assert.deepEqual([r.status, r.len], [OK, 1537]);
    assert.deepEqual(r.data, data);
  }
});

test('blk: the status byte may share the last data descriptor', () => {
  const { host, d } = setup();
  host.data.set(pattern(1024, 5), 0);
  const one = d.submit([{ out: reqHeaderBytes(T_IN, 0) }, { in: 1025 }]);
  assert.deepEqual([one.status, one.len], [OK, 1025]);
  assert.deepEqual(one.data, pattern(1024, 5));
  const split = d.submit([{ out: reqHeaderBytes(T_IN, 0) }, { in: 700 }, { in: 325 }]);
  assert.deepEqual([split.status, split.len], [OK, 1025]);
  assert.deepEqual(split.data, pattern(1024, 5));
  const noData = d.submit([{ out: reqHeaderBytes(T_IN, 0) }, { in: 1 }]);
  assert.deepEqual([noData.status, noData.len], [OK, 1], 'a zero-length read is legal');
});

test('blk: FLUSH calls the host flush and completes OK with used length 1', () => {
  const { host, d } = setup();
  const r = d.flush();
  assert.deepEqual([r.status, r.len], [OK, 1]);
  assert.equal(host.flushes, 1);
  // §5.2.6.1 "SHOULD NOT include any data": tolerated, the data is ignored.
  const withData = d.submit([{ out: reqHeaderBytes(4, 0) }, { out: new Uint8Array(512) }, { in: 1 }]);
  assert.equal(withData.status, OK);
  assert.equal(host.flushes, 2);
  assert.equal(host.dataCalls.length, 0);
  assert.equal(d.h.device.metrics().flushes, 2);
});

test('blk: GET_ID returns the serial NUL-padded to 20 bytes (no NUL at exactly 20), or a prefix for a short buffer', () => {
  const ascii = (s: string, n = 20) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < s.length && i < n; i++) b[i] = s.charCodeAt(i);
    return b;
  };
  const short = setup({ serial: 'avp-disk-0' }).d.getId();
  assert.deepEqual([short.status, short.len], [OK, 21]);
  assert.deepEqual(short.data, ascii('avp-disk-0'));
  const full = setup({ serial: 'ABCDEFGHIJKLMNOPQRST' }).d.getId();
  assert.deepEqual(full.data, ascii('ABCDEFGHIJKLMNOPQRST'));
  assert.ok(!full.data.includes(0), 'exactly 20 bytes: no NUL terminator');
  const { d } = setup({ serial: 'avp-disk-0' });
  const small = d.getId(8);
  assert.deepEqual([small.status, small.len], [OK, 9]);
  assert.deepEqual(small.data, ascii('avp-disk', 8));
  const big = d.getId(30);
  assert.deepEqual([big.status, big.len], [OK, 21], 'a longer buffer gets the 20 bytes');
  assert.deepEqual(big.data, concat(ascii('avp-disk-0'), new Uint8Array(10).fill(0xaa)));
  const none = setup().d.getId();
  assert.deepEqual([none.status, none.data], [OK, new Uint8Array(20)], 'no serial: 20 NUL bytes');
});

test('blk: DISCARD and WRITE_ZEROES zero their ranges and pass byte ranges (and unmap) to the host', () => {
  const { host, d } = setup();
  host.data.set(pattern(host.size, 3));
  const before = host.data.slice();
  const r = d.ranges(T_DISCARD, [segmentBytes(2, 3)]);
  assert.deepEqual([r.status, r.len], [OK, 1]);
  const z = d.ranges(T_WRITE_ZEROES, [segmentBytes(10, 1, 1), segmentBytes(20, 2, 0), segmentBytes(30, 0, 0)]);
  assert.equal(z.status, OK);
  assert.deepEqual(host.calls, [
    { op: 'discard', offset: 1024, length: 1536 },
    { op: 'writeZeroes', offset: 5120, length: 512, unmap: true },
    { op: 'writeZeroes', offset: 10240, length: 1024, unmap: false },
  ], 'a zero-sector segment reaches no host call');
  const expected = before.slice();
  expected.fill(0, 1024, 2560);
  expected.fill(0, 5120, 5632);
  expected.fill(0, 10240, 11264);
  assert.deepEqual(host.data, expected);
  const m = d.h.device.metrics();
  assert.deepEqual([m.requests.discard, m.requests.writeZeroes, m.discardSegments, m.writeZeroesSegments], [1, 1, 1, 2]);
});

test('blk: invalid requests get the expected status and never reach the host', () => {
  const { host, d } = setup({ maxDiscardSectors: 64 });
  const C = 128; // capacity in sectors
  const hdr = reqHeaderBytes;
  const cases: Array<[string, () => ReturnType<BlkDriver['submit']>, number]> = [
    ['IN at the capacity', () => d.read(C, 512), IOERR],
    ['IN straddling the end', () => d.read(C - 1, 1024), IOERR],
    ['IN at sector 2^53', () => d.read(2n ** 53n, 512), IOERR],
    ['IN at sector 2^64 - 1', () => d.read(2n ** 64n - 1n, 512), IOERR],
    ['IN at sector 2^53 - 1 (safe, huge)', () => d.read(2 ** 53 - 1, 512), IOERR],
    ['OUT whose end wraps past 2^64', () => d.write(2n ** 64n - 1n, new Uint8Array(1024)), IOERR],
    ['IN length not a multiple of 512', () => d.read(0, 100), IOERR],
    ['OUT length not a multiple of 512', () => d.write(0, new Uint8Array(513)), IOERR],
    ['IN with readable data after the header', () => d.submit([{ out: hdr(T_IN, 0) }, { out: new Uint8Array(512) }, { in: 512 }, { in: 1 }]), IOERR],
    ['OUT with writable data before the status', () => d.submit([{ out: hdr(T_OUT, 0) }, { out: new Uint8Array(512) }, { in: 512 }, { in: 1 }]), IOERR],
    ['GET_ID with readable data', () => d.submit([{ out: hdr(T_GET_ID, 0) }, { out: new Uint8Array(4) }, { in: 20 }, { in: 1 }]), IOERR],
    ['type 2 (legacy SCSI_CMD)', () => d.submit([{ out: hdr(2, 0) }, { in: 1 }]), UNSUPP],
    ['type 5 (legacy FLUSH_OUT)', () => d.submit([{ out: hdr(5, 0) }, { in: 1 }]), UNSUPP],
    ['GET_LIFETIME (not offered)', () => d.submit([{ out: hdr(10, 0) }, { in: 6 }, { in: 1 }]), UNSUPP],
    ['SECURE_ERASE (not offered)', () => d.ranges(14, [segmentBytes(0, 1)]), UNSUPP],
    ['OUT with the legacy BARRIER bit', () => d.submit([{ out: hdr(0x8000_0001, 0) }, { out: new Uint8Array(512) }, { in: 1 }]), UNSUPP],
    ['type 0xffffffff', () => d.submit([{ out: hdr(0xffff_ffff, 0) }, { in: 1 }]), UNSUPP],
    ['DISCARD without segments', () => d.ranges(T_DISCARD, []), IOERR],
    ['DISCARD with 15 data bytes', () => d.ranges(T_DISCARD, [segmentBytes(0, 1).subarray(0, 15)]), IOERR],
    ['DISCARD with 17 data bytes', () => d.ranges(T_DISCARD, [segmentBytes(0, 1), Uint8Array.of(0)]), IOERR],
    ['DISCARD with unmap set', () => d.ranges(T_DISCARD, [segmentBytes(0, 1, 1)]), UNSUPP],
    ['DISCARD with reserved flag bit 1', () => d.ranges(T_DISCARD, [segmentBytes(0, 1, 2)]), UNSUPP],
    ['WRITE_ZEROES with reserved flag bit 31', () => d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1, 0x8000_0001)]), UNSUPP],
    ['WRITE_ZEROES: a reserved flag wins over a bad range', () => d.ranges(T_WRITE_ZEROES, [segmentBytes(C, 1), segmentBytes(0, 1, 4)]), UNSUPP],
    ['DISCARD with 17 segments (max 16)', () => d.ranges(T_DISCARD, Array.from({ length: 17 }, (_, i) => segmentBytes(i, 1))), UNSUPP],
    ['DISCARD segment above max_discard_sectors', () => d.ranges(T_DISCARD, [segmentBytes(0, 65)]), IOERR],
    ['DISCARD past the capacity', () => d.ranges(T_DISCARD, [segmentBytes(C - 1, 2)]), IOERR],
    ['DISCARD at sector 2^64 - 1', () => d.ranges(T_DISCARD, [segmentBytes(2n ** 64n - 1n, 1)]), IOERR],
    ['WRITE_ZEROES past the capacity', () => d.ranges(T_WRITE_ZEROES, [segmentBytes(C, 1)]), IOERR],
    ['DISCARD: good segment then bad one (no partial work)', () => d.ranges(T_DISCARD, [segmentBytes(0, 1), segmentBytes(C, 1)]), IOERR],
    ['DISCARD with writable data before the status', () => d.submit([{ out: hdr(T_DISCARD, 0) }, { out: segmentBytes(0, 1) }, { in: 16 }, { in: 1 }]), IOERR],
  ];
  host.data.fill(0x5a);
  for (const [name, run, status] of cases) {
    const r = run();
    assert.deepEqual([r.status, r.len], [status, 1], name);
  }
  assert.deepEqual(host.calls, [], 'no host call of any kind');
  assert.ok(host.data.every((b) => b === 0x5a), 'image untouched');
  const m = d.h.device.metrics();
  const unsupp = cases.filter((c) => c[2] === UNSUPP).length;
  assert.deepEqual([m.errors.ioerr, m.errors.unsupp, m.errors.host, m.malformed], [cases.length - unsupp, unsupp, 0, 0]);
  assert.equal(m.requests.other, 6);
  assert.ok(d.h.logs.some((l) => l.startsWith('warn: blk: queue 0: IN sector 128: sectors [128, +1) pass the capacity of 128 sectors; IOERR')), d.h.logs.join('\n'));
});

test('blk: a request must start on a blk_size boundary (as QEMU)', () => {
  const { host, d } = setup({ blkSize: 4096 });
  assert.equal(d.read(1, 4096).status, IOERR);
  assert.equal(d.write(4, new Uint8Array(4096)).status, IOERR);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(12, 8)]).status, IOERR);
  assert.deepEqual(host.calls, []);
  assert.equal(d.read(8, 4096).status, OK);
});

test('blk: DISCARD/WRITE_ZEROES not offered complete UNSUPP without touching the host', () => {
  const { host, d, dev } = setup({ discard: false, writeZeroes: false });
  assert.equal(dev.offeredFeatures & featureMask(F_DISCARD, F_WRITE_ZEROES), 0n);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1)]).status, UNSUPP);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1)]).status, UNSUPP);
  assert.deepEqual(host.calls, []);
});

test('blk: chains too short for a request: used length 0 without a writable byte, IOERR without a header', () => {
  const { host, d } = setup();
  const noWritable = d.submit([{ out: reqHeaderBytes(T_IN, 0) }, { out: new Uint8Array(512) }]);
  assert.deepEqual([noWritable.len, noWritable.status], [0, STATUS_UNWRITTEN]);
  const shortHeader = d.submit([{ out: reqHeaderBytes(T_IN, 0).subarray(0, 10) }, { in: 1 }]);
  assert.deepEqual([shortHeader.len, shortHeader.status], [1, IOERR]);
  const nothingReadable = d.submit([{ in: 513 }]);
  assert.deepEqual([nothingReadable.len, nothingReadable.status], [1, IOERR]);
  assert.ok(nothingReadable.data.every((b) => b === STATUS_UNWRITTEN), 'only the status byte is written');
  assert.deepEqual(host.calls, []);
  const m = d.h.device.metrics();
  assert.deepEqual([m.malformed, m.errors.ioerr], [3, 2]);
  assert.equal(d.read(0, 512).status, OK, 'the queue keeps serving');
});

test('blk: read-only: offers RO, refuses writes, discards and write-zeroes with IOERR, host untouched', () => {
  for (const host of [new MemoryBlockHost(8192, { readOnly: true }), new MemoryBlockHost(8192)]) {
    host.data.set(pattern(8192, 4));
    const { dev, d } = setup({ host, readOnly: true });
    assert.ok(dev.offeredFeatures & featureBit(F_RO));
    assert.equal(dev.offeredFeatures & featureMask(F_DISCARD, F_WRITE_ZEROES), 0n, 'nothing to discard on a read-only disk');
    assert.deepEqual([d.write(0, new Uint8Array(512)).status, d.write(0, new Uint8Array(0)).status], [IOERR, IOERR]);
    assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1)]).status, IOERR);
    assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1)]).status, IOERR);
    assert.deepEqual(host.calls, []);
    const r = d.read(1, 512);
    assert.deepEqual([r.status, r.data], [OK, pattern(8192, 4).subarray(512, 1024)]);
    assert.equal(d.flush().status, OK);
    assert.deepEqual(host.data, pattern(8192, 4));
    assert.deepEqual(host.dataCalls, [{ op: 'readv', offset: 512, length: 512 }]);
  }
  assert.throws(() => new BlkDevice({ host: new MemoryBlockHost(512, { readOnly: true }), readOnly: false }), { code: 'BLK_BAD_OPTION' });
});

test('blk: writeback by default; writing 0 to writeback makes every write and write-zeroes flush', () => {
  const { host, d, h } = setup();
  assert.deepEqual(h.runner.readConfig(32, 1), Uint8Array.of(1));
  d.write(0, new Uint8Array(512));
  assert.equal(host.flushes, 0, 'writeback: durable only at FLUSH');
  h.runner.writeConfig(32, Uint8Array.of(0));
  assert.deepEqual(h.runner.readConfig(32, 1), Uint8Array.of(0));
  assert.equal(h.device.metrics().writeback, 0);
  host.calls.length = 0;
  assert.equal(d.write(1, new Uint8Array(1024)).status, OK);
  assert.deepEqual(host.calls, [{ op: 'writev', offset: 512, length: 1024 }, { op: 'flush' }], 'flushed after the write, before completion');
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1)]).status, OK);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1)]).status, OK);
  assert.deepEqual(host.calls.slice(2), [{ op: 'writeZeroes', offset: 0, length: 512, unmap: false }, { op: 'flush' }, { op: 'discard', offset: 0, length: 512 }]);
  h.runner.writeConfig(30, Uint8Array.of(9, 9, 1, 9)); // a wider write covering offset 32
  assert.deepEqual(h.runner.readConfig(32, 1), Uint8Array.of(1));
  const flushes = host.flushes;
  d.write(0, new Uint8Array(512));
  assert.equal(host.flushes, flushes, 'back to writeback');
  h.runner.writeConfig(0, new Uint8Array(8).fill(0xff)); // capacity is read-only
  assert.deepEqual(h.runner.readConfig(0, 8), Uint8Array.of(128, 0, 0, 0, 0, 0, 0, 0));
});

test('blk: cache mode follows the negotiated features (§5.2.5, §5.2.6.2)', () => {
  const all = new BlkDevice({ host: new MemoryBlockHost(8192) }).offeredFeatures;
  const without = (...bits: number[]) => all & ~featureMask(...bits);
  // FLUSH without CONFIG_WCE: writeback, and the driver cannot change it.
  const a = setup({}, { features: without(F_CONFIG_WCE) });
  a.h.runner.writeConfig(32, Uint8Array.of(0));
  assert.deepEqual(a.h.runner.readConfig(32, 1), Uint8Array.of(1));
  a.d.write(0, new Uint8Array(512));
  assert.equal(a.host.flushes, 0);
  assert.ok(a.h.logs.some((l) => l.includes('CONFIG_WCE was not negotiated')));
  // Neither: every write completes stable.
  const b = setup({}, { features: without(F_CONFIG_WCE, F_FLUSH) });
  assert.deepEqual(b.h.runner.readConfig(32, 1), Uint8Array.of(0));
  b.d.write(0, new Uint8Array(512));
  assert.equal(b.host.flushes, 1);
  // CONFIG_WCE without FLUSH: "the device MUST initialize writeback to 0".
  const c = setup({}, { features: without(F_FLUSH) });
  assert.deepEqual(c.h.runner.readConfig(32, 1), Uint8Array.of(0));
  c.d.write(0, new Uint8Array(512));
  assert.equal(c.host.flushes, 1);
  // The writethrough option starts in writethrough.
  const e = setup({ writeback: false });
  assert.deepEqual(e.h.runner.readConfig(32, 1), Uint8Array.of(0));
  e.d.write(0, new Uint8Array(512));
  assert.equal(e.host.flushes, 1);
});

test('blk: reset restores the initial cache mode', () => {
  const { h } = setup();
  h.runner.writeConfig(32, Uint8Array.of(0));
  h.runner.writeStatus(0);
  assert.deepEqual(h.device.readConfig(32, 1), Uint8Array.of(1));
});

test('blk: two queues are both served the same way', () => {
  const { host, d, h, dev } = setup({ numQueues: 2 });
  assert.ok(dev.offeredFeatures & featureBit(F_MQ));
  assert.deepEqual(h.runner.readConfig(34, 2), Uint8Array.of(2, 0));
  const data = pattern(2048, 8);
  assert.equal(d.write(4, data, 1).status, OK);
  const r = d.read(4, 2048, 0);
  assert.deepEqual([r.status, r.data], [OK, data]);
  assert.equal(d.flush(1).status, OK);
  assert.deepEqual(h.notifications, [1, 2], 'each queue interrupts for its own completions');
  assert.equal(host.flushes, 1);
  h.device.queueNotify(7); // no such queue: ignored
  const m = dev.metrics();
  assert.deepEqual([m.queues, m.notifications, m.suppressedNotifications, m.requests.in, m.requests.out], [2, 3, 0, 1, 1]);
});

test('blk: a host that throws turns into IOERR with one log line, and the device keeps serving', () => {
  const { host, d, h } = setup();
  host.data.set(pattern(512, 6), 0);
  for (const op of ['readv', 'writev', 'flush', 'discard', 'writeZeroes'] as const) host.failing.add(op);
  assert.equal(d.read(0, 512).status, IOERR);
  assert.deepEqual(d.read(0, 512).len, 1, 'no data counted as written');
  assert.equal(d.write(0, new Uint8Array(512)).status, IOERR);
  assert.equal(d.flush().status, IOERR);
  assert.equal(d.ranges(T_DISCARD, [segmentBytes(0, 1), segmentBytes(1, 1)]).status, IOERR);
  assert.equal(d.ranges(T_WRITE_ZEROES, [segmentBytes(0, 1)]).status, IOERR);
  assert.equal(host.calls.filter((c) => c.op === 'discard').length, 1, 'stops at the first failing segment');
  const errors = h.logs.filter((l) => l.startsWith('error: blk: queue 0:'));
  assert.equal(errors.length, 6);
  assert.ok(errors[0]?.includes('read at sector 0 failed: injected readv failure'), errors[0]);
  host.failing.clear();
  const r = d.read(0, 512);
  assert.deepEqual([r.status, r.data], [OK, pattern(512, 6)]);
  // A throw that is not even an Error.
  host.readv = () => {
    throw 'disk on fire';
  };
  assert.equal(d.read(0, 512).status, IOERR);
  // Writethrough: the write reached the host but the flush failed, so the write is not complete.
  host.failing.add('flush');
  h.runner.writeConfig(32, Uint8Array.of(0));
  assert.equal(d.write(0, new Uint8Array(512)).status, IOERR);
  const m = h.device.metrics();
  assert.deepEqual([m.errors.host, m.errors.ioerr, m.errors.internal], [8, 8, 0]);
});

test('blk: a chain the queue rejects is counted, and the next request is served', () => {
  const { d, h } = setup();
  const q = h.queue(0);
  q.addRaw([{ index: 0, desc: { addr: h.memory.totalSize - 4, len: 64, flags: VIRTQ_DESC_F_WRITE, next: 0 } }], -1);
  h.runner.kick(0);
  assert.deepEqual(q.popUsed(), { head: 0, len: 0, token: -1 });
  assert.equal(d.read(0, 512).status, OK);
  assert.equal(h.device.metrics().rejectedChains, 1);
});

test('blk: options are validated', () => {
  const host = new MemoryBlockHost(4096);
  const bad: Array<Omit<BlkOptions, 'host'>> = [
    { serial: 'x'.repeat(21) },
    { serial: 'caf\u00e9' },
    { serial: 'a\u0000b' },
    { numQueues: 0 },
    { numQueues: 0x10000 },
    { queueMaxSize: 100 },
    { blkSize: 1000 },
    { blkSize: 256 },
    { maxDiscardSeg: 257 },
    { maxWriteZeroesSectors: 0 },
    { topology: { physicalBlockExp: 256, alignmentOffset: 0, minIoSize: 0, optIoSize: 0 } },
  ];
  for (const opts of bad) assert.throws(() => new BlkDevice({ host, ...opts }), { code: 'BLK_BAD_OPTION' }, JSON.stringify(opts));
  assert.throws(() => new BlkDevice({ host: new MemoryBlockHost(4096, { discard: false }), discard: true }), { code: 'BLK_BAD_OPTION' });
  assert.throws(() => new BlkDevice({ host, readOnly: true, writeZeroes: true }), { code: 'BLK_BAD_OPTION' });
  assert.equal(new BlkDevice({ host, queueMaxSize: 4 }).readConfig(12, 1)[0], 2, 'seg_max = queue size - 2');
});
