// SPDX-License-Identifier: Apache-2.0
/**
 * recvMsg / recvExact / sendMsg over socket pairs: fd passing, truncated control data, EOF,
 * partial transfers on non-blocking sockets (a worker thread plays the peer), EPIPE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { SysEofError, SysError, SysUsageError } from './errors.js';
import { eventfdCreate, eventfdRead, eventfdWrite } from './eventfd.js';
import { isOpenFd, listOpenFds, setNonBlocking } from './fd.js';
import { MAX_FDS_PER_MESSAGE, recvExact, recvMsg, sendMsg, tryRecvMsg, trySendMsg } from './message.js';
import { memfdCreate, mmapShared } from './memory.js';
import { socketPair } from './socket.js';
import { Resources, hasCloexec } from './testkit.js';

test('a memfd sent over a socket pair maps to the same memory on both ends', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const memfd = res.fd(memfdCreate('shared', 2 * 4096));
  sendMsg(a, new Uint8Array([0x42]), [memfd]);
  const buf = new Uint8Array(16);
  const got = recvMsg(b, buf, 1);
  res.fds(got.fds);
  assert.equal(got.bytes, 1);
  assert.equal(buf[0], 0x42);
  assert.equal(got.truncated, false);
  assert.equal(got.fds.length, 1);
  const received = got.fds[0] ?? -1;
  assert.notEqual(received, memfd);
  assert.ok(hasCloexec(received), 'received fds are CLOEXEC (MSG_CMSG_CLOEXEC)');
  assert.equal(fstatSync(received).ino, fstatSync(memfd).ino);
  assert.ok(isOpenFd(memfd), 'the sender keeps its fd');

  const mine = new Uint8Array(res.mapping(mmapShared(memfd, 2 * 4096)).buffer);
  const theirs = new Uint8Array(res.mapping(mmapShared(received, 2 * 4096)).buffer);
  mine[4100] = 0xa5;
  assert.equal(theirs[4100], 0xa5);
  theirs[7] = 0x5a;
  assert.equal(mine[7], 0x5a);
});

test('several fds in one message arrive in order and each refers to the sent object', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const sent = [eventfdCreate(), eventfdCreate(), eventfdCreate()].map((fd) => res.fd(fd));
  sendMsg(a, new Uint8Array(12), sent);
  const buf = new Uint8Array(12);
  const got = recvMsg(b, buf, 8);
  res.fds(got.fds);
  assert.equal(got.bytes, 12);
  assert.equal(got.fds.length, 3);
  assert.equal(new Set([...got.fds, ...sent]).size, 6, 'received fds are new descriptors');
  sent.forEach((fd, i) => eventfdWrite(fd, BigInt(i + 1) * 10n));
  assert.deepEqual(got.fds.map((fd) => eventfdRead(fd)), [10n, 20n, 30n]);
});

test('more fds than maxFds: MSG_CTRUNC reported, the fds that arrived are closed, nothing leaks', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const sent = [0, 1, 2, 3].map(() => res.fd(eventfdCreate()));
  const before = listOpenFds();
  sendMsg(a, new Uint8Array([1, 2, 3, 4]), sent);
  const buf = new Uint8Array(4);
  const got = recvMsg(b, buf, 2);
  assert.equal(got.truncated, true);
  assert.deepEqual(got.fds, []);
  assert.equal(got.bytes, 4, 'the bytes still arrive');
  assert.deepEqual(listOpenFds(), before);

  // maxFds 0: no control buffer at all; the kernel drops every fd itself.
  sendMsg(a, new Uint8Array([5]), sent.slice(0, 1));
  const none = recvMsg(b, buf, 0);
  assert.equal(none.truncated, true);
  assert.deepEqual(none.fds, []);
  assert.deepEqual(listOpenFds(), before);
});

test('the per-message fd limit is enforced on both sides before any syscall', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  assert.throws(() => sendMsg(a, new Uint8Array(1), new Array<number>(MAX_FDS_PER_MESSAGE + 1).fill(a)), SysUsageError);
  assert.throws(() => sendMsg(a, new Uint8Array(0), [a]), SysUsageError);
  assert.throws(() => sendMsg(a, new Uint8Array(1), [-1]), SysUsageError);
  assert.throws(() => recvMsg(b, new Uint8Array(1), MAX_FDS_PER_MESSAGE + 1), SysUsageError);
  assert.throws(() => recvMsg(b, new Uint8Array(0)), SysUsageError);
  // The largest legal fd count goes through.
  sendMsg(a, new Uint8Array(1), new Array<number>(MAX_FDS_PER_MESSAGE).fill(a));
  const got = recvMsg(b, new Uint8Array(1), MAX_FDS_PER_MESSAGE);
  res.fds(got.fds);
  assert.equal(got.fds.length, MAX_FDS_PER_MESSAGE);
});

test('EOF: recvMsg returns 0 bytes, recvExact returns false, a cut-off frame is SysEofError', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  sendMsg(a, new Uint8Array([1, 2, 3]));
  res.close(a);
  const frame = new Uint8Array(8);
  assert.throws(
    () => recvExact(b, frame),
    (e: unknown) => e instanceof SysEofError && e.code === 'SYS_EOF' && e.expected === 8 && e.received === 3,
  );
  assert.equal(recvMsg(b, frame, 4).bytes, 0);
  assert.equal(recvExact(b, frame), false);

  const [c, d] = res.fds(socketPair());
  res.close(d);
  assert.equal(recvExact(c, frame), false);
});

test('recvExact collects a frame sent in pieces and drops fds attached to it', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const efd = res.fd(eventfdCreate());
  const before = listOpenFds();
  sendMsg(a, new Uint8Array([1, 2]), [efd]);
  sendMsg(a, new Uint8Array([3, 4, 5]));
  const frame = new Uint8Array(5);
  assert.equal(recvExact(b, frame), true);
  assert.deepEqual([...frame], [1, 2, 3, 4, 5]);
  assert.deepEqual(listOpenFds(), before);
  assert.equal(recvExact(b, new Uint8Array(0)), true);
});

/** Runs `source` (CommonJS) in a worker with `workerData`, resolving with its first message. */
async function inWorker(source: string, workerData: unknown): Promise<unknown> {
  const worker = new Worker(source, { eval: true, workerData });
  try {
    const [message] = (await Promise.race([once(worker, 'message'), once(worker, 'error').then(([e]) => Promise.reject(e))])) as [unknown];
    return message;
  } finally {
    await worker.terminate();
  }
}

test('recvExact on a non-blocking socket waits for the rest of a frame written by another thread', async (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  setNonBlocking(b, true);
  sendMsg(a, new Uint8Array([1, 2, 3]));
  // The worker writes the second half whenever it gets to it; recvExact must block (in poll)
  // until then, whichever order things happen in.
  const writer = new Worker(
    `const { workerData } = require('node:worker_threads');
     require('node:fs').writeSync(workerData.fd, Buffer.from([4, 5, 6, 7, 8]));`,
    { eval: true, workerData: { fd: a } },
  );
  t.after(() => writer.terminate());
  const frame = new Uint8Array(8);
  assert.equal(recvExact(b, frame), true);
  assert.deepEqual([...frame], [1, 2, 3, 4, 5, 6, 7, 8]);
  await once(writer, 'exit');
});

test('sendMsg finishes a payload larger than the socket buffer on a non-blocking socket, fds sent once', async (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const efd = res.fd(eventfdCreate());
  setNonBlocking(a, true);
  const size = 4 * 1024 * 1024;
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >>> 11)) & 0xff;
  let expectedSum = 0;
  for (const byte of payload) expectedSum = (expectedSum + byte) % 0x7fffffff;
  // The reader drains with plain read(2); fds attached to the stream are then discarded by the
  // kernel, so none can leak into this process.
  const reader = inWorker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const fs = require('node:fs');
     const chunk = Buffer.alloc(65536);
     let total = 0, sum = 0;
     while (total < workerData.size) {
       const n = fs.readSync(workerData.fd, chunk, 0, chunk.length, null);
       if (n === 0) break;
       for (let i = 0; i < n; i++) sum = (sum + chunk[i]) % 0x7fffffff;
       total += n;
     }
     parentPort.postMessage({ total, sum });`,
    { fd: b, size },
  );
  sendMsg(a, payload, [efd]);
  assert.deepEqual(await reader, { total: size, sum: expectedSum });
});

test('sending to a closed peer is EPIPE, not SIGPIPE', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  res.close(b);
  assert.throws(() => sendMsg(a, new Uint8Array(4)), (e: unknown) => e instanceof SysError && e.errnoName === 'EPIPE');
});

test('recvMsg on a non-blocking socket with nothing to read is EAGAIN', (t) => {
  const res = new Resources(t);
  const [, b] = res.fds(socketPair());
  setNonBlocking(b, true);
  assert.throws(() => recvMsg(b, new Uint8Array(4), 2), (e: unknown) => e instanceof SysError && e.errnoName === 'EAGAIN');
});

test('tryRecvMsg never waits, even on a blocking socket: null when nothing is there, then data and fds', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const buf = new Uint8Array(16);
  assert.equal(tryRecvMsg(b, buf, 4), null);
  const ev = res.fd(eventfdCreate());
  sendMsg(a, Uint8Array.of(1, 2, 3), [ev]);
  const got = tryRecvMsg(b, buf, 4);
  assert.ok(got !== null);
  assert.equal(got.bytes, 3);
  assert.equal(got.fds.length, 1);
  res.fds(got.fds);
  assert.equal(tryRecvMsg(b, buf, 4), null);
});

test('trySendMsg sends bytes and an fd without waiting, and returns null (nothing sent) on a full socket', (t) => {
  const res = new Resources(t);
  const [a, b] = res.fds(socketPair());
  const efd = res.fd(eventfdCreate());
  assert.equal(trySendMsg(a, new Uint8Array(36), [efd]), 36);
  const got = recvMsg(b, new Uint8Array(36), 1);
  res.fds(got.fds);
  assert.equal(got.bytes, 36);
  assert.equal(got.fds.length, 1);
  eventfdWrite(efd, 7n);
  assert.equal(eventfdRead(got.fds[0] ?? -1), 7n, 'the received fd is the sent eventfd');
  // Fill the socket, then one more send with an fd: null, and the peer receives no fd.
  const chunk = new Uint8Array(64 * 1024);
  while (trySendMsg(a, chunk) !== null);
  assert.equal(trySendMsg(a, new Uint8Array(4), [efd]), null);
  const fds: number[] = [];
  for (let r = tryRecvMsg(b, chunk, 1); r !== null && r.bytes > 0; r = tryRecvMsg(b, chunk, 1)) fds.push(...r.fds);
  res.fds(fds);
  assert.deepEqual(fds, [], 'no fd went out with the refused send');
  assert.throws(() => trySendMsg(a, new Uint8Array(0)), SysUsageError);
});
