// SPDX-License-Identifier: Apache-2.0
/** virtio-console through the in-process harness (VIRTIO 1.3 §5.3), as Linux's multiport driver drives it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { ConsoleDevice } from './model.js';
import { MemoryPortHost, ctl } from './testing.js';

function setup() {
  const console0 = new MemoryPortHost(false);
  const named = new MemoryPortHost(true);
  const emerg: number[] = [];
  const h = new DeviceHarness(new ConsoleDevice({ ports: [{ name: 'console', host: console0 }, { name: 'org.avp.x', host: named }], emergency: (b) => emerg.push(b) }));
  const post = (q: number, n = 64): number => {
    const a = h.alloc.alloc(n);
    h.submit(q, [{ addr: a, len: n, writable: true }]);
    return a;
  };
  const send = (bytes: Uint8Array, q = 3) => {
    const a = h.alloc.alloc(bytes.length);
    h.memory.write(a, bytes);
    return h.request(q, [{ addr: a, len: bytes.length }]);
  };
  /** Control messages the device put in posted buffers since the last call. */
  const received = (): Array<[number, number, number, string]> => {
    const out: Array<[number, number, number, string]> = [];
    for (let u = h.queue(2).popUsed(); u !== null; u = h.queue(2).popUsed()) out.push([u.len, 0, 0, '']);
    return out;
  };
  return { h, console0, named, emerg, post, send, received };
}

test('console: config, DEVICE_READY → PORT_ADD per port, PORT_READY → CONSOLE_PORT, PORT_NAME, PORT_OPEN', () => {
  const { h, post, send, named } = setup();
  const cfg = h.runner.readConfig(0, 12);
  assert.deepEqual([...cfg], [80, 0, 25, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
  const bufs = Array.from({ length: 6 }, () => post(2));
  send(ctl(0xffffffff, 0, 1));
  assert.deepEqual([...h.memory.read(bufs[0] ?? 0, 8)], [...ctl(0, 1, 0)]);
  assert.deepEqual([...h.memory.read(bufs[1] ?? 0, 8)], [...ctl(1, 1, 0)]);
  send(ctl(0xffffffff, 0, 1));
  send(ctl(0, 3, 1));
  assert.deepEqual([...h.memory.read(bufs[2] ?? 0, 8)], [...ctl(0, 4, 1)], 'CONSOLE_PORT for port 0 (not PORT_ADD again)');
  assert.deepEqual([...h.memory.read(bufs[3] ?? 0, 15)], [...ctl(0, 7, 1), ...new TextEncoder().encode('console')]);
  send(ctl(1, 3, 1));
  assert.deepEqual([...h.memory.read(bufs[4] ?? 0, 17)], [...ctl(1, 7, 1), ...new TextEncoder().encode('org.avp.x')]);
  assert.deepEqual([...h.memory.read(bufs[5] ?? 0, 8)], [...ctl(1, 6, 1)], 'the log-bound port is host-connected');
  send(ctl(1, 6, 1));
  assert.equal(h.device.metrics().ports[1]?.guestOpen, true);
  assert.equal(named.written.length, 0);
});

test('console: port data both ways; host bytes wait for a buffer; emergency write before activation', () => {
  const { h, post, send, named, emerg, console0 } = setup();
  h.device.writeConfig(8, Uint8Array.of(0x41, 0, 0, 0));
  assert.deepEqual(emerg, [0x41]);
  send(new TextEncoder().encode('boot\n'), 1);
  assert.deepEqual(console0.written, [...new TextEncoder().encode('boot\n')]);
  send(ctl(0xffffffff, 0, 1));
  send(Uint8Array.of(1, 2, 3), 5);
  assert.deepEqual(named.written, [1, 2, 3]);
  named.send(Uint8Array.of(9, 8, 7, 6, 5));
  const a = post(4, 3);
  assert.equal(h.queue(4).popUsed()?.len, 3);
  assert.deepEqual([...h.memory.read(a, 3)], [9, 8, 7]);
  const b = post(4, 16);
  assert.equal(h.queue(4).popUsed()?.len, 2);
  assert.deepEqual([...h.memory.read(b, 2)], [6, 5]);
});

test('console: hostile control messages are counted and ignored', () => {
  const { h, post, send } = setup();
  send(ctl(0, 3, 1));
  send(ctl(0xffffffff, 0, 1));
  send(ctl(99, 3, 1));
  send(ctl(0, 0x7777, 1));
  send(Uint8Array.of(1, 2));
  assert.equal(h.device.metrics().control.bad, 4, 'PORT_READY before ADD, no port 99, unknown event, short');
  const small = post(2, 4);
  void small;
  // Two PORT_ADDs were pending; the 4-byte buffer cannot hold one: dropped, used length 0.
  assert.equal(h.queue(2).popUsed()?.len, 0);
  assert.equal(h.device.metrics().control.dropped, 1);
});
