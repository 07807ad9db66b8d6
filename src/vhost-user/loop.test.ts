// SPDX-License-Identifier: Apache-2.0
/** LoopReactor: timer order and timeouts; watched fds fire inside the real loop, with timers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoopReactor, runBackendLoop } from './loop.js';
import { closeQuiet, eventfdCreate, eventfdRead, eventfdWrite, listenUnix, unlinkQuiet } from '../sys/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VirtioDevice } from '../device/contract.js';

/** A device that is never driven here: the test is about the loop. */
const idle: VirtioDevice = {
  deviceId: 4,
  name: 'idle',
  queueMaxSizes: [8],
  offeredFeatures: 1n << 32n,
  configSize: 0,
  readConfig: () => new Uint8Array(0),
  writeConfig() {},
  activate() {},
  queueNotify() {},
  reset() {},
  metrics: () => ({}),
};

test('reactor: timers run in due order; timeout reflects the earliest; cancelled ones never run', () => {
  const r = new LoopReactor();
  assert.equal(r.timeout(), -1);
  const ran: string[] = [];
  r.setTimer(0, () => ran.push('a'));
  const b = r.setTimer(0, () => ran.push('b'));
  r.setTimer(10_000, () => ran.push('late'));
  b.cancel();
  assert.equal(r.timeout(), 0);
  r.runDue();
  assert.deepEqual(ran, ['a']);
  assert.ok(r.timeout() > 9_000);
});

test('loop: a watched fd and a timer fire in the loop thread; wake stops it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-loop-'));
  const sock = join(dir, 's');
  const listenFd = listenUnix(sock);
  const wakeFd = eventfdCreate();
  const hostFd = eventfdCreate();
  const reactor = new LoopReactor();
  const seen: string[] = [];
  try {
    // Host event first; its handler arms a timer; the timer ends the loop through the wake fd.
    const w = reactor.watch(hostFd, (ready) => {
      seen.push(`host readable=${ready.readable}`);
      eventfdRead(hostFd);
      w.close();
      reactor.setTimer(5, () => {
        seen.push('timer');
        eventfdWrite(wakeFd);
      });
    });
    eventfdWrite(hostFd);
    runBackendLoop({
      ports: [{ name: 'idle', listenFd, device: idle }],
      wakeFd,
      reactor,
      log: () => ({ debug() {}, info() {}, warn() {}, error() {} }),
      onWake: () => {
        seen.push('wake');
        return 'stop';
      },
    });
    assert.deepEqual(seen, ['host readable=true', 'timer', 'wake']);
  } finally {
    for (const fd of [listenFd, wakeFd, hostFd]) closeQuiet(fd);
    unlinkQuiet(sock);
    rmSync(dir, { recursive: true, force: true });
  }
});
