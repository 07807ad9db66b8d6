// SPDX-License-Identifier: Apache-2.0
/** One back-end thread serving two ports (as a switch does): both front-ends are served. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendThread, listenAt } from '../vhost-user/server.js';
import { VhostUserFrontend } from '../vhost-user/frontend.js';
import { DriverQueue } from '../queue/split-driver.js';
import { closeQuiet, eventfdWrite } from '../sys/index.js';
import { BACKEND_WORKER_ENTRY } from './backends.js';

test('backends: one thread serves two ports; metrics come per port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-ports-'));
  const socks = [join(dir, 'a.sock'), join(dir, 'b.sock')];
  const fds = socks.map((s) => listenAt(s));
  t.after(() => {
    fds.forEach((fd) => closeQuiet(fd));
    rmSync(dir, { recursive: true, force: true });
  });
  const thread = await BackendThread.start({
    entry: BACKEND_WORKER_ENTRY,
    ports: [
      { name: 'a', listenFd: fds[0]!, device: { kind: 'rng', options: {} } },
      { name: 'b', listenFd: fds[1]!, device: { kind: 'rng', options: { maxBytes: 8 } } },
    ],
  });
  t.after(() => thread.stop());
  const lens: number[] = [];
  for (const sock of socks) {
    const fe = VhostUserFrontend.connect(sock);
    try {
      fe.request({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
      fe.request({ type: 'SET_FEATURES', body: 0x170000000n, fds: [] });
      const mem = fe.createMemory(1 << 20, { addMemReg: true });
      const rings = { desc: 0x1000, avail: 0x2000, used: 0x3000 };
      const dq = new DriverQueue<number>({ memory: mem.memory, size: 8, addrs: rings, eventIdx: true });
      const { kick, call } = fe.setupVring(0, 8, rings, mem);
      dq.add([{ addr: 0x10000, len: 32, writable: true }], 0);
      if (dq.needsKick()) eventfdWrite(kick);
      assert.ok(fe.waitCall(call, 20_000));
      lens.push(dq.popUsed()?.len ?? -1);
    } finally {
      fe.close();
    }
  }
  assert.deepEqual(lens, [32, 8], 'each port runs its own device (b caps requests at 8 bytes)');
  const m = await thread.metrics();
  assert.deepEqual(Object.keys(m).sort(), ['a', 'b']);
});
