// SPDX-License-Identifier: Apache-2.0
/**
 * One back-end thread serving ports that join and leave while it runs (BackendThread.addPorts /
 * removePorts, the loop's LoopControl): what `avp run` uses to serve many back-ends from one
 * thread. Real worker thread with echo devices, real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { closeQuiet, eventfdWrite, listenUnix } from '../sys/index.js';
import { BackendThread } from './server.js';
import { Attacker, waitUsed } from './testing/attacker.js';

const ECHO_WORKER = new URL('./testing/echo-worker.js', import.meta.url);

/** Connects to `path`, gets one request served, and returns the open session. */
function served(path: string, token: number): Attacker {
  const a = new Attacker(path, 30_000).handshake();
  const { dq, fds } = a.ring(a.memory({ fileSize: 1024 * 1024 }).mem);
  dq.add([{ addr: 0x10000, len: 64, writable: true }], token);
  eventfdWrite(fds.kick);
  assert.equal(waitUsed(dq, token, 30_000)?.len, 64, `request ${token} on ${path}`);
  return a;
}

test('shared loop: ports join an empty back-end thread, are served side by side, leave (their front-end disconnected) and join again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-shared-loop-'));
  const paths = ['a', 'b'].map((n) => join(dir, `${n}.sock`));
  const fds = paths.map((p) => listenUnix(p));
  const thread = await BackendThread.start({ entry: ECHO_WORKER, ports: [] });
  const open: Attacker[] = [];
  try {
    assert.deepEqual(await thread.metrics(), {}, 'no port yet');
    await thread.addPorts([{ name: 'vm1/a', listenFd: fds[0]!, device: 'echo' }]);
    await thread.addPorts([{ name: 'vm2/b', listenFd: fds[1]!, device: 'echo' }]);
    await assert.rejects(thread.addPorts([{ name: 'vm1/a', listenFd: fds[0]!, device: 'echo' }]), /a port named vm1\/a is already served/);
    const a = served(paths[0]!, 1);
    open.push(a);
    served(paths[1]!, 2).close();
    assert.deepEqual(Object.keys(await thread.metrics()).sort(), ['vm1/a', 'vm2/b']);

    await thread.removePorts(['vm1/a']);
    assert.equal(a.fe.waitEvents([], 30_000).hangup, true, 'the removed port disconnected its front-end');
    assert.deepEqual(Object.keys(await thread.metrics()), ['vm2/b']);
    open.push(served(paths[1]!, 3)); // the other port goes on
    // Joins again on the same listening socket (a restarted back-end): served.
    await thread.addPorts([{ name: 'vm1/a', listenFd: fds[0]!, device: 'echo' }]);
    open.push(served(paths[0]!, 4));
  } finally {
    for (const x of open) x.close();
    await Promise.race([thread.stop(), delay(5000)]);
    for (const fd of fds) closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shared loop: a port whose device cannot be built is refused with the reason; the thread goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-shared-loop-'));
  const path = join(dir, 'a.sock');
  const fd = listenUnix(path);
  const thread = await BackendThread.start({ entry: new URL('../platform/backend-worker.js', import.meta.url), ports: [] });
  try {
    await assert.rejects(thread.addPorts([{ name: 'x', listenFd: fd, device: { kind: 'no-such-kind', options: {} } }]), /no-such-kind/);
    await thread.addPorts([{ name: 'rng', listenFd: fd, device: { kind: 'rng', options: {} } }]);
    assert.deepEqual(Object.keys(await thread.metrics()), ['rng']);
  } finally {
    await Promise.race([thread.stop(), delay(5000)]);
    closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
