// SPDX-License-Identifier: Apache-2.0
/**
 * The vhost-user-gpu display socket, driven through the gpu model with an in-memory socket: the
 * negotiation (GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES 0), nothing else before it, SCANOUT
 * before any UPDATE, UPDATE bytes in x8r8g8b8 at scanout-relative positions, resync after a new
 * socket, dropped updates under back-pressure re-sent whole, cursor messages, and the socket's end.
 * Messages are parsed by testing.ts (DataView), independently of display-socket.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSocket, FakeUnixStreams } from '../vsock/testing.js';
import { GpuDevice } from './model.js';
import { GpuDriver, MemoryGpuHost, gpuRequest, memEntries, parseDisplayMessages, protocolFeaturesReply, type DisplayMessage } from './testing.js';

const OK = 0x1100;
const M = { GET_PF: 1, SET_PF: 2, CURSOR_POS: 4, CURSOR_HIDE: 5, CURSOR_UPDATE: 6, SCANOUT: 7, UPDATE: 8 };

function setup(opts: { backlog?: number } = {}) {
  const streams = new FakeUnixStreams();
  const host = new MemoryGpuHost(streams);
  const dev = new GpuDevice({ scanouts: 2, width: 64, height: 48, edid: true, maxResources: 16, maxHostBytes: 1 << 20, host, ...(opts.backlog === undefined ? {} : { maxDisplayBacklog: opts.backlog }) });
  const d = new GpuDriver(dev);
  let nextFd = 5000;
  /** QEMU hands over a new socket (GPU_SET_SOCKET). */
  const attach = (): FakeSocket => {
    const s = new FakeSocket(nextFd++, 'display');
    streams.sockets.set(s.fd, s);
    assert.equal(dev.frontendChannel(s.fd), true);
    return s;
  };
  /** QEMU answers GET_PROTOCOL_FEATURES. */
  const negotiate = (s: FakeSocket, features = 3n) => {
    s.send(protocolFeaturesReply(features));
    d.h.reactor.fire(s.fd, { readable: true });
  };
  return { streams, dev, d, attach, negotiate };
}

function u32s(m: DisplayMessage, n: number): number[] {
  const v = new DataView(m.payload.buffer, m.payload.byteOffset);
  return Array.from({ length: n }, (_, i) => v.getUint32(4 * i, true));
}

/** A 64 × 48 B8G8R8X8 framebuffer with pixel (x, y) = B x, G y, R 0x80, shown on scanout 0. */
function framebuffer(d: GpuDriver) {
  const img = new Uint8Array(64 * 48 * 4);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 64; x++) img.set([x, y, 0x80, 0], (y * 64 + x) * 4);
  const buf = d.out(img);
  assert.equal(d.cmd(gpuRequest(0x101, [1, 2, 64, 48])).type, OK);
  assert.equal(d.cmd(gpuRequest(0x106, [1, 1], memEntries([{ addr: buf.addr, length: buf.len }]))).type, OK);
  assert.equal(d.cmd(gpuRequest(0x105, [0, 0, 64, 48, 0, 0, 1, 0])).type, OK);
}

test('display socket: negotiation first, nothing else before QEMU answers; then SCANOUT and a whole UPDATE', () => {
  const { d, attach, negotiate } = setup();
  const s = attach();
  assert.deepEqual(parseDisplayMessages(s.take()).map((m) => [m.request, m.payload.length]), [[M.GET_PF, 0]]);
  framebuffer(d);
  assert.equal(d.cmd(gpuRequest(0x103, [0, 0, 64, 48, 0, 1])).type, OK);
  assert.equal(s.take().length, 0, 'nothing before the negotiation');
  negotiate(s);
  const msgs = parseDisplayMessages(s.take());
  assert.deepEqual(msgs.map((m) => m.request), [M.SET_PF, M.SCANOUT, M.UPDATE, M.SCANOUT]);
  assert.equal(new DataView(msgs[0]!.payload.buffer).getBigUint64(0, true), 0n, 'AVP uses no protocol feature');
  assert.deepEqual(u32s(msgs[1]!, 3), [0, 64, 48]);
  assert.deepEqual(u32s(msgs[2]!, 5), [0, 0, 0, 64, 48]);
  const px = msgs[2]!.payload.subarray(20);
  assert.equal(px.length, 64 * 48 * 4);
  assert.deepEqual([...px.subarray((5 * 64 + 7) * 4, (5 * 64 + 7) * 4 + 4)], [7, 5, 0x80, 0], 'B8G8R8X8 bytes are x8r8g8b8 already');
  assert.deepEqual(u32s(msgs[3]!, 3), [1, 0, 0], 'scanout 1 shows nothing');
});

test('display socket: a flush sends the part of the scanout it covers, at scanout-relative coordinates', () => {
  const { d, attach, negotiate } = setup();
  const s = attach();
  negotiate(s);
  framebuffer(d);
  // Scanout 0 shows the 32 × 24 part of the resource at (16, 8).
  assert.equal(d.cmd(gpuRequest(0x103, [16, 8, 32, 24, 0, 1])).type, OK);
  s.take();
  // A flush of (0, 0)-(20, 10) overlaps the scanout at (16, 8)-(20, 10).
  assert.equal(d.cmd(gpuRequest(0x104, [0, 0, 20, 10, 1, 0])).type, OK);
  const [m] = parseDisplayMessages(s.take());
  assert.ok(m !== undefined);
  assert.deepEqual(u32s(m, 5), [0, 0, 0, 4, 2]);
  assert.deepEqual([...m.payload.subarray(20, 24)], [16, 8, 0x80, 0]);
  // A flush outside the scanout sends nothing.
  assert.equal(d.cmd(gpuRequest(0x104, [50, 40, 10, 8, 1, 0])).type, OK);
  assert.equal(s.take().length, 0);
});

test('display socket: a non-BGRX resource is converted to x8r8g8b8', () => {
  const { d, attach, negotiate } = setup();
  const s = attach();
  negotiate(s);
  const buf = d.out(new Uint8Array(16 * 16 * 4).fill(0).map((_, i) => [0x11, 0x22, 0x33, 0x44][i % 4] ?? 0));
  assert.equal(d.cmd(gpuRequest(0x101, [1, 67, 16, 16])).type, OK); // R8G8B8A8
  assert.equal(d.cmd(gpuRequest(0x106, [1, 1], memEntries([{ addr: buf.addr, length: buf.len }]))).type, OK);
  assert.equal(d.cmd(gpuRequest(0x105, [0, 0, 16, 16, 0, 0, 1, 0])).type, OK);
  assert.equal(d.cmd(gpuRequest(0x103, [0, 0, 16, 16, 0, 1])).type, OK);
  const upd = parseDisplayMessages(s.take()).find((m) => m.request === M.UPDATE);
  assert.deepEqual([...(upd?.payload.subarray(20, 24) ?? [])], [0x33, 0x22, 0x11, 0xff]);
});

test('display socket: a new socket (guest reboot) gets the whole state again; unref disables the scanout', () => {
  const { d, attach, negotiate, streams } = setup();
  const first = attach();
  negotiate(first);
  framebuffer(d);
  assert.equal(d.cmd(gpuRequest(0x103, [0, 0, 64, 48, 0, 1])).type, OK);
  const second = attach();
  assert.ok(first.closed, 'the old socket is closed');
  negotiate(second);
  assert.deepEqual(parseDisplayMessages(second.take()).map((m) => m.request), [M.GET_PF, M.SET_PF, M.SCANOUT, M.UPDATE, M.SCANOUT]);
  assert.equal(d.cmd(gpuRequest(0x102, [1, 0])).type, OK);
  const [off] = parseDisplayMessages(second.take());
  assert.deepEqual(off === undefined ? [] : [off.request, ...u32s(off, 3)], [M.SCANOUT, 0, 0, 0]);
  // QEMU goes away: the device notices and closes its end.
  second.peerClosed = true;
  d.h.reactor.fire(second.fd, { hangup: true });
  assert.ok(second.closed);
  assert.equal(d.h.device.metrics().display.connected, false);
  assert.equal(streams.open().length, 0);
});

test('display socket: updates QEMU does not read are dropped past the backlog, then the scanout is sent whole', () => {
  const { d, attach, negotiate } = setup({ backlog: 20000 });
  const s = attach();
  negotiate(s);
  framebuffer(d);
  s.capacity = 0; // QEMU stops reading
  assert.equal(d.cmd(gpuRequest(0x103, [0, 0, 64, 48, 0, 1])).type, OK);
  for (let i = 0; i < 5; i++) assert.equal(d.cmd(gpuRequest(0x104, [0, 0, 64, 48, 1, 0])).type, OK);
  const m = d.h.device.metrics();
  assert.ok(m.display.droppedUpdates >= 4, `dropped ${m.display.droppedUpdates}`);
  s.capacity = Infinity;
  d.h.reactor.fire(s.fd, { writable: true });
  const msgs = parseDisplayMessages(s.take());
  const last = msgs.at(-1);
  assert.ok(last !== undefined && last.request === M.UPDATE);
  assert.deepEqual(u32s(last, 5), [0, 0, 0, 64, 48], 'the whole scanout after the drain');
});

test('display socket: cursor update, move and hide', () => {
  const { d, attach, negotiate } = setup();
  const s = attach();
  negotiate(s);
  const img = new Uint8Array(64 * 64 * 4).fill(0).map((_, i) => [1, 2, 3, 4][i % 4] ?? 0);
  const buf = d.out(img);
  assert.equal(d.cmd(gpuRequest(0x101, [9, 1, 64, 64])).type, OK); // B8G8R8A8
  assert.equal(d.cmd(gpuRequest(0x106, [9, 1], memEntries([{ addr: buf.addr, length: buf.len }]))).type, OK);
  assert.equal(d.cmd(gpuRequest(0x105, [0, 0, 64, 64, 0, 0, 9, 0])).type, OK);
  s.take();
  d.cursor(gpuRequest(0x300, [1, 10, 20, 0, 9, 3, 4, 0]));
  d.cursor(gpuRequest(0x301, [1, 11, 21, 0, 9, 0, 0, 0]));
  d.cursor(gpuRequest(0x300, [1, 12, 22, 0, 0, 0, 0, 0]));
  const msgs = parseDisplayMessages(s.take());
  assert.deepEqual(msgs.map((m) => m.request), [M.CURSOR_UPDATE, M.CURSOR_POS, M.CURSOR_HIDE]);
  assert.equal(msgs[0]!.payload.length, 16404);
  assert.deepEqual(u32s(msgs[0]!, 5), [1, 10, 20, 3, 4]);
  assert.deepEqual([...msgs[0]!.payload.subarray(20, 24)], [1, 2, 3, 4], 'B8G8R8A8 is a8r8g8b8 in memory order');
  assert.deepEqual(u32s(msgs[1]!, 3), [1, 11, 21]);
  assert.deepEqual(u32s(msgs[2]!, 3), [1, 12, 22]);
});

test('display socket: a device without socket operations leaves the fd to the transport', () => {
  const dev = new GpuDevice({ scanouts: 1, width: 64, height: 48, edid: false, maxResources: 4, maxHostBytes: 1 << 20 });
  assert.equal(dev.frontendChannel(77), false);
});
