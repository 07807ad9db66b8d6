// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CanBus } from './bus.js';
import { parseCanFilter } from './filter.js';
import { type CanFrame, canFrame } from './frame.js';
import { ManualClock, RecordingSink } from './testing.js';
import { frameTimeUs } from './timing.js';

const RATES = { bitrate: 500_000 };
const f8 = (id: number): CanFrame => canFrame({ id, data: [1, 2, 3, 4, 5, 6, 7, 8] });
const ms = (f: CanFrame) => frameTimeUs(f, RATES) / 1000;

function setup(names: string[], opts: Record<string, Parameters<CanBus['addNode']>[0]> = {}) {
  const clock = new ManualClock();
  const wire: Array<{ id: number; sender: string; t: number }> = [];
  const bus = new CanBus({ name: 'test', clock, ...RATES, onWire: (f, sender, t) => wire.push({ id: f.id, sender, t }) });
  const sinks = new Map<string, RecordingSink>();
  const nodes = new Map(
    names.map((n) => {
      const sink = new RecordingSink();
      sinks.set(n, sink);
      return [n, bus.addNode(opts[n] ?? { name: n, open: true }, sink)] as const;
    }),
  );
  // Safe: every name was added above.
  return { clock, bus, wire, node: (n: string) => nodes.get(n)!, sink: (n: string) => sinks.get(n)! };
}

test('frames sent at the same time go out lowest identifier first, one frame time apart', () => {
  const { clock, node, sink, wire } = setup(['a', 'b', 'rx']);
  node('a').sendFrame(f8(0x300));
  node('b').sendFrame(f8(0x100));
  node('a').sendFrame(f8(0x200));
  // 0x300 went on the wire at once (the bus was idle); then arbitration among 0x100 and 0x200.
  clock.advance(10);
  assert.deepEqual(sink('rx').ids, [0x300, 0x100, 0x200]);
  assert.deepEqual(wire.map((w) => w.sender), ['a', 'b', 'a']);
  const t = sink('rx').frames.map((x) => x.timeMs);
  assert.ok(Math.abs(t[0]! - ms(f8(0x300))) < 1e-9);
  assert.ok(Math.abs(t[1]! - t[0]! - ms(f8(0x100))) < 1e-9, 'back to back: the next frame starts when the previous ends');
  assert.ok(Math.abs(t[2]! - t[1]! - ms(f8(0x200))) < 1e-9);
  assert.deepEqual(sink('a').ids, [0x100], 'a node is not given its own frames');
});

test('a high-priority frame overtakes a queue of low-priority frames, but never the frame on the wire', () => {
  const { clock, node, sink } = setup(['low', 'high', 'rx']);
  for (let i = 0; i < 10; i++) node('low').sendFrame(f8(0x700 + i));
  clock.advance(0.1);
  node('high').sendFrame(f8(0x010));
  clock.advance(100);
  assert.deepEqual(sink('rx').ids, [0x700, 0x010, 0x701, 0x702, 0x703, 0x704, 0x705, 0x706, 0x707, 0x708, 0x709]);
});

test('catching up after late timers: frames that arrived later do not take part in earlier arbitrations', () => {
  const { clock, node, sink } = setup(['low', 'high', 'rx']);
  for (let i = 0; i < 3; i++) node('low').sendFrame(f8(0x700 + i));
  const t = ms(f8(0x700));
  // The event loop is busy past the end of two frames and into the third; then 0x010 arrives.
  clock.jump(2.5 * t);
  node('high').sendFrame(f8(0x010));
  clock.advance(0); // the overdue timer runs now
  clock.advance(100, true);
  assert.deepEqual(sink('rx').ids, [0x700, 0x701, 0x702, 0x010], '0x702 started at 2t, before 0x010 arrived at 2.5t');
  // The same, with 0x010 arriving during the first frame: it is second.
  const s2 = setup(['low', 'high', 'rx']);
  for (let i = 0; i < 3; i++) s2.node('low').sendFrame(f8(0x700 + i));
  s2.clock.jump(0.5 * t);
  s2.node('high').sendFrame(f8(0x010));
  s2.clock.advance(100, true);
  assert.deepEqual(s2.sink('rx').ids, [0x700, 0x010, 0x701, 0x702]);
  // Delivery is never before the frame's end on the wire.
  for (const [i, f] of s2.sink('rx').frames.entries()) assert.ok(f.timeMs >= (i + 1) * t - 1e-9);
});

test('bit rate: N frames take N frame times; the bus reports its load', () => {
  const { clock, bus, node, sink } = setup(['a', 'rx'], { a: { name: 'a', open: true, queueLimit: 100 } });
  for (let i = 0; i < 100; i++) assert.equal(node('a').sendFrame(f8(0x100)), 'queued');
  clock.advance(1, true);
  const expected = Math.floor(1 / ms(f8(0x100)));
  assert.ok(sink('rx').frames.length <= expected + 1, `at most ${expected + 1} frames fit in 1 ms, got ${sink('rx').frames.length}`);
  clock.advance(1000, true);
  assert.equal(sink('rx').frames.length, 100);
  assert.ok(Math.abs(sink('rx').frames[99]!.timeMs - 100 * ms(f8(0x100))) < 1e-6);
  assert.equal(bus.counters.frames, 100);
  assert.ok(bus.load() > 0 && bus.load() < 1);
});

test('rate limit: a node gets one frame per token; others are not held up', () => {
  const { clock, node, sink } = setup(['slow', 'fast', 'rx'], { slow: { name: 'slow', open: true, rate: { framesPerSecond: 100, burst: 1 } } });
  for (let i = 0; i < 5; i++) node('slow').sendFrame(f8(0x001));
  node('fast').sendFrame(f8(0x7ff));
  clock.advance(1000);
  const slow = sink('rx').frames.filter((x) => x.frame.id === 0x001).map((x) => x.timeMs);
  assert.equal(slow.length, 5);
  for (let i = 1; i < 5; i++) assert.ok(slow[i]! - slow[i - 1]! >= 10 - 1e-6, `10 ms between frames at 100 frames/s (${slow[i]! - slow[i - 1]!})`);
  assert.ok(sink('rx').frames.find((x) => x.frame.id === 0x7ff)!.timeMs < 1, 'the unlimited node goes in the gap');
});

test('filters: receive filters choose what a node gets; send filters refuse and count', () => {
  const { clock, node, sink } = setup(['ecu', 'cluster', 'info'], {
    cluster: { name: 'cluster', open: true, receive: [parseCanFilter('100:700')] },
    info: { name: 'info', open: true, send: [parseCanFilter('400:700')] },
  });
  node('ecu').sendFrame(f8(0x123));
  node('ecu').sendFrame(f8(0x234));
  assert.equal(node('info').sendFrame(f8(0x0a0)), 'blocked', 'infotainment may not send brake frames');
  assert.equal(node('info').sendFrame(f8(0x456)), 'queued');
  clock.advance(10);
  assert.deepEqual(sink('cluster').ids, [0x123]);
  assert.equal(node('cluster').counters.rxFiltered, 2);
  assert.deepEqual(sink('info').ids, [0x123, 0x234]);
  assert.equal(node('info').counters.txBlocked, 1);
});

test('ACK errors: a lone node raises its TEC by 8 up to error passive, then no more', () => {
  const { clock, node, sink, wire } = setup(['lone']);
  for (let i = 0; i < 20; i++) {
    node('lone').sendFrame(f8(0x100));
    clock.advance(1);
  }
  assert.equal(wire.length, 0, 'nothing was acknowledged');
  assert.equal(node('lone').counters.ackErrors, 20);
  assert.equal(node('lone').tec, 128);
  assert.equal(node('lone').state, 'passive');
  assert.deepEqual(sink('lone').states.map((s) => s.state), ['warning', 'passive']);
  assert.equal(sink('lone').errors.length, 20);
});

test('ACK: a listen-only node receives but does not acknowledge; a closed node neither', () => {
  const { clock, node, sink } = setup(['tx', 'mon', 'off'], { off: { name: 'off' } });
  node('mon').open(true);
  node('tx').sendFrame(f8(0x100));
  clock.advance(1);
  assert.equal(node('tx').counters.ackErrors, 1);
  assert.deepEqual(sink('mon').ids, []);
  assert.equal(node('mon').sendFrame(f8(1)), 'listen-only');
  assert.equal(node('off').sendFrame(f8(1)), 'closed');
  node('off').open();
  node('tx').sendFrame(f8(0x101));
  clock.advance(1);
  assert.deepEqual(sink('mon').ids, [0x101]);
  assert.deepEqual(sink('off').ids, [0x101]);
});

test('bus-off: pending frames dropped, sending refused, reported; reopening restarts the controller', () => {
  const { clock, node, sink } = setup(['a', 'b']);
  node('a').sendFrame(f8(0x100));
  node('a').sendFrame(f8(0x101));
  node('a').injectErrors(256);
  assert.equal(node('a').state, 'bus-off');
  assert.deepEqual(sink('a').states.at(-1), { state: 'bus-off', rec: 0, tec: 255 });
  assert.equal(node('a').sendFrame(f8(0x102)), 'bus-off');
  clock.advance(10);
  assert.deepEqual(sink('b').ids, [0x100], 'the frame already on the wire completes; the pending one is dropped');
  assert.equal(node('a').counters.busOffs, 1);
  node('a').close();
  node('a').open();
  assert.equal(node('a').state, 'active');
  assert.deepEqual(sink('a').states.at(-1), { state: 'active', rec: 0, tec: 0 });
  assert.equal(node('a').sendFrame(f8(0x103)), 'queued');
  clock.advance(10);
  assert.deepEqual(sink('b').ids, [0x100, 0x103]);
});

test('back-pressure: a full transmit buffer refuses, and tells the node when room appears', () => {
  const { clock, node, sink } = setup(['a', 'rx'], { a: { name: 'a', open: true, queueLimit: 2 } });
  assert.equal(node('a').sendFrame(f8(1)), 'queued'); // on the wire at once
  assert.equal(node('a').sendFrame(f8(2)), 'queued');
  assert.equal(node('a').sendFrame(f8(3)), 'queued');
  assert.equal(node('a').sendFrame(f8(4)), 'full');
  assert.equal(sink('a').spaces, 0);
  clock.advance(1);
  assert.ok(sink('a').spaces >= 1);
  assert.equal(node('a').counters.txFull, 1);
});

test('remote and FD frames travel like data frames; FD with BRS is shorter at a higher data rate', () => {
  const clock = new ManualClock();
  const bus = new CanBus({ name: 'fd', clock, bitrate: 500_000, dataBitrate: 2_000_000 });
  const rx = new RecordingSink();
  const a = bus.addNode({ name: 'a', open: true }, new RecordingSink());
  bus.addNode({ name: 'rx', open: true }, rx);
  const slow = canFrame({ id: 1, fd: true, data: new Uint8Array(64) });
  const fast = canFrame({ id: 2, fd: true, brs: true, data: new Uint8Array(64) });
  a.sendFrame(slow);
  a.sendFrame(fast);
  a.sendFrame(canFrame({ id: 3, rtr: true, rtrLength: 2 }));
  clock.advance(100);
  assert.deepEqual(rx.ids, [1, 2, 3]);
  const [t1, t2] = rx.frames.map((f) => f.timeMs);
  assert.ok(t2! - t1! < t1! / 2, 'the BRS frame takes well under half the time');
  assert.equal(bus.counters.fdFrames, 2);
  assert.equal(a.sendFrame(canFrame({ id: 0x800 })), 'invalid');
});

test('bad options are refused with the reason', () => {
  const clock = new ManualClock();
  assert.throws(() => new CanBus({ name: 'x', clock, bitrate: 10 }), { code: 'CAN_BAD_OPTION', message: /bit rate/ });
  const bus = new CanBus({ name: 'x', clock, bitrate: 125_000 });
  bus.addNode({ name: 'n' }, new RecordingSink());
  assert.throws(() => bus.addNode({ name: 'n' }, new RecordingSink()), { code: 'CAN_BAD_OPTION', message: /two nodes/ });
  assert.throws(() => bus.addNode({ name: 'r', rate: { framesPerSecond: 0 } }, new RecordingSink()), { code: 'CAN_BAD_OPTION', message: /rate/ });
  assert.throws(() => bus.addNode({ name: 'q', queueLimit: 0 }, new RecordingSink()), { code: 'CAN_BAD_OPTION', message: /queue/ });
});
