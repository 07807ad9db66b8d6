// SPDX-License-Identifier: Apache-2.0
/**
 * A planned CAN bus as `avp run` starts it, both ways: in the run's own process (isolation:
 * thread) and as an `avp canbus` process (isolation: process). Each serves its node sockets (a
 * peer's frame reaches the other), reports per-node counters under the run's port names, and
 * leaves no socket behind when stopped. No QEMU: the peers are plain socket clients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendPlan } from '../manifest/plan.js';
import { createBackendHandle } from './launch.js';

function busPlan(dir: string, isolation: 'thread' | 'process'): BackendPlan {
  const node = (vm: string) => ({ name: `${vm}/can-b`, vm, device: vm, socket: join(dir, `${vm}.sock`), spec: { kind: 'canbus-node', options: { bus: 'b', node: vm } } });
  return {
    id: 'canbus/b',
    role: 'canbus',
    kind: 'canbus',
    path: 'buses[0]',
    isolation,
    restart: 'no',
    log: join(dir, 'b.log'),
    ports: [node('x'), node('y')],
    vms: ['x', 'y'],
    canbus: { name: 'b', bitrate: 500_000, nodes: [{ name: 'x', socket: join(dir, 'x.sock') }, { name: 'y', socket: join(dir, 'y.sock') }], log: join(dir, 'b.candump') },
  };
}

async function peer(path: string): Promise<{ s: Socket; got: () => string }> {
  const s = createConnection({ path });
  let text = '';
  s.setEncoding('latin1').on('data', (d: string) => (text += d));
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  return { s, got: () => text };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

for (const isolation of ['thread', 'process'] as const) {
  test(`a planned CAN bus with isolation: ${isolation} serves its nodes and cleans up`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `avp-busrun-${isolation}-`));
    const plan = busPlan(dir, isolation);
    const handle = createBackendHandle({ plan, listenFds: [], onCrash: () => assert.fail('the bus must not crash') });
    try {
      await handle.start();
      const x = await peer(join(dir, 'x.sock'));
      const y = await peer(join(dir, 'y.sock'));
      x.s.write('O\r');
      y.s.write('O\r');
      await until(() => x.got() === '\r' && y.got() === '\r', 'both channels open');
      x.s.write('t0101AB\r');
      await until(() => y.got().endsWith('t0101AB\r'), "x's frame at y");
      let metrics: Record<string, unknown> = {};
      await until(() => {
        void handle.refreshMetrics();
        metrics = handle.ports.get('x/can-b')?.metrics ?? {};
        return metrics['txFrames'] === 1;
      }, "x's counters under its port name");
      x.s.destroy();
      y.s.destroy();
    } finally {
      await handle.stop();
      await handle.close();
    }
    assert.ok(!existsSync(join(dir, 'x.sock')) && !existsSync(join(dir, 'y.sock')), 'node sockets removed');
    assert.match(readFileSync(join(dir, 'b.candump'), 'utf8'), / b 010#AB\n$/);
    assert.match(readFileSync(join(dir, 'b.log'), 'utf8'), /serving canbus b/);
    rmSync(dir, { recursive: true, force: true });
  });
}
