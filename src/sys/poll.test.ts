// SPDX-License-Identifier: Apache-2.0
/** poll() and Poller: readiness, timeout, hang-up, invalid fds, entry management. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SysUsageError } from './errors.js';
import { eventfdCreate, eventfdRead, eventfdWrite } from './eventfd.js';
import { POLLHUP, POLLIN, POLLNVAL, POLLOUT, Poller, poll } from './poll.js';
import { socketPair } from './socket.js';
import { sendMsg } from './message.js';
import { Resources } from './testkit.js';

test('nothing ready: poll returns all-zero revents when the timeout passes', (t) => {
  const res = new Resources(t);
  const efd = res.fd(eventfdCreate());
  const [a] = res.fds(socketPair());
  assert.deepEqual(poll([{ fd: efd, events: POLLIN }, { fd: a, events: POLLIN }], 10), [0, 0]);
  assert.deepEqual(poll([{ fd: efd, events: POLLIN }], 0), [0]);
});

test('readiness: a written eventfd is POLLIN, a socket with room is POLLOUT, data makes POLLIN', (t) => {
  const res = new Resources(t);
  const efd = res.fd(eventfdCreate());
  const [a, b] = res.fds(socketPair());
  eventfdWrite(efd);
  sendMsg(a, new Uint8Array([1]));
  assert.deepEqual(poll([{ fd: efd, events: POLLIN }, { fd: a, events: POLLOUT }, { fd: b, events: POLLIN }], -1), [POLLIN, POLLOUT, POLLIN]);
  eventfdRead(efd);
  assert.deepEqual(poll([{ fd: efd, events: POLLIN }], 0), [0]);
});

test('a closed peer is POLLHUP (reported without asking); a closed fd number is POLLNVAL', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  res.close(b);
  const [revents] = poll([{ fd: a, events: 0 }], -1);
  assert.ok(((revents ?? 0) & POLLHUP) !== 0);
  const stale = res.fd(eventfdCreate());
  res.close(stale);
  assert.deepEqual(poll([{ fd: stale, events: POLLIN }], 0), [POLLNVAL]);
});

test('Poller: reusable entries, per-index revents, disabled entries, growth, clear', (t) => {
  const res = new Resources(t);
  const efds = [0, 1, 2, 3, 4].map(() => res.fd(eventfdCreate()));
  const poller = new Poller(2);
  for (const fd of efds) poller.add(fd, POLLIN);
  assert.equal(poller.size, 5);
  assert.equal(poller.fd(4), efds[4]);
  assert.equal(poller.wait(0), 0);

  eventfdWrite(efds[1] ?? -1);
  eventfdWrite(efds[4] ?? -1);
  assert.equal(poller.wait(-1), 2);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => poller.revents(i)), [0, POLLIN, 0, 0, POLLIN]);

  // A negative fd is skipped by poll(2).
  poller.set(1, -1, POLLIN);
  assert.equal(poller.wait(0), 1);
  assert.equal(poller.revents(1), 0);
  assert.equal(poller.revents(4), POLLIN);

  poller.clear();
  assert.equal(poller.size, 0);
  assert.equal(poller.add(efds[1] ?? -1, POLLIN), 0);
  assert.equal(poller.wait(0), 1);
  assert.throws(() => poller.revents(1), SysUsageError);
});

test('invalid timeouts and capacities are refused', () => {
  assert.throws(() => poll([], -2), SysUsageError);
  assert.throws(() => poll([], 1.5), SysUsageError);
  assert.throws(() => poll([], 2 ** 31), SysUsageError);
  assert.throws(() => new Poller(0), SysUsageError);
  assert.throws(() => new Poller().add(-1, POLLIN), SysUsageError);
});
