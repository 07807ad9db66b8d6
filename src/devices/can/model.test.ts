// SPDX-License-Identifier: Apache-2.0
/** virtio-can through the in-process harness (VIRTIO 1.4 "CAN Device"), with a fake bus link. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canFrame } from '../../can/index.js';
import { DeviceHarness } from '../../device/harness.js';
import { StandaloneLink } from './host.js';
import { CanDevice, RX_BACKLOG_LIMIT } from './model.js';
import { FakeLink, controlOut, txOut } from './testing.js';

const OK = 0;
const NOT_OK = 1;
const START = 0x0201;
const STOP = 0x0202;
const EXT = 0x8000;
const FD = 0x4000;
const RTR = 0x2000;

function setup(opts: { fd?: boolean; rtr?: boolean; features?: bigint; link?: FakeLink | StandaloneLink } = {}) {
  const link = opts.link ?? new FakeLink();
  const dev = new CanDevice({ link, ...(opts.fd === undefined ? {} : { fd: opts.fd }), ...(opts.rtr === undefined ? {} : { rtr: opts.rtr }) });
  const h = new DeviceHarness(dev, opts.features === undefined ? {} : { features: opts.features });
  const req = (queue: number, out: Uint8Array, inLen = 1): { len: number; result: number } => {
    const a = h.alloc.alloc(out.length);
    h.memory.write(a, out);
    const r = h.alloc.alloc(inLen);
    h.memory.fill(r, inLen, 0xee);
    const used = h.request(queue, [{ addr: a, len: out.length }, { addr: r, len: inLen, writable: true }]);
    return { len: used.len, result: h.memory.read(r, 1)[0] ?? -1 };
  };
  const control = (msg: number) => req(2, controlOut(msg)).result;
  const send = (f: Parameters<typeof txOut>[0]) => req(0, txOut(f)).result;
  /** Posts a receive buffer of `len` bytes; returns its address. */
  const postRx = (len = 16 + 64): number => {
    const a = h.alloc.alloc(len);
    h.memory.fill(a, len, 0xee);
    h.submit(1, [{ addr: a, len, writable: true }]);
    return a;
  };
  return { h, dev, link, control, send, postRx };
}

test('can: config status is 0; offered features follow the options', () => {
  const { h, dev } = setup();
  assert.deepEqual([...h.runner.readConfig(0, 2)], [0, 0]);
  assert.equal(dev.offeredFeatures & 0b111n, 0b111n);
  assert.equal(new CanDevice({ fd: false, rtr: false }).offeredFeatures & 0b111n, 0b001n);
});

test('can: STOPPED at first; START, frames sent in order; STOP; unknown control NOT_OK', () => {
  const { control, send, link } = setup();
  assert.equal(send({ id: 0x123, sdu: [1] }), NOT_OK, 'STOPPED refuses frames');
  assert.equal(control(START), OK);
  assert.equal(send({ id: 0x123, sdu: [1, 2] }), OK);
  assert.equal(send({ id: 0x1abcdef, flags: EXT, sdu: [] }), OK);
  assert.equal(control(0x0299), NOT_OK);
  assert.equal(control(STOP), OK);
  assert.equal(send({ id: 0x124 }), NOT_OK);
  assert.ok(link instanceof FakeLink);
  assert.deepEqual(link.sent, [canFrame({ id: 0x123, data: [1, 2] }), canFrame({ id: 0x1abcdef, extended: true })]);
  assert.deepEqual(link.stats, { starts: 1, stops: 1 });
});

test('can: START fails when the bus cannot be reached', () => {
  const link = new FakeLink();
  link.reachable = false;
  const { control, send } = setup({ link });
  assert.equal(control(START), NOT_OK);
  assert.equal(send({ id: 1 }), NOT_OK);
});

test('can: hostile frames are refused and counted; the device keeps working', () => {
  const { control, send, dev, link } = setup({ features: 0x1_3000_0001n }); // VERSION_1, INDIRECT, EVENT_IDX, CLASSIC only
  control(START);
  const bad: Array<Parameters<typeof txOut>[0]> = [
    { id: 1, flags: 0x1 },
    { id: 1, flags: 0x10000 },
    { id: 1, msgType: 0x0101 },
    { id: 0x800 },
    { id: 0x20000000, flags: EXT },
    { id: 1, length: 9, sdu: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
    { id: 1, length: 8, sdu: [1] },
    { id: 1, flags: FD, sdu: [1] },
    { id: 1, flags: RTR, length: 1 },
  ];
  for (const f of bad) assert.equal(send(f), NOT_OK, JSON.stringify(f));
  assert.equal(send({ id: 7, sdu: [7] }), OK);
  assert.equal(dev.counters.txInvalid, bad.length);
  assert.ok(link instanceof FakeLink);
  assert.equal(link.sent.length, 1);
});

test('can: a short header, and a chain without a result byte', () => {
  const { h, control, dev } = setup();
  control(START);
  const a = h.alloc.alloc(8);
  h.memory.write(a, txOut({ id: 1 }).subarray(0, 8));
  const r = h.alloc.alloc(1);
  assert.equal(h.request(0, [{ addr: a, len: 8 }, { addr: r, len: 1, writable: true }]).len, 1);
  assert.equal(h.memory.read(r, 1)[0], NOT_OK);
  const b = h.alloc.alloc(16);
  h.memory.write(b, txOut({ id: 1 }));
  assert.equal(h.request(0, [{ addr: b, len: 16 }]).len, 0, 'no writable byte: used length 0');
  assert.equal(h.request(2, [{ addr: b, len: 2 }]).len, 0);
  assert.equal(dev.counters.badChains, 2);
});

test('can: FD frames of valid lengths; FD remote frames refused; remote frames carry their length', () => {
  const { control, send, link } = setup();
  control(START);
  assert.equal(send({ id: 2, flags: FD, sdu: new Array<number>(64).fill(5) }), OK);
  assert.equal(send({ id: 2, flags: FD, sdu: new Array<number>(9).fill(5) }), NOT_OK);
  assert.equal(send({ id: 2, flags: FD | RTR, length: 8 }), NOT_OK);
  assert.equal(send({ id: 3, flags: RTR, length: 4 }), OK);
  assert.ok(link instanceof FakeLink);
  assert.deepEqual(link.sent, [canFrame({ id: 2, fd: true, data: new Uint8Array(64).fill(5) }), canFrame({ id: 3, rtr: true, rtrLength: 4 })]);
});

test('can: frames from the bus fill posted receive buffers, as virtio_can_rx', () => {
  const { h, control, link, postRx, dev } = setup();
  control(START);
  assert.ok(link instanceof FakeLink);
  link.events?.frame(canFrame({ id: 0x1abcdef, extended: true, data: [0xde, 0xad] })); // no buffer yet: backlog
  const a = postRx();
  let used = h.queue(1).popUsed();
  assert.equal(used?.len, 18);
  assert.deepEqual([...h.memory.read(a, 18)], [0x01, 0x01, 2, 0, 0, 0, 0, 0, 0x00, 0x80, 0, 0, 0xef, 0xcd, 0xab, 0x01, 0xde, 0xad]);
  const b = postRx();
  link.events?.frame(canFrame({ id: 0x55, rtr: true, rtrLength: 3 }));
  used = h.queue(1).popUsed();
  assert.equal(used?.len, 16);
  assert.deepEqual([...h.memory.read(b, 16)], [0x01, 0x01, 3, 0, 0, 0, 0, 0, 0x00, 0x20, 0, 0, 0x55, 0, 0, 0]);
  // A buffer too small for an FD frame: the frame is lost, the buffer comes back empty.
  postRx(16 + 8);
  link.events?.frame(canFrame({ id: 9, fd: true, data: new Uint8Array(12) }));
  assert.equal(h.queue(1).popUsed()?.len, 0);
  assert.equal(dev.counters.rxFrames, 2);
  assert.equal(dev.counters.rxDropped, 1);
});

test('can: frames while STOPPED or of types not negotiated are dropped; the backlog is bounded', () => {
  const { control, link, dev } = setup({ features: 0x1_3000_0001n });
  assert.ok(link instanceof FakeLink);
  link.events?.frame(canFrame({ id: 1 }));
  control(START);
  link.events?.frame(canFrame({ id: 1, fd: true, data: new Uint8Array(12) }));
  link.events?.frame(canFrame({ id: 1, rtr: true }));
  assert.equal(dev.counters.rxDropped, 3);
  for (let i = 0; i < RX_BACKLOG_LIMIT + 10; i++) link.events?.frame(canFrame({ id: 2 }));
  assert.equal(dev.counters.rxDropped, 13);
  assert.equal(dev.metrics()['rxBacklog'], RX_BACKLOG_LIMIT);
});

test('can: a busy link holds transmit buffers in order until it is writable', () => {
  const { h, control, link, dev } = setup();
  control(START);
  assert.ok(link instanceof FakeLink);
  link.answer = 'busy';
  const results: number[] = [];
  for (const id of [1, 2, 3]) {
    const body = txOut({ id, sdu: [id] });
    const a = h.alloc.alloc(body.length);
    h.memory.write(a, body);
    const r = h.alloc.alloc(1);
    results.push(r);
    h.submit(0, [{ addr: a, len: body.length }, { addr: r, len: 1, writable: true }]);
  }
  assert.equal(h.queue(0).popUsed(), null, 'nothing completed while busy');
  assert.equal(dev.metrics()['pendingTx'], 3);
  link.answer = 'ok';
  link.events?.writable();
  assert.deepEqual(link.sent.map((f) => f.id), [1, 2, 3]);
  for (let i = 0; i < 3; i++) assert.equal(h.queue(0).popUsed()?.len, 1);
  assert.deepEqual(results.map((r) => h.memory.read(r, 1)[0]), [OK, OK, OK]);
});

test('can: STOP cancels held transmissions with NOT_OK', () => {
  const { h, control, link } = setup();
  control(START);
  assert.ok(link instanceof FakeLink);
  link.answer = 'busy';
  const body = txOut({ id: 1 });
  const a = h.alloc.alloc(body.length);
  h.memory.write(a, body);
  const r = h.alloc.alloc(1);
  h.submit(0, [{ addr: a, len: body.length }, { addr: r, len: 1, writable: true }]);
  assert.equal(control(STOP), OK);
  assert.equal(h.queue(0).popUsed()?.len, 1);
  assert.equal(h.memory.read(r, 1)[0], NOT_OK);
});

test('can: bus-off sets CTRL_BUSOFF, stops the controller, cancels held frames; START clears it', () => {
  const { h, control, send, link, dev } = setup();
  control(START);
  assert.ok(link instanceof FakeLink);
  link.events?.busOff();
  assert.deepEqual([...h.runner.readConfig(0, 2)], [1, 0]);
  assert.equal(send({ id: 1 }), NOT_OK);
  assert.equal(control(START), OK);
  assert.deepEqual([...h.runner.readConfig(0, 2)], [0, 0]);
  assert.equal(send({ id: 1 }), OK);
  assert.equal(dev.counters.busOffs, 1);
});

test('can: own bus with loopback echoes frames; bus-off after N frames fails the N-th', () => {
  const { h, control, send, postRx } = setup({ link: new StandaloneLink({ loopback: true, busOffAfter: 3 }) });
  control(START);
  assert.equal(send({ id: 0x42, sdu: [1] }), OK);
  const a = postRx();
  h.reactor.advance(1);
  assert.equal(h.queue(1).popUsed()?.len, 17);
  assert.deepEqual([...h.memory.read(a + 12, 5)], [0x42, 0, 0, 0, 1]);
  assert.equal(send({ id: 2 }), OK);
  assert.equal(send({ id: 3 }), NOT_OK, 'the third frame drives the controller bus-off');
  assert.deepEqual([...h.runner.readConfig(0, 2)], [1, 0]);
  assert.equal(send({ id: 4 }), NOT_OK);
  assert.equal(control(START), OK);
  assert.equal(send({ id: 5 }), OK);
});
