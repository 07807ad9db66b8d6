// SPDX-License-Identifier: Apache-2.0
/**
 * A console port bound to a host Unix socket, through the in-process harness with in-memory
 * sockets (vsock's FakeUnixStreams) polled by hand: the port's name and PORT_OPEN follow the host
 * program connecting and leaving, bytes cross both ways, a second program is turned away, output
 * without a listener is dropped and counted, and closing removes the socket file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { FakeUnixStreams, pump } from '../vsock/testing.js';
import { ConsoleDevice } from './model.js';
import { SocketPortHost } from './socket-host.js';
import { MemoryPortHost, ctl } from './testing.js';

const PORT_OPEN = 6;

function setup() {
  const fake = new FakeUnixStreams();
  const sock = new SocketPortHost('/run/data.sock', fake);
  const dev = new ConsoleDevice({ ports: [{ name: 'console', host: new MemoryPortHost(false) }, { name: 'org.avp.data', host: sock }] });
  const h = new DeviceHarness(dev);
  const post = (q: number, n = 64): number => {
    const a = h.alloc.alloc(n);
    h.submit(q, [{ addr: a, len: n, writable: true }]);
    return a;
  };
  const send = (bytes: Uint8Array, q: number) => {
    const a = h.alloc.alloc(bytes.length);
    h.memory.write(a, bytes);
    return h.request(q, [{ addr: a, len: bytes.length }]);
  };
  /** Control messages the device wrote since the last call, as [id, event, value]. */
  const control = (bufs: number[]): Array<[number, number, number]> => {
    const out: Array<[number, number, number]> = [];
    for (let u = h.queue(2).popUsed(); u !== null; u = h.queue(2).popUsed()) {
      const a = bufs.shift() ?? 0;
      const b = h.memory.read(a, 8);
      out.push([b[0] ?? 0, (b[4] ?? 0) | ((b[5] ?? 0) << 8), b[6] ?? 0]);
    }
    return out;
  };
  return { fake, sock, dev, h, post, send, control };
}

test('console socket port: PORT_OPEN follows the host program; bytes both ways; one program at a time', () => {
  const { fake, sock, dev, h, post, send, control } = setup();
  const bufs = Array.from({ length: 12 }, () => post(2));
  send(ctl(0xffffffff, 0, 1), 3); // DEVICE_READY
  send(ctl(1, 3, 1), 3); // PORT_READY for port 1: no PORT_OPEN yet, nobody is connected
  assert.deepEqual(control(bufs), [[0, 1, 0], [1, 1, 0], [1, 7, 1]]);
  assert.equal(sock.connected, false);
  const client = fake.clientConnect('/run/data.sock');
  pump(h.reactor, fake);
  assert.equal(sock.connected, true);
  assert.deepEqual(control(bufs), [[1, PORT_OPEN, 1]]);
  // Guest → host: port 1's transmitq is queue 5.
  send(new TextEncoder().encode('speed=88\n'), 5);
  pump(h.reactor, fake);
  assert.equal(client.text(), 'speed=88\n');
  // Host → guest: port 1's receiveq is queue 4.
  const rx = post(4, 32);
  client.send('hello');
  pump(h.reactor, fake);
  const used = h.queue(4).popUsed();
  assert.equal(used?.len, 5);
  assert.equal(new TextDecoder().decode(h.memory.read(rx, 5)), 'hello');
  // A second program is turned away.
  const second = fake.clientConnect('/run/data.sock');
  pump(h.reactor, fake);
  assert.ok(second.closed);
  assert.equal(sock.stats.refused, 1);
  // The program leaves: PORT_OPEN 0; the guest's output is dropped and counted until the next one.
  client.peerClosed = true;
  pump(h.reactor, fake);
  assert.deepEqual(control(bufs), [[1, PORT_OPEN, 0]]);
  send(new TextEncoder().encode('lost'), 5);
  assert.equal(sock.stats.dropped, 4);
  const third = fake.clientConnect('/run/data.sock');
  pump(h.reactor, fake);
  assert.deepEqual(control(bufs), [[1, PORT_OPEN, 1]]);
  send(new TextEncoder().encode('again'), 5);
  pump(h.reactor, fake);
  assert.equal(third.text(), 'again');
  dev.dispose();
  assert.deepEqual(fake.unlinked, ['/run/data.sock']);
});

test('console socket port: a host program that does not read gets at most the buffer; the rest is dropped', () => {
  const { fake, sock, h, send, post } = setup();
  post(2);
  const client = fake.clientConnect('/run/data.sock');
  client.capacity = 0;
  pump(h.reactor, fake);
  const big = new Uint8Array(600 * 1024).fill(0x41);
  send(big, 5);
  send(big, 5);
  assert.equal(sock.stats.dropped, big.length, 'the second write would pass the 1 MiB buffer');
  client.capacity = Infinity;
  pump(h.reactor, fake);
  assert.equal(client.written.length, big.length);
});

test('console socket port: a socket that cannot be created is a set-up error naming the path', () => {
  const fake = new FakeUnixStreams();
  fake.listen('/run/taken.sock');
  assert.throws(() => new SocketPortHost('/run/taken.sock', fake), { code: 'CONSOLE_HOST_FILE', message: /cannot listen on \/run\/taken\.sock/ });
});
