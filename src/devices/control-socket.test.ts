// SPDX-License-Identifier: Apache-2.0
/**
 * The control socket's framing over in-memory sockets: one JSON reply per request line, several
 * requests in one read and one request split over reads, a last line without a newline, over-long
 * lines, a client that stops reading, the client cap, and closing (socket file removed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualReactor } from '../device/manual-reactor.js';
import { silentLog } from '../device/runner.js';
import { ControlSocket, MAX_CLIENTS, MAX_LINE_BYTES, type ControlReply } from './control-socket.js';
import { FakeUnixStreams, type FakeSocket } from './vsock/testing.js';

function setup(handle: (line: string) => ControlReply = (line) => ({ ok: true, echo: line })) {
  const streams = new FakeUnixStreams();
  const reactor = new ManualReactor();
  const cs = new ControlSocket('/run/x.ctl', streams, { device: 'demo', requests: ['echo'] }, handle);
  cs.serve(reactor, silentLog);
  const listenFd = streams.listeners.get('/run/x.ctl')?.fd ?? -1;
  const connect = (): FakeSocket => {
    const s = streams.clientConnect('/run/x.ctl');
    reactor.fire(listenFd, { readable: true });
    return s;
  };
  const send = (s: FakeSocket, text: string) => {
    s.send(text);
    reactor.fire(s.fd, { readable: true });
  };
  const replies = (s: FakeSocket): unknown[] =>
    s
      .text()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as unknown);
  return { streams, reactor, cs, connect, send, replies };
}

test('control socket: each request line gets one JSON reply line, in order, however the bytes arrive', () => {
  const { connect, send, replies } = setup();
  const s = connect();
  send(s, 'first\nsec');
  send(s, 'ond\r\n\n  third  \n');
  assert.deepEqual(replies(s), [
    { ok: true, echo: 'first' },
    { ok: true, echo: 'second' },
    { ok: true, echo: 'third' },
  ]);
});

test('control socket: capabilities names the device and its requests', () => {
  const { connect, send, replies } = setup();
  const s = connect();
  send(s, 'capabilities\n');
  assert.deepEqual(replies(s), [{ ok: true, device: 'demo', requests: ['echo'] }]);
});

test('control socket: a last request without a newline is answered at end of input, then the connection closes', () => {
  const { connect, send, replies, reactor } = setup();
  const s = connect();
  send(s, 'only');
  assert.deepEqual(replies(s), []);
  s.peerEnded = true;
  reactor.fire(s.fd, { readable: true });
  assert.deepEqual(replies(s), [{ ok: true, echo: 'only' }]);
  assert.ok(s.closed);
});

test('control socket: a handler that throws gives an error reply; the connection goes on', () => {
  const { connect, send, replies } = setup((line) => {
    if (line === 'boom') throw new Error('it broke');
    return { ok: true };
  });
  const s = connect();
  send(s, 'boom\nfine\n');
  assert.deepEqual(replies(s), [{ ok: false, error: 'it broke' }, { ok: true }]);
});

test('control socket: an over-long line is refused and the client is no longer read', () => {
  const { connect, send, replies, reactor } = setup();
  const s = connect();
  send(s, 'x'.repeat(MAX_LINE_BYTES + 10));
  assert.deepEqual(replies(s), [{ ok: false, error: `request line longer than ${MAX_LINE_BYTES} bytes` }]);
  assert.deepEqual(reactor.interest(s.fd), { readable: false, writable: false });
});

test('control socket: a client that does not read its replies is dropped; others are served', () => {
  const big = 'y'.repeat(3000);
  const { connect, send, replies } = setup(() => ({ ok: true, big }));
  const slow = connect();
  slow.capacity = 0;
  for (let i = 0; i < 400 && !slow.closed; i++) send(slow, 'q\n');
  assert.ok(slow.closed, 'dropped once its unread replies pass the cap');
  const other = connect();
  send(other, 'q\n');
  assert.equal(replies(other).length, 1);
});

test('control socket: clients past the cap are closed at once; close() removes the socket file', () => {
  const { connect, cs, streams } = setup();
  const clients = Array.from({ length: MAX_CLIENTS + 2 }, () => connect());
  assert.equal(clients.filter((c) => c.closed).length, 2);
  cs.close();
  assert.ok(clients.every((c) => c.closed));
  assert.deepEqual(streams.unlinked, ['/run/x.ctl']);
});
