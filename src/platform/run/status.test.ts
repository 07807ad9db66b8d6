// SPDX-License-Identifier: Apache-2.0
/** The status table: VMs and back-ends (with several ports, restarts, counters) as exact lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, renderStatus, summarizeMetrics } from './status.js';
import type { RunSnapshot } from './supervisor.js';

test('renderStatus: VM and back-end tables', () => {
  const t0 = 1_000_000;
  const snapshot: RunSnapshot = {
    name: 'cockpit',
    runDir: '/r',
    startedAt: t0,
    vms: [
      { name: 'cluster', state: 'ready', pid: 10, startedAt: t0 + 1000, readyAt: t0 + 20_000, backends: ['cluster/rng', 'switch/lan'] },
      { name: 'infotainment', state: 'booting', pid: 11, startedAt: t0 + 2000, backends: ['switch/lan'] },
    ],
    backends: [
      { id: 'cluster/rng', kind: 'rng', isolation: 'process', state: 'running', pid: 42, restarts: 1, restart: 'on-failure', vms: ['cluster'], ports: [{ name: 'cluster/rng', connected: true, metrics: { device: 'rng', requests: 12, bytes: 768 } }] },
      {
        id: 'switch/lan',
        kind: 'net',
        isolation: 'thread',
        state: 'running',
        restarts: 0,
        restart: 'no',
        vms: ['cluster', 'infotainment'],
        ports: [
          { name: 'cluster/net', connected: true, metrics: { session: { requests: 30 } } },
          { name: 'infotainment/net', connected: false, metrics: {} },
        ],
      },
    ],
    ending: false,
  };
  assert.deepEqual(renderStatus(snapshot, t0 + 75_000), [
    'cockpit: 2 VMs, up 1m15s',
    'VM            STATE    UPTIME  READY',
    'cluster       ready    1m14s   yes',
    'infotainment  booting  1m13s   no',
    'BACK-END     RUNS AS     STATE                PORT              CONNECTED  COUNTERS',
    'cluster/rng  process 42  running (1 restart)                    yes        12 req, 768 B',
    'switch/lan   thread      running              cluster/net       yes        30 messages',
    '                                              infotainment/net  no',
  ]);
});

test('summarizeMetrics: rng, blk, net, vsock, other', () => {
  assert.equal(summarizeMetrics({ device: 'blk', bytesRead: 3 * 1024 * 1024, bytesWritten: 1536 }), 'read 3.0 MiB, written 1.5 KiB');
  assert.equal(
    summarizeMetrics({ device: 'net', tx: { frames: 12, bytes: 1100 }, rx: { frames: 10, bytes: 980 }, drops: { noRxBuffers: 1, oversize: 0, rateLimit: 2 } }),
    'tx 12 fr, rx 10 fr, 3 dropped',
  );
  assert.equal(summarizeMetrics({ device: 'vsock', packets: { tx: 300, rx: 290 } }), 'tx 300 pkts, rx 290 pkts');
  assert.equal(summarizeMetrics({}), '');
});

test('formatDuration', () => {
  assert.equal(formatDuration(59_999), '59s');
  assert.equal(formatDuration(3_600_000 + 120_000), '1h02m');
});

test('renderStatus: a VM whose watchdog fired says how often, and how often it was started again', () => {
  const t0 = 1_000_000;
  const wd = (fired: number) => ({ action: 'restart-vm' as const, timeoutSeconds: 10, fired });
  const snapshot: RunSnapshot = {
    name: 'p',
    runDir: '/r',
    startedAt: t0,
    vms: [
      { name: 'a', state: 'booting', startedAt: t0, backends: [], watchdog: wd(2), restarts: 2 },
      { name: 'b', state: 'failed', startedAt: t0, endedAt: t0 + 5000, backends: [], watchdog: wd(1) },
      { name: 'c', state: 'ready', startedAt: t0, readyAt: t0, backends: [], watchdog: wd(0) },
    ],
    backends: [],
    ending: false,
  };
  assert.deepEqual(renderStatus(snapshot, t0 + 9000), [
    'p: 3 VMs, up 9s',
    'VM  STATE                                         UPTIME  READY',
    'a   booting (watchdog fired 2 times, 2 restarts)  9s      no',
    'b   failed (watchdog fired 1 time)                5s      no',
    'c   ready                                         9s      yes',
  ]);
});
