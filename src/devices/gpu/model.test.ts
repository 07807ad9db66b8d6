// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu model through the in-process harness: every 2D command's success and error paths,
 * pixels copied from scattered backing pages and seen in PNG snapshots, the resource budget,
 * fences, the cursor queue, EDID, and config. The display socket and the control socket have
 * their own tests (display-socket.test.ts, ../control-socket.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlatGuestMemory } from '../../memory/guest-memory.js';
import { GpuDevice, type GpuOptions } from './model.js';
import { decodePng } from './pixels.js';
import { GpuDriver, MemoryGpuHost, gpuRequest, memEntries } from './testing.js';

const OK = 0x1100;
const ERR = { UNSPEC: 0x1200, OOM: 0x1201, SCANOUT: 0x1202, RESOURCE: 0x1203, PARAM: 0x1205 };
const C = { INFO: 0x100, CREATE: 0x101, UNREF: 0x102, SCANOUT: 0x103, FLUSH: 0x104, TRANSFER: 0x105, ATTACH: 0x106, DETACH: 0x107, EDID: 0x10a };

function device(o: Partial<GpuOptions> = {}, host = new MemoryGpuHost()): GpuDevice {
  return new GpuDevice({ scanouts: 1, width: 64, height: 48, edid: true, maxResources: 16, maxHostBytes: 1 << 20, snapshotDir: '/snap', host, ...o });
}

/** The pixel the test pattern puts at byte `i` of a B8G8R8X8 backing. */
const fill = (i: number) => (i % 4 === 3 ? 0 : (i * 13 + (i >> 8)) & 0xff);

/** Creates resource `id` (`w` × `h`, B8G8R8X8), backs it with scattered pages, shows it on scanout 0. */
function framebuffer(d: GpuDriver, id: number, w: number, h: number, pageSize = 100) {
  const backing = d.scatteredBacking(w * h * 4, pageSize, fill);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [id, 2, w, h])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [id, backing.entries.length], memEntries(backing.entries))).type, OK);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, w, h, 0, id])).type, OK);
  return backing;
}

/** RGB of pixel (x, y) of a B8G8R8X8 image given as its bytes. */
function rgbAt(bgrx: Uint8Array, w: number, x: number, y: number): [number, number, number] {
  const o = (y * w + x) * 4;
  return [bgrx[o + 2] ?? -1, bgrx[o + 1] ?? -1, bgrx[o] ?? -1];
}

test('gpu: config reports num_scanouts; events_clear clears events_read; num_capsets 0', () => {
  const d = new GpuDriver(device({ scanouts: 3 }));
  const cfg = new DataView(d.h.runner.readConfig(0, 16).buffer);
  assert.equal(cfg.getUint32(8, true), 3);
  assert.equal(cfg.getUint32(12, true), 0);
  assert.equal(cfg.getUint32(0, true), 0);
  d.h.runner.writeConfig(4, Uint8Array.of(1, 0, 0, 0));
  assert.equal(new DataView(d.h.runner.readConfig(0, 4).buffer).getUint32(0, true), 0);
});

test('gpu: GET_DISPLAY_INFO gives each scanout its mode, enabled, and nothing past num_scanouts', () => {
  const d = new GpuDriver(device({ scanouts: 2, width: 800, height: 480 }));
  const r = d.cmd(gpuRequest(C.INFO), 408);
  assert.equal(r.type, 0x1101);
  assert.equal(r.usedLen, 408);
  const v = new DataView(r.body.buffer);
  for (let i = 0; i < 16; i++) {
    const o = 24 * i;
    const want = i < 2 ? [0, 0, 800, 480, 1] : [0, 0, 0, 0, 0];
    assert.deepEqual([0, 4, 8, 12, 16].map((k) => v.getUint32(o + k, true)), want, `scanout ${i}`);
  }
});

test('gpu: GET_EDID gives a checksummed EDID whose preferred timing is the scanout size; a bad scanout is refused', () => {
  const d = new GpuDriver(device({ scanouts: 1, width: 1280, height: 720 }));
  const r = d.cmd(gpuRequest(C.EDID, [0, 0]), 1056);
  assert.equal(r.type, 0x1104);
  const size = new DataView(r.body.buffer).getUint32(0, true);
  assert.equal(size, 128);
  const e = r.body.subarray(8, 8 + 128);
  assert.deepEqual([...e.subarray(0, 8)], [0, 255, 255, 255, 255, 255, 255, 0]);
  assert.equal(e.reduce((s, b) => s + b, 0) % 256, 0, 'checksum');
  // Detailed timing descriptor 1 at 54: active width in bytes 56 and 58 (high nibble), height in 59 and 61.
  assert.equal((e[56] ?? 0) | (((e[58] ?? 0) >> 4) << 8), 1280);
  assert.equal((e[59] ?? 0) | (((e[61] ?? 0) >> 4) << 8), 720);
  assert.equal(d.cmd(gpuRequest(C.EDID, [1, 0]), 1056).type, ERR.PARAM);
});

test('gpu: without EDID negotiated, GET_EDID is ERR_UNSPEC and the feature is not offered with edid off', () => {
  const dev = device({ edid: false });
  assert.equal(dev.offeredFeatures & 2n, 0n);
  const d = new GpuDriver(dev);
  assert.equal(d.cmd(gpuRequest(C.EDID, [0, 0])).type, ERR.UNSPEC);
});

test('gpu: pixels from scattered backing pages reach the snapshot exactly (whole and partial transfers)', () => {
  const host = new MemoryGpuHost();
  const dev = device({}, host);
  const d = new GpuDriver(dev);
  const w = 64;
  const h = 48;
  const { contents } = framebuffer(d, 1, w, h);
  // A partial transfer first (offset x·4 + y·pitch, as Linux sends), then check only that part.
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [8, 4, 10, 3, 8 * 4 + 4 * w * 4, 0, 1, 0])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.FLUSH, [0, 0, w, h, 1, 0])).type, OK);
  let png = decodePng(Buffer.from(host.files.get(dev.snapshot(0).path) ?? []));
  const at = (x: number, y: number) => [...png.rgba.subarray((y * w + x) * 4, (y * w + x) * 4 + 4)];
  assert.deepEqual(at(8, 4), [...rgbAt(contents, w, 8, 4), 255]);
  assert.deepEqual(at(17, 6), [...rgbAt(contents, w, 17, 6), 255]);
  assert.deepEqual(at(18, 6), [0, 0, 0, 255], 'outside the transferred rect the resource is still zero');
  assert.deepEqual(at(8, 7), [0, 0, 0, 255]);
  // The whole image.
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, w, h, 0, 0, 1, 0])).type, OK);
  png = decodePng(Buffer.from(host.files.get(dev.snapshot(0).path) ?? []));
  assert.equal(png.width, w);
  assert.equal(png.height, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.deepEqual(at(x, y), [...rgbAt(contents, w, x, y), 255], `pixel ${x},${y}`);
  const m = dev.metrics();
  assert.equal(m.resources.transfers, 2);
  assert.equal(m.scanouts[0]?.frames, 1);
  assert.equal(m.scanouts[0]?.damagePixels, w * h);
});

test('gpu: each format is converted to the right colours in a snapshot', () => {
  // Byte positions of R, G, B in each format (the X/A byte gets 0x77).
  const layouts: Array<[number, number[]]> = [
    [1, [2, 1, 0, 3]],
    [2, [2, 1, 0, 3]],
    [3, [1, 2, 3, 0]],
    [4, [1, 2, 3, 0]],
    [67, [0, 1, 2, 3]],
    [68, [3, 2, 1, 0]],
    [121, [3, 2, 1, 0]],
    [134, [0, 1, 2, 3]],
  ];
  for (const [format, [r, g, b, a]] of layouts) {
    const host = new MemoryGpuHost();
    const dev = device({}, host);
    const d = new GpuDriver(dev);
    const px = new Uint8Array(4);
    px[r ?? 0] = 0x11;
    px[g ?? 0] = 0x22;
    px[b ?? 0] = 0x33;
    px[a ?? 0] = 0x77;
    const image = new Uint8Array(16 * 16 * 4);
    for (let i = 0; i < image.length; i += 4) image.set(px, i);
    const buf = d.out(image);
    assert.equal(d.cmd(gpuRequest(C.CREATE, [1, format, 16, 16])).type, OK);
    assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: buf.addr, length: buf.len }]))).type, OK);
    assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 16, 16, 0, 1])).type, OK);
    assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 16, 16, 0, 0, 1, 0])).type, OK);
    const png = decodePng(Buffer.from(host.files.get(dev.snapshot(0).path) ?? []));
    assert.deepEqual([...png.rgba.subarray(0, 4)], [0x11, 0x22, 0x33, 0xff], `format ${format}`);
  }
});

test('gpu: a scanout showing part of a resource snapshots that part', () => {
  const host = new MemoryGpuHost();
  const dev = device({}, host);
  const d = new GpuDriver(dev);
  const { contents } = framebuffer(d, 1, 64, 48);
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 64, 48, 0, 0, 1, 0])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [10, 20, 32, 16, 0, 1])).type, OK);
  const shot = dev.snapshot(0);
  assert.deepEqual([shot.width, shot.height], [32, 16]);
  const png = decodePng(Buffer.from(host.files.get(shot.path) ?? []));
  assert.deepEqual([...png.rgba.subarray(0, 3)], rgbAt(contents, 64, 10, 20));
});

test('gpu: a snapshot of an unchanged screen reuses the file; a transfer, flush, SET_SCANOUT, another scanout or a removed file writes a new one', () => {
  const host = new MemoryGpuHost();
  const dev = device({ scanouts: 2 }, host);
  const d = new GpuDriver(dev);
  framebuffer(d, 1, 64, 48);
  const counts = () => [dev.metrics().snapshots, dev.metrics().snapshotsReused];
  const path = dev.snapshot(0).path;
  dev.snapshot(0);
  assert.deepEqual(counts(), [1, 1], 'the second request reuses the first picture');
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 64, 48, 0, 0, 1, 0])).type, OK);
  dev.snapshot(0);
  assert.deepEqual(counts(), [2, 1], 'a transfer into the shown resource changes the picture');
  assert.equal(d.cmd(gpuRequest(C.FLUSH, [0, 0, 64, 48, 1, 0])).type, OK);
  dev.snapshot(0);
  assert.deepEqual(counts(), [3, 1], 'a flush');
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 32, 32, 0, 1])).type, OK);
  assert.equal(dev.snapshot(0).width, 32);
  assert.deepEqual(counts(), [4, 1], 'SET_SCANOUT');
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 16, 16, 1, 1])).type, OK);
  dev.snapshot(1, path);
  assert.equal(decodePng(Buffer.from(host.files.get(path) ?? [])).width, 16, 'scanout 1 written over the same file');
  dev.snapshot(0);
  assert.deepEqual(counts(), [6, 1], 'the file holds another scanout now: written again');
  host.files.delete(path);
  dev.snapshot(0);
  assert.deepEqual(counts(), [7, 1], 'a removed file is written again');
  assert.ok(host.files.has(path));
});

test('gpu: the host memory budget and the resource count cap are enforced before allocating, and unref gives them back', () => {
  const d = new GpuDriver(device({ maxResources: 2, maxHostBytes: 64 * 64 * 4 }));
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1, 2, 64, 64])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [2, 2, 1, 1])).type, ERR.OOM, 'byte budget');
  assert.equal(d.cmd(gpuRequest(C.CREATE, [3, 2, 0xffffffff, 0xffffffff])).type, ERR.OOM, 'a huge resource');
  assert.equal(d.cmd(gpuRequest(C.UNREF, [1, 0])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [2, 2, 1, 1])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [3, 2, 1, 1])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [4, 2, 1, 1])).type, ERR.OOM, 'count cap');
  assert.equal(d.h.device.metrics().resources.count, 2);
});

test('gpu: create refuses id 0, a used id, an unknown format and a zero size', () => {
  const d = new GpuDriver(device());
  assert.equal(d.cmd(gpuRequest(C.CREATE, [0, 2, 16, 16])).type, ERR.RESOURCE);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1, 2, 16, 16])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1, 2, 16, 16])).type, ERR.RESOURCE);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [2, 99, 16, 16])).type, ERR.PARAM);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [2, 2, 16, 0])).type, ERR.PARAM);
});

test('gpu: backing entries outside guest memory, too many, missing, doubled or absent are refused', () => {
  const d = new GpuDriver(device(), { memorySize: 4 << 20 });
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1, 2, 16, 16])).type, OK);
  const end = d.h.memory.totalSize;
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: end - 100, length: 200 }]))).type, ERR.UNSPEC, 'straddles the end of memory');
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: 2 ** 52, length: 4096 }]))).type, ERR.UNSPEC, 'far outside');
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 2], memEntries([{ addr: 0x10000, length: 1024 }]))).type, ERR.UNSPEC, 'fewer entries than announced');
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 16385], memEntries([{ addr: 0x10000, length: 1024 }]))).type, ERR.UNSPEC, 'more than 16384');
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 0])).type, ERR.UNSPEC, 'no entries');
  assert.equal(d.cmd(gpuRequest(C.DETACH, [1, 0])).type, ERR.UNSPEC, 'nothing to detach');
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 16, 16, 0, 0, 1, 0])).type, ERR.UNSPEC, 'transfer without backing');
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: 0x10000, length: 1024 }]))).type, OK);
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: 0x10000, length: 1024 }]))).type, ERR.UNSPEC, 'a second backing');
  assert.equal(d.cmd(gpuRequest(C.DETACH, [1, 0])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [2, 1], memEntries([{ addr: 0x10000, length: 1024 }]))).type, ERR.RESOURCE);
});

test('gpu: transfers and flushes outside the resource or the backing are ERR_INVALID_PARAMETER', () => {
  const d = new GpuDriver(device());
  framebuffer(d, 1, 32, 32);
  const P = ERR.PARAM;
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 33, 1, 0, 0, 1, 0])).type, P);
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0xffffffff, 0, 2, 1, 0, 0, 1, 0])).type, P, 'x + width wraps u32');
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 31, 32, 1, 32 * 128, 0, 1, 0])).type, P, 'row past the backing');
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 1, 1, 0, 0x80000000, 1, 0])).type, P, 'offset 2^63');
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 31, 32, 1, 31 * 128, 0, 1, 0])).type, OK, 'the last row exactly');
  assert.equal(d.cmd(gpuRequest(C.FLUSH, [0, 0, 32, 33, 1, 0])).type, P);
  assert.equal(d.cmd(gpuRequest(C.FLUSH, [0, 0, 32, 32, 9, 0])).type, ERR.RESOURCE);
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 32, 32, 0, 0, 9, 0])).type, ERR.RESOURCE);
});

test('gpu: a backing page that left guest memory after attach fails the transfer with ERR_UNSPEC, not a crash', () => {
  const d = new GpuDriver(device(), { memorySize: 1 << 20 });
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1, 2, 16, 16])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.ATTACH, [1, 1], memEntries([{ addr: 0xf0000, length: 1024 }]))).type, OK);
  // The guest memory the device sees shrinks under it (a vhost-user memory-table change); the
  // rings keep the memory they were built on, so requests still arrive and get answers.
  const live = d.h.memory;
  d.h.runner.setMemory(new FlatGuestMemory(0x80000));
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 16, 16, 0, 0, 1, 0])).type, ERR.UNSPEC);
  d.h.runner.setMemory(live);
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 16, 16, 0, 0, 1, 0])).type, OK);
});

test('gpu: SET_SCANOUT refuses a bad scanout id, an unknown resource, a rect outside or under 16x16; resource 0 disables', () => {
  const host = new MemoryGpuHost();
  const dev = device({ scanouts: 2 }, host);
  const d = new GpuDriver(dev);
  framebuffer(d, 1, 64, 48);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 64, 48, 2, 1])).type, ERR.SCANOUT);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 64, 48, 1, 7])).type, ERR.RESOURCE);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [1, 0, 64, 48, 1, 1])).type, ERR.PARAM);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 15, 48, 1, 1])).type, ERR.PARAM);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 64, 48, 1, 1])).type, OK, 'one resource on two scanouts');
  assert.deepEqual(dev.metrics().scanouts.map((s) => s.resourceId), [1, 1]);
  assert.equal(d.cmd(gpuRequest(C.SCANOUT, [0, 0, 0, 0, 1, 0])).type, OK);
  assert.throws(() => dev.snapshot(1), /shows nothing/);
  // Unref of a resource on a scanout disables the scanout.
  assert.equal(d.cmd(gpuRequest(C.UNREF, [1, 0])).type, OK);
  assert.deepEqual(dev.metrics().scanouts.map((s) => s.resourceId), [0, 0]);
});

test('gpu: fenced commands echo FENCE and fence_id; short requests, unknown and 3D commands get ERR_UNSPEC', () => {
  const d = new GpuDriver(device());
  const r = d.cmd(gpuRequest(C.CREATE, [1, 2, 16, 16], undefined, { flags: 1, fenceId: 0xabcdef0123n }));
  assert.equal(r.type, OK);
  assert.equal(r.flags & 1, 1);
  assert.equal(r.fenceId, 0xabcdef0123n);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [1])).type, ERR.UNSPEC, 'short request');
  assert.equal(d.cmd(gpuRequest(0x200, [1, 0])).type, ERR.UNSPEC, 'CTX_CREATE');
  assert.equal(d.cmd(gpuRequest(0x999)).type, ERR.UNSPEC);
  assert.equal(d.cmd(new Uint8Array(10)).type, ERR.UNSPEC, 'not even a header');
  const small = d.cmd(gpuRequest(C.INFO), 24);
  assert.equal(small.type, ERR.UNSPEC, 'display info does not fit in 24 bytes');
  assert.equal(small.usedLen, 24);
  assert.equal(d.h.device.metrics().errors['ERR_UNSPEC'], 5);
});

test('gpu: a control chain with no room for a response header is returned with used length 0 and counted', () => {
  const d = new GpuDriver(device());
  const used = d.h.request(0, [d.out(gpuRequest(C.INFO)), { addr: d.h.alloc.alloc(16), len: 16, writable: true }]);
  assert.equal(used.len, 0);
  assert.equal(d.h.device.metrics().badChains, 1);
});

test('gpu: cursor commands are consumed with used length 0; bad ones are counted', () => {
  const d = new GpuDriver(device());
  assert.equal(d.cmd(gpuRequest(C.CREATE, [5, 1, 64, 64])).type, OK);
  assert.equal(d.cmd(gpuRequest(C.CREATE, [6, 1, 32, 32])).type, OK);
  assert.equal(d.cursor(gpuRequest(0x300, [0, 5, 6, 0, 5, 1, 2, 0])), 0);
  assert.equal(d.cursor(gpuRequest(0x301, [0, 7, 8, 0, 5, 0, 0, 0])), 0);
  assert.equal(d.cursor(gpuRequest(0x300, [0, 5, 6, 0, 6, 1, 2, 0])), 0, 'not 64x64');
  assert.equal(d.cursor(gpuRequest(0x300, [3, 5, 6, 0, 5, 1, 2, 0])), 0, 'no such scanout');
  assert.equal(d.cursor(gpuRequest(0x300, [0])), 0, 'short');
  const m = d.h.device.metrics().cursor;
  assert.deepEqual([m.updates, m.moves, m.errors, m.visible], [1, 1, 3, true]);
});

test('gpu: the last frame of each scanout is saved at reset; control requests answer screenshot and info', () => {
  const host = new MemoryGpuHost();
  const dev = device({ snapshotPrefix: 'cluster' }, host);
  const d = new GpuDriver(dev);
  framebuffer(d, 1, 64, 48);
  assert.equal(d.cmd(gpuRequest(C.TRANSFER, [0, 0, 64, 48, 0, 0, 1, 0])).type, OK);
  const shot = dev.control('screenshot 0 /tmp/x.png');
  assert.equal(shot.ok, true);
  assert.ok(host.files.has('/tmp/x.png'));
  assert.deepEqual(dev.control('screenshot 3'), { ok: false, error: 'scanout 3 does not exist (the device has 1)' });
  assert.equal(dev.control('screenshot 0 relative.png').ok, false);
  assert.equal(dev.control('bogus').ok, false);
  const info = dev.control('info');
  assert.equal(info.ok, true);
  d.h.runner.reset();
  assert.ok(host.files.has('/snap/cluster-scanout0.png'), 'last frame saved at reset');
  assert.equal(dev.metrics().resources.count, 0);
});
