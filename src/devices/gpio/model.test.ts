// SPDX-License-Identifier: Apache-2.0
/** virtio-gpio through the in-process harness (VIRTIO 1.3 §5.17): requests, interrupts, timeline, reset. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualReactor } from '../../device/manual-reactor.js';
import { SignalTrace } from '../signal-trace.js';
import { buildLines, buildTimeline, parseDriveStep } from './lines.js';
import { GpioDevice } from './model.js';
import { GpioDriver } from './testing.js';

// Message types, statuses and values, written out from the spec (not imported from spec.ts).
const GET_NAMES = 1;
const GET_DIR = 2;
const SET_DIR = 3;
const GET_VAL = 4;
const SET_VAL = 5;
const IRQ_TYPE = 6;
const OK = 0;
const ERR = 1;
const [NONE, OUT, IN] = [0, 1, 2];
const [RISING, FALLING, BOTH, HIGH, LOW] = [1, 2, 3, 4, 8];
const [INVALID, VALID] = [0, 1];
const VERSION_1 = 1n << 32n;
const F_IRQ = 1n;

function device(lines = ['door:in', 'led:out=1', 'ignition:in=1'], extra: Partial<ConstructorParameters<typeof GpioDevice>[0]> = {}) {
  return new GpioDevice({ lines: buildLines(lines, 4), ...extra });
}

test('gpio: config holds ngpio and the names block size; GET_LINE_NAMES returns the block (used length 1 + size)', () => {
  const g = new GpioDriver(device());
  const cfg = g.h.runner.readConfig(0, 8);
  const names = 'door\0led\0ignition\0\0';
  assert.deepEqual([...cfg], [4, 0, 0, 0, names.length, 0, 0, 0]);
  const a = g.request(GET_NAMES, 0, 0, 1 + names.length);
  assert.equal(a.status, OK);
  assert.equal(a.len, 1 + names.length);
  assert.equal(new TextDecoder().decode(a.bytes.subarray(1)), names);
  // A response buffer too small for the block: ERR, nothing written past it.
  const short = g.request(GET_NAMES, 0, 0, 4);
  assert.deepEqual([short.status, short.len], [ERR, 2]);
});

test('gpio: no names at all → gpio_names_size 0 and GET_LINE_NAMES is an error', () => {
  const g = new GpioDriver(new GpioDevice({ lines: buildLines([], 3) }));
  assert.deepEqual([...g.h.runner.readConfig(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(g.request(GET_NAMES, 0, 0, 8).status, ERR);
});

test('gpio: directions and values: configured start, read-back, value before output, NONE discards state', () => {
  const g = new GpioDriver(device());
  assert.deepEqual([0, 1, 2, 3].map((i) => g.request(GET_DIR, i).value), [IN, OUT, IN, IN]);
  assert.deepEqual([0, 1, 2].map((i) => g.request(GET_VAL, i).value), [0, 1, 1], 'door low, led driven high, ignition high');
  assert.deepEqual(g.request(SET_VAL, 1, 0), { status: OK, value: 0, len: 2, bytes: Uint8Array.of(0, 0) });
  assert.equal(g.request(GET_VAL, 1).value, 0);
  // §5.17.6.5: a value set while an input is driven once the line becomes an output.
  g.request(SET_VAL, 0, 1);
  assert.equal(g.request(GET_VAL, 0).value, 0, 'still an input: reads the external level');
  g.request(SET_DIR, 0, OUT);
  assert.equal(g.request(GET_VAL, 0).value, 1);
  g.request(SET_DIR, 0, NONE);
  assert.equal(g.request(GET_DIR, 0).value, NONE);
  g.request(SET_DIR, 0, OUT);
  assert.equal(g.request(GET_VAL, 0).value, 0, 'NONE discarded the output value');
  assert.equal(g.h.device.metrics().guestChanges > 0, true);
});

test('gpio: bad requests get ERR and the device goes on', () => {
  const g = new GpioDriver(device());
  for (const [type, gpio, value] of [[0x99, 0, 0], [GET_VAL, 4, 0], [SET_VAL, 0xffff, 1], [SET_DIR, 0, 3], [SET_VAL, 0, 2], [IRQ_TYPE, 1, RISING], [IRQ_TYPE, 0, 5]] as const) {
    const a = g.request(type, gpio, value);
    assert.deepEqual([a.status, a.len], [ERR, 2], `type ${type} gpio ${gpio} value ${value}`);
  }
  // A 1-byte response buffer: ERR in the one byte, used length 1.
  assert.deepEqual(g.request(GET_VAL, 0, 0, 1).len, 1);
  // A request shorter than 8 bytes: used length 0.
  const req = g.h.alloc.alloc(4);
  const resp = g.h.alloc.alloc(2);
  assert.equal(g.h.request(0, [{ addr: req, len: 4 }, { addr: resp, len: 2, writable: true }]).len, 0);
  assert.equal(g.request(GET_DIR, 0).status, OK);
  assert.equal(g.h.device.metrics().malformed, 1);
});

test('gpio: an edge interrupt fires on a held buffer, is latched while masked, and only for its edge', () => {
  const g = new GpioDriver(device());
  assert.equal(g.request(IRQ_TYPE, 0, RISING).status, OK);
  const b1 = g.irqBuffer(0);
  assert.deepEqual(g.eventUsed(), [], 'held until the edge');
  g.h.device.driveLevel(0, 1, 'host');
  assert.deepEqual(g.eventUsed(), [{ head: b1.head, len: 1 }]);
  assert.equal(g.statusAt(b1.status), VALID);
  assert.ok((g.h.notifications[1] ?? 0) >= 1);
  // Masked (no buffer): a falling edge is not ours, a rising one is latched.
  g.h.device.driveLevel(0, 0, 'host');
  const b2 = g.irqBuffer(0);
  assert.deepEqual(g.eventUsed(), [], 'a falling edge does not fire a rising interrupt');
  g.request(IRQ_TYPE, 0, NONE);
  assert.equal(g.statusAt(b2.status), INVALID);
  g.eventUsed();
  g.request(IRQ_TYPE, 0, RISING);
  g.h.device.driveLevel(0, 1, 'host');
  const b3 = g.irqBuffer(0);
  assert.deepEqual(g.eventUsed(), [{ head: b3.head, len: 1 }], 'the latched edge fires when the buffer arrives');
  assert.equal(g.statusAt(b3.status), VALID);
  assert.equal(g.h.device.metrics().interrupts, 2);
});

test('gpio: both edges; falling', () => {
  const g = new GpioDriver(device());
  g.request(IRQ_TYPE, 2, FALLING);
  const b = g.irqBuffer(2);
  g.h.device.driveLevel(2, 0, 'host');
  assert.equal(g.statusAt(b.status), VALID);
  g.eventUsed();
  g.request(IRQ_TYPE, 2, NONE);
  g.request(IRQ_TYPE, 2, BOTH);
  for (const v of [1, 0] as const) {
    const x = g.irqBuffer(2);
    g.h.device.driveLevel(2, v, 'trace');
    assert.equal(g.statusAt(x.status), VALID, `edge to ${v}`);
    g.eventUsed();
  }
});

test('gpio: level interrupts fire while the level is active, are not latched, and fire at once on an active line', () => {
  const g = new GpioDriver(device());
  g.request(IRQ_TYPE, 2, HIGH);
  const b1 = g.irqBuffer(2);
  assert.equal(g.statusAt(b1.status), VALID, 'ignition is high: fires at once');
  g.eventUsed();
  g.h.device.driveLevel(2, 0, 'host');
  g.h.device.driveLevel(2, 1, 'host');
  g.h.device.driveLevel(2, 0, 'host');
  const b2 = g.irqBuffer(2);
  assert.deepEqual(g.eventUsed(), [], 'a level that came and went while masked is not latched');
  g.h.device.driveLevel(2, 1, 'host');
  assert.equal(g.statusAt(b2.status), VALID);
  g.eventUsed();
  g.request(IRQ_TYPE, 2, NONE);
  g.request(IRQ_TYPE, 0, LOW);
  assert.equal(g.statusAt(g.irqBuffer(0).status), VALID, 'door is low: level-low fires at once');
});

test('gpio: INVALID returns: not enabled, no such line, a second pair, disable, direction NONE', () => {
  const g = new GpioDriver(device());
  const notEnabled = g.irqBuffer(0);
  const noLine = g.irqBuffer(9);
  assert.deepEqual(g.eventUsed().map((u) => u.head), [notEnabled.head, noLine.head]);
  assert.deepEqual([g.statusAt(notEnabled.status), g.statusAt(noLine.status)], [INVALID, INVALID]);
  g.request(IRQ_TYPE, 0, RISING);
  const held = g.irqBuffer(0);
  const dup = g.irqBuffer(0);
  assert.deepEqual(g.eventUsed(), [{ head: dup.head, len: 1 }]);
  g.request(SET_DIR, 0, NONE);
  assert.deepEqual(g.eventUsed(), [{ head: held.head, len: 1 }]);
  assert.equal(g.statusAt(held.status), INVALID);
  assert.equal(g.h.device.metrics().invalidated, 4);
});

test('gpio: without VIRTIO_GPIO_F_IRQ negotiated SET_IRQ_TYPE is an error; --no-irq offers no F_IRQ', () => {
  const g = new GpioDriver(device(), { features: VERSION_1 });
  assert.equal(g.request(IRQ_TYPE, 0, RISING).status, ERR);
  assert.equal(device(undefined, { irq: false }).offeredFeatures & F_IRQ, 0n);
  assert.equal(device().offeredFeatures & F_IRQ, F_IRQ);
});

test('gpio: the trace and the script drive levels from the first activation; a reset keeps external levels', () => {
  const trace = SignalTrace.parse('time,signal,value\n0,DoorOpen,1\n2,DoorOpen,0\n5,DoorOpen,3.5\n0,ignition,0\n');
  const lines = buildLines(['door:in@DoorOpen', 'led:out', 'ignition:in=1'], undefined);
  const timeline = buildTimeline(lines, trace, ['1.5:ignition=1', '2:door=1'].map(parseDriveStep));
  const reactor = new ManualReactor();
  reactor.advance(10_000); // the device starts later than the clock
  const dev = new GpioDevice({ lines, timeline });
  const g = new GpioDriver(dev, { reactor });
  const levels = () => [0, 2].map((i) => g.request(GET_VAL, i).value);
  assert.deepEqual(levels(), [1, 0], 'time 0 of the trace applied at activation');
  reactor.advance(1499);
  assert.deepEqual(levels(), [1, 0]);
  reactor.advance(1);
  assert.deepEqual(levels(), [1, 1], 'the script at 1.5 s');
  reactor.advance(500);
  assert.deepEqual(levels(), [1, 1], 'at 2 s the trace says 0 but the script step (after it) says 1');
  reactor.advance(3000);
  assert.deepEqual(levels(), [1, 1], '3.5 is high');
  assert.equal(reactor.pendingTimers(), 0, 'the timeline is done');
  g.request(SET_DIR, 1, OUT);
  g.request(SET_VAL, 1, 1);
  g.h.runner.reset();
  const g2 = new GpioDriver(dev, { reactor });
  assert.deepEqual([0, 1, 2].map((i) => g2.request(GET_VAL, i).value), [1, 0, 1], 'led back to its configured 0; external levels kept');
});
