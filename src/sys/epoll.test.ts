// SPDX-License-Identifier: Apache-2.0
/** Epoll: tokens, modify, remove, timeout, close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SysError, SysUsageError } from './errors.js';
import { EPOLLHUP, EPOLLIN, EPOLLOUT, Epoll } from './epoll.js';
import { eventfdCreate, eventfdRead, eventfdWrite } from './eventfd.js';
import { isOpenFd } from './fd.js';
import { socketPair } from './socket.js';
import { Resources, hasCloexec } from './testkit.js';

function ready(ep: Epoll, timeoutMs: number): Map<number, number> {
  const n = ep.wait(timeoutMs);
  const out = new Map<number, number>();
  for (let i = 0; i < n; i++) out.set(ep.token(i), ep.events(i));
  return out;
}

test('epoll reports ready fds by token, honours modify and remove', (t) => {
  const res = new Resources(t);
  const ep = new Epoll(4);
  t.after(() => ep.close());
  assert.ok(hasCloexec(ep.fd));
  const kick0 = res.fd(eventfdCreate());
  const kick1 = res.fd(eventfdCreate());
  ep.add(kick0, EPOLLIN, 100);
  ep.add(kick1, EPOLLIN, 0xffff_ffff);
  assert.equal(ep.wait(0), 0);

  eventfdWrite(kick1);
  assert.deepEqual(ready(ep, -1), new Map([[0xffff_ffff, EPOLLIN]]));
  eventfdWrite(kick0);
  assert.deepEqual(ready(ep, -1), new Map([[100, EPOLLIN], [0xffff_ffff, EPOLLIN]]));

  ep.modify(kick0, EPOLLIN, 7);
  ep.remove(kick1);
  assert.deepEqual(ready(ep, 10), new Map([[7, EPOLLIN]]));
  eventfdRead(kick0);
  assert.equal(ep.wait(10), 0);
  assert.throws(() => ep.token(0), SysUsageError);
});

test('epoll reports hang-up and writability; errors carry errno names', (t) => {
  const res = new Resources(t);
  const ep = new Epoll();
  t.after(() => ep.close());
  const [a, b] = res.fds(socketPair());
  ep.add(a, EPOLLOUT, 1);
  assert.deepEqual(ready(ep, -1), new Map([[1, EPOLLOUT]]));
  ep.modify(a, EPOLLIN, 1);
  res.close(b);
  const events = ready(ep, -1).get(1) ?? 0;
  assert.ok((events & EPOLLHUP) !== 0);
  assert.throws(() => ep.add(a, EPOLLIN, 2), (e: unknown) => e instanceof SysError && e.errnoName === 'EEXIST');
  assert.throws(() => ep.add(a, EPOLLIN, -1), SysUsageError);
});

test('close releases the epoll fd once; a closed instance refuses use', () => {
  const ep = new Epoll();
  const fd = ep.fd;
  ep.close();
  assert.ok(!isOpenFd(fd));
  ep.close();
  assert.throws(() => ep.wait(0), SysUsageError);
  assert.throws(() => new Epoll(0), SysUsageError);
});
