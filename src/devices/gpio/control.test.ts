// SPDX-License-Identifier: Apache-2.0
/** The GPIO control socket over fake host sockets: requests, events, caps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualReactor } from '../../device/manual-reactor.js';
import { FakeUnixStreams, pump } from '../vsock/testing.js';
import { CONTROL_MAX_CLIENTS, GpioControlServer } from './control.js';
import { buildLines } from './lines.js';
import { GpioDevice } from './model.js';
import { GpioDriver } from './testing.js';

const PATH = '/run/gpio.ctl';

function setup() {
  const fake = new FakeUnixStreams();
  const reactor = new ManualReactor();
  let server: GpioControlServer | undefined;
  const dev = new GpioDevice({
    lines: buildLines(['door:in', 'led:out'], 3),
    control: (h) => (server = new GpioControlServer(PATH, fake, h)),
  });
  // Safe: the device built the server in its constructor.
  const srv = server!;
  return { fake, reactor, dev, srv };
}

/** Every JSON line the client got so far. */
function answers(s: { take(): Uint8Array }): Array<Record<string, unknown>> {
  return new TextDecoder()
    .decode(s.take())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('gpio control: the socket exists at once and serves from the first activation', () => {
  const { fake, reactor, dev, srv } = setup();
  assert.ok(fake.listeners.has(PATH));
  const c = fake.clientConnect(PATH);
  c.send('list\n');
  pump(reactor, fake);
  assert.deepEqual(answers(c), [], 'not served before the guest starts the device');
  const g = new GpioDriver(dev, { reactor });
  pump(reactor, fake);
  const [list] = answers(c);
  assert.deepEqual(list, {
    ok: true,
    lines: [
      { line: 0, name: 'door', direction: 'in', value: 0, level: 0, irq: 'none' },
      { line: 1, name: 'led', direction: 'out', value: 0, level: 0, irq: 'none' },
      { line: 2, name: '', direction: 'in', value: 0, level: 0, irq: 'none' },
    ],
  });
  assert.equal(srv.clientCount, 1);
  assert.equal(g.request(4, 0).value, 0);
});

test('gpio control: set drives the level the guest reads; guest changes and host changes are events to every client', () => {
  const { fake, reactor, dev } = setup();
  const g = new GpioDriver(dev, { reactor });
  const a = fake.clientConnect(PATH);
  const b = fake.clientConnect(PATH);
  pump(reactor, fake);
  a.send('set door 1\nget 0\nset 1 1\n');
  pump(reactor, fake);
  assert.equal(g.request(4, 0).value, 1, 'the guest reads the host-driven level');
  assert.deepEqual(answers(a), [
    { event: 'level', line: 0, name: 'door', value: 1, by: 'host' },
    { ok: true, line: { line: 0, name: 'door', direction: 'in', value: 1, level: 1, irq: 'none' } },
    { ok: true, line: { line: 0, name: 'door', direction: 'in', value: 1, level: 1, irq: 'none' } },
    { event: 'level', line: 1, name: 'led', value: 1, by: 'host' },
    { ok: true, line: { line: 1, name: 'led', direction: 'out', value: 0, level: 1, irq: 'none' } },
  ]);
  assert.deepEqual(answers(b).map((e) => e['event']), ['level', 'level'], 'the other client sees the events, not the answers');
  g.request(5, 1, 1);
  g.request(3, 2, 1);
  g.request(6, 0, 3);
  pump(reactor, fake);
  assert.deepEqual(answers(b), [
    { event: 'output', line: 1, name: 'led', value: 1 },
    { event: 'direction', line: 2, name: '', direction: 'out' },
    { event: 'output', line: 2, name: '', value: 0 },
    { event: 'irq-type', line: 0, name: 'door', type: 'edge-both' },
  ]);
});

test('gpio control: errors, an over-long line, a slow reader, too many clients', () => {
  const { fake, reactor, dev, srv } = setup();
  new GpioDriver(dev, { reactor });
  const c = fake.clientConnect(PATH);
  pump(reactor, fake);
  c.send('set nope 1\nset door 2\nfrobnicate\nget\n');
  pump(reactor, fake);
  const errs = answers(c);
  assert.equal(errs.length, 4);
  assert.ok(errs.every((e) => e['ok'] === false && typeof e['error'] === 'string'));
  assert.match(String(errs[0]?.['error']), /no line 'nope'/);
  c.send('x'.repeat(300));
  pump(reactor, fake);
  assert.equal(c.closed, true, 'an over-long line ends the client');
  assert.match(new TextDecoder().decode(Uint8Array.from(c.written)), /longer than 256 bytes/);

  const slow = fake.clientConnect(PATH);
  pump(reactor, fake);
  slow.capacity = 0;
  for (let i = 0; i < 6000; i++) dev.setLevel('door', (i % 2) as 0 | 1);
  pump(reactor, fake);
  assert.equal(slow.closed, true, 'a client that reads nothing is dropped once 256 KiB pile up');

  const many = Array.from({ length: CONTROL_MAX_CLIENTS + 1 }, () => fake.clientConnect(PATH));
  pump(reactor, fake);
  assert.equal(srv.clientCount, CONTROL_MAX_CLIENTS);
  assert.equal(many.at(-1)?.closed, true);
  dev.dispose();
  assert.equal(many.every((s) => s.closed), true);
  assert.deepEqual(fake.unlinked, [PATH]);
});
