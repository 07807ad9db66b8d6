// SPDX-License-Identifier: Apache-2.0
/** The control rules as a table: each state of a VM or back-end and what start/stop/restart get. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAction, verdicts } from './control-rules.js';
import type { BackendStatus, RunSnapshot, VmStatus } from './types.js';

function snap(vms: Array<Partial<VmStatus>>, backends: Array<Partial<BackendStatus>>, ending = false): RunSnapshot {
  return {
    name: 'p',
    runDir: '/r',
    startedAt: 0,
    ending,
    vms: vms.map((v, i) => ({ name: `vm${i}`, state: 'ready', backends: [], ...v })),
    backends: backends.map((b, i) => ({ id: `b${i}`, kind: 'blk', isolation: 'thread', state: 'running', restarts: 0, restart: 'on-failure', vms: [], ports: [], ...b })),
  };
}

test('VM verdicts by state', () => {
  const table: Array<[VmStatus['state'], [string | null, string | null, string | null]]> = [
    ['pending', ['VM vm0 has not been started by the run yet', 'VM vm0 has not been started by the run yet', 'VM vm0 has not been started by the run yet']],
    ['booting', ['VM vm0 is already running (booting)', null, null]],
    ['ready', ['VM vm0 is already running (ready)', null, null]],
    ['exited', [null, 'VM vm0 is not running (exited)', null]],
    ['failed', [null, 'VM vm0 is not running (failed)', null]],
    ['stopped', [null, 'VM vm0 is not running (stopped)', null]],
  ];
  for (const [state, [start, stop, restart]] of table) {
    assert.deepEqual(verdicts(snap([{ state }], []), 'vm', 'vm0'), { start, stop, restart }, state);
  }
});

test('a VM whose back-end is down may be stopped, not started', () => {
  const s = snap([{ state: 'stopped', backends: ['b0'] }], [{ state: 'failed' }]);
  assert.deepEqual(verdicts(s, 'vm', 'vm0'), {
    start: 'VM vm0 uses back-end b0, which is failed; start that first',
    stop: 'VM vm0 is not running (stopped)',
    restart: 'VM vm0 uses back-end b0, which is failed; start that first',
  });
  assert.equal(verdicts(snap([{ state: 'ready', backends: ['b0'] }], [{ state: 'stopped' }]), 'vm', 'vm0').stop, null);
});

test('back-end verdicts: only restart: on-failure, by state', () => {
  assert.match(verdicts(snap([], [{ restart: 'no' }]), 'backend', 'b0').restart ?? '', /^back-end b0 has restart: no/);
  const table: Array<[BackendStatus['state'], [string | null, string | null, string | null]]> = [
    ['running', ['back-end b0 is already running', null, null]],
    ['stopped', [null, 'back-end b0 is not running (stopped)', null]],
    ['failed', [null, 'back-end b0 is not running (failed)', null]],
    ['starting', ['back-end b0 is starting', 'back-end b0 is starting', 'back-end b0 is starting']],
    ['restarting', ['back-end b0 is restarting', 'back-end b0 is restarting', 'back-end b0 is restarting']],
  ];
  for (const [state, [start, stop, restart]] of table) {
    assert.deepEqual(verdicts(snap([], [{ state }]), 'backend', 'b0'), { start, stop, restart }, state);
  }
});

test('unknown targets, a stopping run, a target already being acted on', () => {
  assert.deepEqual(checkAction(snap([{}], []), { target: 'vm', name: 'x', action: 'stop' }), { code: 'unknown', reason: "this run has no VM 'x'; it has: vm0" });
  assert.deepEqual(checkAction(snap([], []), { target: 'backend', name: 'x', action: 'stop' }), { code: 'unknown', reason: "this run has no back-end 'x'; it has: (none yet)" });
  assert.deepEqual(checkAction(snap([{}], [], true), { target: 'vm', name: 'vm0', action: 'stop' }), { code: 'refused', reason: 'the run is stopping' });
  assert.deepEqual(checkAction(snap([{}], []), { target: 'vm', name: 'vm0', action: 'stop' }, new Set(['vm:vm0'])), { code: 'refused', reason: 'an earlier request on VM vm0 is under way' });
  assert.equal(checkAction(snap([{}], []), { target: 'vm', name: 'vm0', action: 'stop' }, new Set(['backend:vm0'])), undefined);
});
