// SPDX-License-Identifier: Apache-2.0
/**
 * Adaptive busy polling (`busyPollUs`) in the real back-end loop (BackendThread with an echo
 * device): after a kicked request, a request made available without a kick is served within the
 * polling window; the session counts it as polled, not kicked. Without polling the same request
 * waits for its kick.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { closeQuiet, eventfdWrite, listenUnix } from '../sys/index.js';
import { BackendThread } from './server.js';
import { Attacker, waitUsed } from './testing/attacker.js';

const ECHO_WORKER = new URL('./testing/echo-worker.js', import.meta.url);

async function backend(t: TestContext, busyPollUs: number): Promise<{ path: string; thread: BackendThread }> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-busy-poll-'));
  const path = join(dir, 'p0.sock');
  const fd = listenUnix(path);
  const thread = await BackendThread.start({ entry: ECHO_WORKER, ports: [{ name: 'p0', listenFd: fd, device: 'echo' }], tuning: { busyPollUs } });
  t.after(async () => {
    await Promise.race([thread.stop(), delay(5000)]);
    closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, thread };
}

/** The session counters of port p0. */
async function sessionStats(thread: BackendThread): Promise<Record<string, number>> {
  const m = await thread.metrics();
  return (m['p0']?.['session'] ?? {}) as Record<string, number>;
}

test('busy polling: after a kicked request, one made available without a kick is served within the window and counted as polled', async (t) => {
  // A window of 60 s: the test must not depend on how fast this machine is.
  const { path, thread } = await backend(t, 60_000_000);
  const a = new Attacker(path).handshake();
  try {
    const { dq, fds } = a.ring(a.memory({ fileSize: 1024 * 1024 }).mem);
    dq.add([{ addr: 0x10000, len: 64, writable: true }], 1);
    eventfdWrite(fds.kick);
    assert.equal(waitUsed(dq, 1, 30_000)?.len, 64, 'the kicked request');
    dq.add([{ addr: 0x10100, len: 32, writable: true }], 2);
    assert.equal(waitUsed(dq, 2, 30_000)?.len, 32, 'the request without a kick is served while the loop polls');
    const s = await sessionStats(thread);
    assert.equal(s['kicks'], 1);
    assert.equal(s['polledChains'], 1);
  } finally {
    a.close();
  }
});

test('busy polling off: a request made available without a kick waits for its kick', async (t) => {
  const { path, thread } = await backend(t, 0);
  const a = new Attacker(path).handshake();
  try {
    const { dq, fds } = a.ring(a.memory({ fileSize: 1024 * 1024 }).mem);
    dq.add([{ addr: 0x10000, len: 64, writable: true }], 1);
    eventfdWrite(fds.kick);
    assert.equal(waitUsed(dq, 1, 30_000)?.len, 64);
    dq.add([{ addr: 0x10100, len: 32, writable: true }], 2);
    assert.equal(waitUsed(dq, 2, 200), null, 'not served without a kick');
    eventfdWrite(fds.kick);
    assert.equal(waitUsed(dq, 2, 30_000)?.len, 32, 'served once kicked');
    assert.equal((await sessionStats(thread))['polledChains'], 0);
  } finally {
    a.close();
  }
});
