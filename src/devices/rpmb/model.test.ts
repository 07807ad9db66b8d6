// SPDX-License-Identifier: Apache-2.0
/** virtio-rpmb through the in-process harness (VIRTIO 1.3 §5.19), frames built independently. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHarness } from '../../device/harness.js';
import { FileRpmbStore, RpmbDevice } from './index.js';
import { MemoryRpmbStore } from './testing.js';

const KEY = Buffer.alloc(32, 0x4b);

/** A frame built by hand: big-endian fields at the end, as the JEDEC/VIRTIO layout says. */
function frame(req: number, f: { counter?: number; address?: number; blocks?: number; nonce?: number; data?: number; key?: Uint8Array } = {}): Buffer {
  const b = Buffer.alloc(512);
  if (f.key !== undefined) b.set(f.key, 196);
  if (f.data !== undefined) b.fill(f.data, 228, 484);
  if (f.nonce !== undefined) b.fill(f.nonce, 484, 500);
  b.writeUInt32BE(f.counter ?? 0, 500);
  b.writeUInt16BE(f.address ?? 0, 504);
  b.writeUInt16BE(f.blocks ?? 0, 506);
  b.writeUInt16BE(req, 510);
  return b;
}

function sign(frames: Buffer[], key: Uint8Array = KEY): void {
  const h = createHmac('sha256', key);
  for (const f of frames) h.update(f.subarray(228));
  frames[frames.length - 1]?.set(h.digest(), 196);
}

function macOk(frames: Buffer[], key: Uint8Array = KEY): boolean {
  const h = createHmac('sha256', key);
  for (const f of frames) h.update(f.subarray(228));
  return h.digest().equals(frames[frames.length - 1]!.subarray(196, 228));
}

class Rig {
  readonly h: DeviceHarness<RpmbDevice>;
  constructor(device = new RpmbDevice({ store: new MemoryRpmbStore() })) {
    this.h = new DeviceHarness(device);
  }
  /** Sends frames; returns the response frames (room for `resp` of them). */
  send(out: Buffer[], resp: number): { len: number; frames: Buffer[] } {
    const req = Buffer.concat(out);
    const a = this.h.alloc.alloc(Math.max(req.length, 1));
    this.h.memory.write(a, req);
    const bufs = [{ addr: a, len: req.length }];
    const r = this.h.alloc.alloc(Math.max(resp * 512, 1));
    if (resp > 0) bufs.push({ addr: r, len: resp * 512, writable: true } as never);
    const used = this.h.request(0, bufs);
    const bytes = Buffer.from(this.h.memory.read(r, resp * 512));
    return { len: used.len, frames: Array.from({ length: resp }, (_, i) => bytes.subarray(i * 512, (i + 1) * 512)) };
  }
  program(key: Uint8Array = KEY): number {
    return this.send([frame(1, { blocks: 1, key }), frame(5)], 1).frames[0]!.readUInt16BE(508);
  }
  counter(): { result: number; counter: number; frame: Buffer } {
    const f = this.send([frame(2, { nonce: 0x21 })], 1).frames[0]!;
    return { result: f.readUInt16BE(508), counter: f.readUInt32BE(500), frame: f };
  }
  write(address: number, counter: number, data: number[], opts: { key?: Uint8Array } = {}): Buffer {
    const frames = data.map((d) => frame(3, { counter, address, blocks: data.length, data: d }));
    sign(frames, opts.key);
    return this.send([...frames, frame(5)], 1).frames[0]!;
  }
  read(address: number, blocks: number, room = blocks): { len: number; frames: Buffer[] } {
    return this.send([frame(4, { address, blocks, nonce: 0x66 })], room);
  }
}

test('rpmb: config is capacity, max_wr_cnt, max_rd_cnt', () => {
  const d = new RpmbDevice({ store: new MemoryRpmbStore(2), capacity: 2, maxWrite: 4, maxRead: 8 });
  assert.deepEqual([...d.readConfig(0, 3)], [2, 4, 8]);
  assert.deepEqual([...d.readConfig(1, 1)], [4]);
  assert.throws(() => new RpmbDevice({ store: new MemoryRpmbStore(), capacity: 0 }), { code: 'RPMB_BAD_OPTION' });
  assert.throws(() => new RpmbDevice({ store: new MemoryRpmbStore(), maxWrite: 256 }), { code: 'RPMB_BAD_OPTION' });
});

test('rpmb: before the key, the counter is NO_AUTH_KEY and writes are refused', () => {
  const r = new Rig();
  assert.equal(r.counter().result, 7);
  assert.equal(r.write(0, 0, [1]).readUInt16BE(508), 7);
  assert.equal(r.read(0, 1).frames[0]!.readUInt16BE(508), 7);
});

test('rpmb: the key is programmed once; the response frame is 0x0100', () => {
  const r = new Rig();
  const resp = r.send([frame(1, { blocks: 1, key: KEY }), frame(5)], 1);
  assert.equal(resp.len, 512);
  assert.equal(resp.frames[0]!.readUInt16BE(510), 0x0100);
  assert.equal(resp.frames[0]!.readUInt16BE(508), 0);
  assert.equal(r.program(Buffer.alloc(32, 1)), 1, 'GENERAL_FAILURE the second time');
  const c = r.counter();
  assert.deepEqual([c.result, c.counter, c.frame.readUInt16BE(510), c.frame[484]], [0, 0, 0x0200, 0x21]);
  assert.ok(macOk([c.frame]), 'the counter response is signed with the first key');
});

test('rpmb: a PROGRAM_KEY without RESULT_READ gets no response; RESULT_READ alone then reports it', () => {
  const r = new Rig();
  assert.equal(r.send([frame(1, { blocks: 1, key: KEY })], 1).len, 0);
  const res = r.send([frame(5)], 1).frames[0]!;
  assert.deepEqual([res.readUInt16BE(510), res.readUInt16BE(508)], [0x0100, 0]);
});

test('rpmb: authenticated write and read, multi-block, counter increments', () => {
  const r = new Rig();
  r.program();
  const w = r.write(10, 0, [0xa1, 0xa2]);
  assert.deepEqual([w.readUInt16BE(510), w.readUInt16BE(508), w.readUInt32BE(500), w.readUInt16BE(504)], [0x0300, 0, 1, 10]);
  assert.ok(macOk([w]));
  const rd = r.read(10, 2);
  assert.equal(rd.len, 1024);
  assert.ok(rd.frames[0]!.subarray(228, 484).every((b) => b === 0xa1));
  assert.ok(rd.frames[1]!.subarray(228, 484).every((b) => b === 0xa2));
  assert.deepEqual([rd.frames[1]!.readUInt16BE(510), rd.frames[1]!.readUInt16BE(504), rd.frames[1]![484]], [0x0400, 10, 0x66]);
  assert.ok(macOk(rd.frames), 'MAC over both response frames in the last');
  assert.equal(r.counter().counter, 1);
});

test('rpmb: a replayed write gets COUNT_FAILURE and leaves data and counter alone', () => {
  const r = new Rig();
  r.program();
  assert.equal(r.write(1, 0, [0x11]).readUInt16BE(508), 0);
  assert.equal(r.write(1, 0, [0x22]).readUInt16BE(508), 3);
  assert.ok(r.read(1, 1).frames[0]!.subarray(228, 484).every((b) => b === 0x11));
  assert.equal(r.counter().counter, 1);
  assert.equal(r.h.device.metrics().counterFailures, 1);
});

test('rpmb: the checks run in the spec order: count, address, MAC, counter', () => {
  const r = new Rig(new RpmbDevice({ store: new MemoryRpmbStore(), maxWrite: 2 }));
  r.program();
  assert.equal(r.write(0, 0, [1, 2, 3]).readUInt16BE(508), 1, 'three blocks > max_wr_cnt 2: GENERAL_FAILURE');
  assert.equal(r.write(511, 9, [1, 2]).readUInt16BE(508), 4, 'past block 512 (and a wrong counter): ADDR_FAILURE first');
  assert.equal(r.write(0, 9, [1], { key: Buffer.alloc(32) }).readUInt16BE(508), 2, 'wrong key and wrong counter: AUTH_FAILURE first');
  assert.equal(r.write(0, 9, [1]).readUInt16BE(508), 3);
  assert.equal(r.counter().counter, 0);
  const m = r.h.device.metrics();
  assert.deepEqual([m.authFailures, m.counterFailures, m.otherFailures, m.writes], [1, 1, 2, 0]);
});

test('rpmb: a counter at its maximum is expired: writes refused with WRITE_FAILURE | 0x80', () => {
  const store = new MemoryRpmbStore();
  store.load = () => ({ key: Buffer.from(KEY), writeCounter: 0xffffffff, data: new Uint8Array(128 * 1024) });
  const r = new Rig(new RpmbDevice({ store }));
  assert.equal(r.write(0, 0xffffffff, [1]).readUInt16BE(508), 0x85);
  assert.equal(r.counter().result, 0x80);
});

test('rpmb: reads past the end, over max_rd_cnt or without room are refused with one frame', () => {
  const r = new Rig(new RpmbDevice({ store: new MemoryRpmbStore(), maxRead: 2 }));
  r.program();
  assert.equal(r.read(512, 1).frames[0]!.readUInt16BE(508), 4);
  assert.equal(r.read(0, 3).frames[0]!.readUInt16BE(508), 1);
  const short = r.read(0, 2, 1);
  assert.deepEqual([short.len, short.frames[0]!.readUInt16BE(508)], [512, 1]);
});

test('rpmb: hostile chains: not whole frames, no room, unknown request, huge request', () => {
  const r = new Rig();
  const odd = r.h.alloc.alloc(100);
  const resp = r.h.alloc.alloc(512);
  assert.equal(r.h.request(0, [{ addr: odd, len: 100 }, { addr: resp, len: 512, writable: true }]).len, 512);
  assert.equal(Buffer.from(r.h.memory.read(resp, 512)).readUInt16BE(508), 1);
  assert.equal(r.send([frame(2)], 0).len, 0, 'no room for the response');
  assert.equal(r.send([frame(0x77)], 1).frames[0]!.readUInt16BE(508), 1, 'unknown request: GENERAL_FAILURE');
  // 1 MiB of request frames: only max_wr_cnt + 1 frames are copied; the device answers.
  const big = r.h.alloc.alloc(1 << 20);
  r.h.memory.write(big, frame(2));
  const out = r.h.alloc.alloc(512);
  assert.equal(r.h.request(0, [{ addr: big, len: 1 << 20 }, { addr: out, len: 512, writable: true }]).len, 512);
  assert.equal(r.h.device.metrics().malformed, 2);
});

test('rpmb: the state file keeps key, counter and data across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-rpmb-'));
  try {
    const path = join(dir, 'state');
    const a = new FileRpmbStore(path, 1);
    const r1 = new Rig(new RpmbDevice({ store: a }));
    r1.program();
    r1.write(7, 0, [0x5e]);
    a.close();
    assert.equal(statSync(path).size, 64 + 128 * 1024);
    const b = new FileRpmbStore(path, 1);
    const r2 = new Rig(new RpmbDevice({ store: b }));
    assert.equal(r2.program(), 1, 'the key survived');
    assert.equal(r2.counter().counter, 1, 'the counter survived: the old write cannot be replayed');
    assert.equal(r2.write(7, 0, [0x99]).readUInt16BE(508), 3);
    assert.ok(r2.read(7, 1).frames[0]!.subarray(228, 484).every((x) => x === 0x5e));
    b.close();
    assert.throws(() => new FileRpmbStore(path, 2).load(), { code: 'RPMB_BAD_STATE_FILE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
