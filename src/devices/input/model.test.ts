// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-input model through the in-process harness: the select/subsel config answers for each
 * profile (bytes built here from the spec, not from profiles.ts), config writes in every form,
 * event delivery one event per buffer with frames kept whole, the cap, the status queue, short
 * buffers, scripts with wait and repeat on the harness clock, and the control requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { InputDevice, checkScript } from './model.js';
import { makeProfile, type InputType } from './profiles.js';

function device(type: InputType, o: { script?: string[]; maxPendingEvents?: number; keys?: number[] } = {}): DeviceHarness<InputDevice> {
  const profile = makeProfile({ type, width: 800, height: 480, slots: 4, ...(o.keys === undefined ? {} : { keys: o.keys }) });
  return new DeviceHarness(new InputDevice({ profile, maxPendingEvents: o.maxPendingEvents ?? 256, ...(o.script === undefined ? {} : { script: o.script }) }), { queueSize: 64 });
}

/** Writes select then subsel (one byte each, as Linux) and returns [size, u]. */
function query(h: DeviceHarness, select: number, subsel: number): [number, number[]] {
  h.runner.writeConfig(0, Uint8Array.of(select));
  h.runner.writeConfig(1, Uint8Array.of(subsel));
  const c = h.runner.readConfig(0, 136);
  return [c[2] ?? -1, [...c.subarray(8, 8 + (c[2] ?? 0))]];
}

/** A bitmap with `bits` set, `size` bytes long. */
function bitmap(size: number, bits: number[]): number[] {
  const b = new Array<number>(size).fill(0);
  for (const x of bits) b[x >> 3] = (b[x >> 3] ?? 0) | (1 << (x & 7));
  return b;
}

const le32 = (...n: number[]) => n.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff]);

/** Posts `n` 8-byte event buffers; returns their addresses. */
function post(h: DeviceHarness, n: number): number[] {
  return Array.from({ length: n }, () => {
    const addr = h.alloc.alloc(8);
    h.memory.fill(addr, 8, 0xee);
    h.submit(0, [{ addr, len: 8, writable: true }]);
    return addr;
  });
}

/** Events in the buffers at `addrs` that the device filled (in posting order: it uses them in order). */
function events(h: DeviceHarness, addrs: readonly number[]): Array<[number, number, number]> {
  for (let u = h.queue(0).popUsed(); u !== null; u = h.queue(0).popUsed()) assert.equal(u.len, 8);
  const out: Array<[number, number, number]> = [];
  for (const a of addrs) {
    const b = h.memory.read(a, 8);
    if (b.every((x) => x === 0xee)) continue;
    const v = new DataView(b.buffer);
    out.push([v.getUint16(0, true), v.getUint16(2, true), v.getInt32(4, true)]);
  }
  return out;
}

test('input: touch profile config: name, serial, ids, DIRECT, BTN_TOUCH, ABS_X/Y with the screen range; the rest size 0', () => {
  const h = device('touch');
  const text = (s: string) => [...new TextEncoder().encode(s)];
  assert.deepEqual(query(h, 0x01, 0), [22, text('AVP Virtio Touchscreen')]);
  assert.deepEqual(query(h, 0x02, 0), [9, text('AVP-touch')]);
  assert.deepEqual(query(h, 0x03, 0), [8, [0x06, 0, 0x56, 0x41, 3, 0, 1, 0]]);
  assert.deepEqual(query(h, 0x10, 0), [1, [0x02]]);
  assert.deepEqual(query(h, 0x11, 0x01), [42, bitmap(42, [0x14a])]);
  assert.deepEqual(query(h, 0x11, 0x03), [1, [0x03]]);
  assert.deepEqual(query(h, 0x11, 0x02), [0, []], 'no EV_REL');
  assert.deepEqual(query(h, 0x11, 0x14), [0, []], 'no autorepeat');
  assert.deepEqual(query(h, 0x12, 0x00), [20, le32(0, 799, 0, 0, 0)]);
  assert.deepEqual(query(h, 0x12, 0x01), [20, le32(0, 479, 0, 0, 0)]);
  assert.deepEqual(query(h, 0x12, 0x02), [0, []]);
  assert.deepEqual(query(h, 0x00, 0), [0, []], 'UNSET');
  assert.deepEqual(query(h, 0x01, 1), [0, []], 'ID_NAME subsel 1');
  assert.deepEqual(query(h, 0x42, 0), [0, []], 'unknown select');
});

test('input: keyboard config: every key to KEY_MICMUTE, autorepeat (size 1), three LEDs', () => {
  const h = device('keyboard');
  const keys = Array.from({ length: 248 }, (_, i) => i + 1);
  assert.deepEqual(query(h, 0x11, 0x01), [32, bitmap(32, keys)]);
  assert.deepEqual(query(h, 0x11, 0x14), [1, [0]]);
  assert.deepEqual(query(h, 0x11, 0x11), [1, [0x07]]);
  assert.deepEqual(query(h, 0x11, 0x03), [0, []]);
  assert.deepEqual(query(h, 0x10, 0), [0, []], 'no property bits');
});

test('input: multitouch config announces the MT axes Linux needs, with slots - 1 as ABS_MT_SLOT max', () => {
  const h = device('multitouch');
  assert.deepEqual(query(h, 0x11, 0x03), [8, bitmap(8, [0x00, 0x01, 0x2f, 0x35, 0x36, 0x39])]);
  assert.deepEqual(query(h, 0x12, 0x2f), [20, le32(0, 3, 0, 0, 0)]);
  assert.deepEqual(query(h, 0x12, 0x39), [20, le32(0, 0xffff, 0, 0, 0)]);
  assert.deepEqual(query(h, 0x12, 0x35), [20, le32(0, 799, 0, 0, 0)]);
});

test('input: select and subsel are taken from any write covering them, in any order, and from QEMU\'s whole 136-byte writes', () => {
  const h = device('touch');
  h.runner.writeConfig(1, Uint8Array.of(0x01));
  h.runner.writeConfig(0, Uint8Array.of(0x12));
  assert.equal(h.runner.readConfig(2, 1)[0], 20, 'ABS_INFO for ABS_Y');
  const whole = new Uint8Array(136).fill(0x77);
  whole[0] = 0x03;
  whole[1] = 0x00;
  h.runner.writeConfig(0, whole);
  const c = h.runner.readConfig(0, 136);
  assert.deepEqual([c[0], c[1], c[2]], [0x03, 0x00, 8]);
  assert.deepEqual([...c.subarray(3, 8)], [0, 0, 0, 0, 0], 'reserved bytes read as 0, not what was written');
  h.runner.writeConfig(2, Uint8Array.of(99, 99));
  assert.equal(h.runner.readConfig(2, 1)[0], 8, 'size is not writable');
});

test('input: injected frames wait for buffers, then go one event per buffer, in order', () => {
  const h = device('keyboard');
  assert.equal(h.device.control('key KEY_A').ok, true);
  assert.equal(h.device.metrics().pendingEvents, 4);
  const addrs = post(h, 3);
  assert.deepEqual(events(h, addrs), [[1, 30, 1], [0, 0, 0], [1, 30, 0]]);
  const more = post(h, 2);
  assert.deepEqual(events(h, more), [[0, 0, 0]], 'the rest of the frame; one buffer stays posted');
  assert.equal(h.device.metrics().heldBuffers, 1);
  assert.ok(h.notifications[0] !== undefined && h.notifications[0] >= 2);
});

test('input: touch, multitouch and tablet taps give the evdev frames Linux expects', () => {
  const t = device('touch');
  const ta = post(t, 8);
  assert.equal(t.device.control('touch 120,300').ok, true);
  assert.deepEqual(events(t, ta), [[3, 0, 120], [3, 1, 300], [1, 0x14a, 1], [0, 0, 0], [1, 0x14a, 0], [0, 0, 0]]);

  const m = device('multitouch');
  const ma = post(m, 16);
  assert.equal(m.device.control('touch 100,200').ok, true);
  assert.deepEqual(events(m, ma), [
    [3, 0x2f, 0], [3, 0x39, 0], [3, 0x35, 100], [3, 0x36, 200], [1, 0x14a, 1], [3, 0, 100], [3, 1, 200], [0, 0, 0],
    [3, 0x2f, 0], [3, 0x39, -1], [1, 0x14a, 0], [0, 0, 0],
  ]);
  const mb = post(m, 20);
  assert.equal(m.device.control('touch 10,20 30,40').ok, true, 'two fingers');
  // Four buffers of the first batch were still held: the device fills those first.
  const two = events(m, [...ma, ...mb]).slice(12);
  assert.deepEqual(two.slice(0, 8), [[3, 0x2f, 0], [3, 0x39, 1], [3, 0x35, 10], [3, 0x36, 20], [3, 0x2f, 1], [3, 0x39, 2], [3, 0x35, 30], [3, 0x36, 40]]);

  const p = device('tablet');
  const pa = post(p, 8);
  assert.equal(p.device.control('touch 5,6').ok, true);
  assert.deepEqual(events(p, pa), [[3, 0, 5], [3, 1, 6], [1, 0x110, 1], [0, 0, 0], [1, 0x110, 0], [0, 0, 0]]);
});

test('input: down, move and up track fingers per slot; BTN_TOUCH follows the first and last finger', () => {
  const m = device('multitouch');
  const a = post(m, 40);
  for (const s of ['down 1,1 0', 'down 2,2 1', 'move 3,3 1', 'up 0', 'up 1']) assert.equal(m.device.control(s).ok, true, s);
  const e = events(m, a);
  const syns = e.filter((x) => x[0] === 0).length;
  assert.equal(syns, 5);
  assert.deepEqual(e.filter((x) => x[0] === 1), [[1, 0x14a, 1], [1, 0x14a, 0]]);
  assert.equal(m.device.control('move 1,1 2').ok, false, 'slot 2 is not down');
});

test('input: steps that do not fit the device are refused with a reason; nothing is queued', () => {
  const h = device('touch');
  const bad: Array<[string, RegExp]> = [
    ['key KEY_A', /has no key KEY_A/],
    ['touch 800,1', /X from 0 to 799/],
    ['touch 1,1 2,2', /several fingers/],
    ['wait 10', /scripts only/],
    ['fly away', /unknown step 'fly'/],
    ['event EV_REL REL_X 1', /does not report event type EV_REL/],
    ['event EV_KEY BTN_TOUCH 99999999999', /32-bit/],
  ];
  for (const [line, re] of bad) {
    const r = h.device.control(line);
    assert.equal(r.ok, false, line);
    assert.match(r.ok ? '' : r.error, re, line);
  }
  assert.equal(h.device.metrics().pendingEvents, 0);
  assert.equal(h.device.metrics().badSteps, bad.length);
  const info = h.device.control('info');
  assert.equal(info.ok, true);
});

test('input: past maxPendingEvents whole frames are dropped, never part of one', () => {
  const h = device('keyboard', { maxPendingEvents: 16 });
  for (let i = 0; i < 10; i++) h.device.control('key KEY_B');
  const m = h.device.metrics();
  assert.equal(m.pendingEvents, 16);
  assert.equal(m.framesDropped, 12);
  const a = post(h, 16);
  const e = events(h, a);
  assert.equal(e.length, 16);
  assert.deepEqual(e.at(-1), [0, 0, 0], 'ends on a frame boundary');
});

test('input: the status queue records LED state; short buffers on either queue are returned with used length 0', () => {
  const h = device('keyboard');
  const led = (code: number, value: number) => {
    const addr = h.alloc.alloc(8);
    h.memory.write(addr, Uint8Array.of(0x11, 0, code, 0, value, 0, 0, 0));
    return { addr, len: 8 };
  };
  assert.equal(h.request(1, [led(1, 1)]).len, 0);
  assert.equal(h.request(1, [led(0, 0)]).len, 0);
  assert.equal(h.request(1, [{ addr: h.alloc.alloc(4), len: 4 }]).len, 0, 'short status buffer');
  assert.equal(h.request(0, [{ addr: h.alloc.alloc(4), len: 4, writable: true }]).len, 0, 'short event buffer');
  const m = h.device.metrics();
  assert.deepEqual(m.leds, { capslock: true, numlock: false });
  assert.equal(m.statusEvents, 2);
  assert.equal(m.badChains, 2);
});

test('input: a script starts when the driver posts buffers, waits on the device clock, repeats, and stops at reset', () => {
  const h = device('touch', { script: ['touch 1,2', 'wait 100', 'key BTN_TOUCH', 'wait 50', 'repeat'] });
  const a = post(h, 60);
  assert.equal(events(h, a).length, 6, 'the first tap at once');
  h.reactor.advance(99);
  assert.equal(events(h, a).length, 6);
  h.reactor.advance(1);
  assert.equal(events(h, a).length, 10, 'after wait 100, the key');
  h.reactor.advance(50);
  assert.equal(events(h, a).length, 16, 'repeat: the tap again');
  h.runner.reset();
  assert.equal(h.reactor.pendingTimers(), 0, 'reset cancels the script');
});

test('input: scripts are checked up front: bad steps name their number; repeat needs a wait', () => {
  const p = makeProfile({ type: 'touch', width: 100, height: 100, slots: 1 });
  assert.throws(() => checkScript(p, ['touch 1,1', 'key KEY_X']), /script step 2: .*no key KEY_X/);
  assert.throws(() => checkScript(p, ['touch 1,1', 'repeat']), /step 2: repeat needs a wait/);
  assert.doesNotThrow(() => checkScript(p, ['touch 1,1', 'wait 10', 'repeat']));
  assert.throws(() => new InputDevice({ profile: p, maxPendingEvents: 16, script: ['touch 200,1'] }), /script step 1/);
});

test('input: buttons devices report only their keys; type needs a keyboard', () => {
  const h = device('buttons', { keys: [115, 114] });
  assert.deepEqual(query(h, 0x11, 0x01), [15, bitmap(15, [114, 115])]);
  assert.equal(h.device.control('key KEY_VOLUMEUP').ok, true);
  assert.equal(h.device.control('type a').ok, false);
  const k = device('keyboard');
  const a = post(k, 8);
  assert.equal(k.device.control('type A').ok, true);
  assert.deepEqual(events(k, a), [[1, 42, 1], [0, 0, 0], [1, 30, 1], [0, 0, 0], [1, 30, 0], [0, 0, 0], [1, 42, 0], [0, 0, 0]]);
});
