// SPDX-License-Identifier: Apache-2.0
/** virtio-snd through the in-process harness (VIRTIO 1.3 §5.14), on the harness's manual clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { SoundDevice } from './model.js';
import { CountingSource, MemorySink, pcmHdr, queryInfo, setParams, u32, xfer } from './testing.js';

const OK = 0x8000;
const BAD = 0x8001;
const NOT_SUPP = 0x8002;

function setup() {
  const sink = new MemorySink();
  const source = new CountingSource();
  const h = new DeviceHarness(new SoundDevice({ playback: sink, capture: source }));
  /** A control request; returns the reply bytes. */
  const ctl = (req: Uint8Array, replyLen = 4): Uint8Array => {
    const a = h.alloc.alloc(req.length);
    h.memory.write(a, req);
    const r = h.alloc.alloc(replyLen);
    const used = h.request(0, [{ addr: a, len: req.length }, { addr: r, len: replyLen, writable: true }]);
    return h.memory.read(r, used.len);
  };
  /** Queues a tx buffer; returns where its status lands. */
  const tx = (stream: number, pcm: Uint8Array): number => {
    const body = xfer(stream, pcm);
    const a = h.alloc.alloc(body.length);
    h.memory.write(a, body);
    const st = h.alloc.alloc(8);
    h.memory.fill(st, 8, 0xee);
    h.submit(2, [{ addr: a, len: body.length }, { addr: st, len: 8, writable: true }]);
    return st;
  };
  /** Queues an rx buffer of `n` PCM bytes; returns its address (status at +n). */
  const rx = (stream: number, n: number): number => {
    const a = h.alloc.alloc(4);
    h.memory.write(a, xfer(stream));
    const d = h.alloc.alloc(n + 8);
    h.submit(3, [{ addr: a, len: 4 }, { addr: d, len: n + 8, writable: true }]);
    return d;
  };
  return { h, sink, ctl, tx, rx };
}

test('sound: config counts and the info replies, byte by byte', () => {
  const { h, ctl } = setup();
  const cfg = h.runner.readConfig(0, 12);
  assert.deepEqual([u32(cfg, 0), u32(cfg, 4), u32(cfg, 8)], [1, 2, 4]);
  const pcm = ctl(queryInfo(0x100, 0, 2, 32), 4 + 64);
  assert.equal(u32(pcm, 0), OK);
  // Stream 0: output, formats U8|S16|S32 (bits 4, 5, 17), rates bits 1-7, channels 1-2.
  assert.deepEqual([...pcm.subarray(4 + 8, 4 + 16)], [0x30, 0, 0x02, 0, 0, 0, 0, 0]);
  assert.deepEqual([...pcm.subarray(4 + 16, 4 + 24)], [0xfe, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...pcm.subarray(4 + 24, 4 + 27)], [0, 1, 2]);
  assert.equal(pcm[4 + 32 + 24], 1, 'stream 1 is input');
  const jack = ctl(queryInfo(1, 0, 1, 24), 28);
  assert.equal(u32(jack, 0), OK);
  assert.equal(u32(jack, 4 + 8), 0x01014010);
  assert.equal(jack[4 + 16], 1, 'connected');
  const maps = ctl(queryInfo(0x200, 1, 1, 24), 28);
  assert.deepEqual([...maps.subarray(4 + 4, 4 + 8)], [0, 2, 3, 4], 'output, 2 channels, FL FR');
  // A larger size from the driver is zero-padded.
  const wide = ctl(queryInfo(0x100, 0, 1, 40), 44);
  assert.equal(wide.length, 44);
  assert.deepEqual([...wide.subarray(36)], new Array(8).fill(0));
});

test('sound: info queries past the items, wrapping, or larger than the reply buffer get BAD_MSG', () => {
  const { h, ctl } = setup();
  assert.equal(u32(ctl(queryInfo(0x100, 2, 1, 32), 36), 0), BAD);
  assert.equal(u32(ctl(queryInfo(0x100, 1, 0xffffffff, 32), 36), 0), BAD);
  assert.equal(u32(ctl(queryInfo(0x100, 0, 1, 32), 4), 0), BAD);
  assert.equal(u32(ctl(queryInfo(0x100, 0, 1, 8), 36), 0), BAD, 'size below the structure');
  assert.equal(u32(ctl(queryInfo(0x100, 0, 1, 0xffffffff), 36), 0), BAD);
  assert.equal(u32(ctl(Uint8Array.of(0, 1, 0, 0), 36), 0), BAD, 'truncated query');
  assert.equal(u32(ctl(pcmHdr(0x300, 0)), 0), NOT_SUPP, 'CTL_INFO without CTLS');
  assert.equal(u32(ctl(pcmHdr(2, 0)), 0), NOT_SUPP, 'JACK_REMAP without REMAP');
  assert.equal(h.device.metrics().control.badMessages, 6);
});

test('sound: the PCM state machine and parameter checks', () => {
  const { ctl } = setup();
  const st = (req: Uint8Array) => u32(ctl(req), 0);
  assert.equal(st(pcmHdr(0x104, 0)), BAD, 'START before SET_PARAMS');
  assert.equal(st(pcmHdr(0x102, 0)), BAD, 'PREPARE before SET_PARAMS');
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 63, rate: 7 })), NOT_SUPP, 'format not offered');
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 0 })), NOT_SUPP, '5512 Hz not offered');
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 3, format: 5, rate: 7 })), NOT_SUPP, '3 channels');
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7, features: 1 })), NOT_SUPP, 'SHMEM_HOST not offered');
  assert.equal(st(setParams(0, { buffer: 1024, period: 0, channels: 2, format: 5, rate: 7 })), BAD);
  assert.equal(st(setParams(0, { buffer: 1024, period: 258, channels: 2, format: 5, rate: 7 })), BAD, 'period not whole frames');
  assert.equal(st(setParams(0, { buffer: 128, period: 256, channels: 2, format: 5, rate: 7 })), BAD, 'buffer below period');
  assert.equal(st(setParams(0, { buffer: 64 << 20, period: 256, channels: 2, format: 5, rate: 7 })), BAD, 'buffer over the cap');
  assert.equal(st(setParams(7, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7 })), BAD, 'no stream 7');
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7 })), OK);
  assert.equal(st(pcmHdr(0x105, 0)), BAD, 'STOP when not running');
  assert.equal(st(pcmHdr(0x102, 0)), OK);
  assert.equal(st(pcmHdr(0x104, 0)), OK);
  assert.equal(st(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7 })), BAD, 'SET_PARAMS while running');
  assert.equal(st(pcmHdr(0x103, 0)), BAD, 'RELEASE while running');
  assert.equal(st(pcmHdr(0x105, 0)), OK);
  assert.equal(st(pcmHdr(0x104, 0)), OK, 'START again after STOP');
  assert.equal(st(pcmHdr(0x105, 0)), OK);
  assert.equal(st(pcmHdr(0x103, 0)), OK);
  assert.equal(st(pcmHdr(0x102, 0)), OK, 'PREPARE after RELEASE');
});

test('sound: playback is paced in real time and reaches the sink sample-exact', () => {
  const { h, sink, ctl, tx } = setup();
  // S16 stereo 48 kHz: 192 bytes per ms; a 960-byte period is 5 ms.
  assert.equal(u32(ctl(setParams(0, { buffer: 3840, period: 960, channels: 2, format: 5, rate: 7 })), 0), OK);
  assert.equal(u32(ctl(pcmHdr(0x102, 0)), 0), OK);
  assert.deepEqual(sink.formats, [{ channels: 2, rate: 48000, bits: 16 }]);
  const data = Array.from({ length: 3 }, (_, k) => Uint8Array.from({ length: 960 }, (_, i) => (i * 7 + k) & 0xff));
  const statuses = data.map((d) => tx(0, d));
  h.reactor.advance(50);
  assert.equal(h.queue(2).popUsed(), null, 'nothing is consumed before START');
  assert.equal(u32(ctl(pcmHdr(0x104, 0)), 0), OK);
  h.reactor.advance(4.9);
  assert.equal(h.queue(2).popUsed(), null, 'the first period is not over before 5 ms');
  h.reactor.advance(0.1);
  const first = h.queue(2).popUsed();
  assert.equal(first?.len, 8);
  assert.equal(u32(h.memory.read(statuses[0] ?? 0, 8), 0), OK);
  assert.equal(h.queue(2).popUsed(), null, 'one buffer per period');
  h.reactor.advance(10);
  assert.equal(h.queue(2).popUsed()?.len, 8);
  assert.equal(h.queue(2).popUsed()?.len, 8);
  assert.deepEqual(sink.bytes(), Uint8Array.from(data.flatMap((d) => [...d])));
  assert.equal(h.device.metrics().streams[0]?.xruns, 0);
  h.reactor.advance(10);
  assert.equal(h.device.metrics().streams[0]?.xruns, 2, 'two periods with nothing queued');
  assert.equal(u32(ctl(pcmHdr(0x105, 0)), 0), OK);
  const periods = h.device.metrics().streams[0]?.periods;
  h.reactor.advance(100);
  assert.equal(h.device.metrics().streams[0]?.periods, periods, 'STOP stops the clock');
});

test('sound: a buffer larger than a period completes only once wholly consumed', () => {
  const { h, sink, ctl, tx } = setup();
  ctl(setParams(0, { buffer: 4000, period: 200, channels: 1, format: 5, rate: 7 }));
  ctl(pcmHdr(0x102, 0));
  tx(0, new Uint8Array(500).fill(9));
  ctl(pcmHdr(0x104, 0));
  h.reactor.advance(2 * (200 / 96));
  assert.equal(h.queue(2).popUsed(), null, '400 of 500 bytes consumed');
  h.reactor.advance(200 / 96);
  assert.equal(h.queue(2).popUsed()?.len, 8);
  assert.equal(sink.bytes().length, 500);
});

test('sound: capture fills rx buffers from the source; used length = 8 + bytes; overruns counted', () => {
  const { h, ctl, rx } = setup();
  ctl(setParams(1, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7 }));
  ctl(pcmHdr(0x102, 1));
  ctl(pcmHdr(0x104, 1));
  h.reactor.advance(256 / 192);
  assert.equal(h.device.metrics().streams[1]?.xruns, 1, 'a period without a buffer');
  const a = rx(1, 256);
  h.reactor.advance(256 / 192);
  const u = h.queue(3).popUsed();
  assert.equal(u?.len, 264);
  // The first period's 256 samples were lost; this buffer holds the next 256 bytes: 0, 1, ... from 256.
  assert.deepEqual([...h.memory.read(a, 4)], [0, 1, 2, 3]);
  assert.equal(u32(h.memory.read(a + 256, 8), 0), OK);
});

test('sound: RELEASE completes pending I/O; bad I/O is answered BAD_MSG at once', () => {
  const { h, ctl, tx, rx } = setup();
  const st = tx(0, new Uint8Array(16));
  assert.equal(h.queue(2).popUsed()?.len, 8, 'tx before PREPARE');
  assert.equal(u32(h.memory.read(st, 8), 0), BAD);
  tx(5, new Uint8Array(16));
  assert.equal(h.queue(2).popUsed()?.len, 8, 'no stream 5');
  const a = rx(0, 64);
  assert.equal(h.queue(3).popUsed()?.len, 8, 'rx for the output stream');
  assert.equal(u32(h.memory.read(a + 64, 8), 0), BAD);
  // A tx chain with no room for a status: used length 0.
  const body = h.alloc.alloc(8);
  h.submit(2, [{ addr: body, len: 8 }]);
  assert.equal(h.queue(2).popUsed()?.len, 0);
  assert.equal(h.device.metrics().badChains, 1);
  ctl(setParams(0, { buffer: 4096, period: 1024, channels: 2, format: 5, rate: 7 }));
  ctl(pcmHdr(0x102, 0));
  tx(0, new Uint8Array(1024));
  tx(0, new Uint8Array(1024));
  assert.equal(h.queue(2).popUsed(), null);
  assert.equal(u32(ctl(pcmHdr(0x103, 0)), 0), OK);
  assert.equal(h.queue(2).popUsed()?.len, 8);
  assert.equal(h.queue(2).popUsed()?.len, 8);
});

test('sound: reset forgets streams and timers', () => {
  const { h, ctl } = setup();
  ctl(setParams(0, { buffer: 1024, period: 256, channels: 2, format: 5, rate: 7 }));
  ctl(pcmHdr(0x102, 0));
  ctl(pcmHdr(0x104, 0));
  h.device.reset();
  h.reactor.advance(100);
  assert.equal(h.device.metrics().streams[0]?.state, 'idle');
  assert.equal(h.device.metrics().streams[0]?.periods, 0);
});
