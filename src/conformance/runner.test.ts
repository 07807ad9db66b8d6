// SPDX-License-Identifier: Apache-2.0
/**
 * The runner's verdict machinery, proved with checks that misbehave on purpose against a real
 * back-end (`avp serve rng`): silence while the back-end is healthy is FAIL, a write outside the
 * buffers is FAIL, a used id that was never made available is FAIL, an exception of our own is
 * reported as an AVP bug, a killed back-end is CRASH and is restarted for the next check, a
 * back-end that accepts but never answers is WEDGED, and a back-end that cannot be restarted
 * fails the rest of the run as CRASH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail, pass, type CheckOutcome } from '../device/conformance.js';
import { rngConformance } from '../devices/rng/conformance.js';
import { QueueError } from '../queue/errors.js';
import { closeQuiet, connectUnix, listenUnix } from '../sys/index.js';
import { SpawnedBackend } from '../vhost-user/spawn.js';
import { type Check, type CheckContext, probeOnce } from './check.js';
import { ConformanceError } from './errors.js';
import { runConformance, socketTarget, spawnedTarget } from './runner.js';

const AVP = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));
const RNG = `${JSON.stringify(process.execPath)} ${AVP} serve rng --socket-path {socket}`;

function check(id: string, run: (ctx: CheckContext) => CheckOutcome): Check {
  return { id, title: `test check ${id}`, source: 'test', level: 'MUST', group: 'queue', devices: 'all', run };
}

const served = check('t.served', (ctx) => {
  const d = ctx.connect();
  d.start();
  const bad = probeOnce(d);
  return bad === null ? pass('served') : fail(bad);
});

/**
 * Kills the back-end and waits (without the event loop, as a check would) until its process is
 * gone and its socket refuses connections. Both: the thread-group leader turns zombie before the
 * other threads have closed the process's fds, so the listening socket can outlive isAlive() by a
 * few milliseconds; and a connect can fail (EAGAIN, backlog full) while the dying process is still
 * alive, which once let the runner see a live back-end after this check (CI, loaded machine).
 */
function killAndWait(b: SpawnedBackend): void {
  // Safe: the back-end is running, so it has a pid.
  process.kill(b.pid!, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (b.isAlive()) continue;
    try {
      closeQuiet(connectUnix(b.socketPath));
    } catch {
      return;
    }
  }
}

test('runner: silence, stray writes, bad used ids and our own bugs each get the right verdict; a crash is charged and the back-end restarted', async (t) => {
  const b = await SpawnedBackend.start(RNG);
  t.after(() => b.stop());
  const checks: Check[] = [
    check('t.silence', (ctx) => {
      ctx.connect();
      throw new ConformanceError('CONFORMANCE_NO_COMPLETION', 'queue 0: request not completed');
    }),
    check('t.stray', (ctx) => {
      const d = ctx.connect();
      d.start();
      const buf = d.in(16);
      // What a device writing one byte past the buffer leaves behind.
      d.memory.memory.writeU8(buf.addr + buf.len, 0);
      return pass('looked fine');
    }),
    check('t.bad-used', () => {
      throw new QueueError('VIRTQ_DRIVER_BAD_USED', 'device returned id 9, which is not an outstanding chain head');
    }),
    check('t.bug', () => {
      throw new TypeError('undefined is not a function');
    }),
    check('t.kill', (ctx) => {
      ctx.connect();
      killAndWait(b);
      return pass('the check did not notice');
    }),
    served,
  ];
  const r = await runConformance({ device: rngConformance, checks, target: spawnedTarget(b), timeoutMs: 2000 });
  assert.deepEqual(
    r.results.map((x) => [x.id, x.verdict]),
    [
      ['t.silence', 'FAIL'],
      ['t.stray', 'FAIL'],
      ['t.bad-used', 'FAIL'],
      ['t.bug', 'FAIL'],
      ['t.kill', 'CRASH'],
      ['t.served', 'PASS'],
    ],
  );
  const details = Object.fromEntries(r.results.map((x) => [x.id, x.details]));
  assert.match(details['t.stray'] ?? '', /1 byte\(s\) changed outside device-writable buffers/);
  assert.match(details['t.bug'] ?? '', /internal error in the check, an AVP bug/);
  assert.match(details['t.kill'] ?? '', /process died \(killed by SIGKILL\)/);
  assert.equal(b.starts, 2, 'restarted once after the crash');
  assert.deepEqual([r.passed, r.failed], [1, 5]);
});

test('runner: a back-end that accepts connections but never answers is WEDGED', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  const path = join(dir, 'mute.sock');
  const fd = listenUnix(path);
  t.after(() => {
    closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const r = await runConformance({ device: rngConformance, checks: [served], target: socketTarget(path), timeoutMs: 200 });
  assert.equal(r.results[0]?.verdict, 'WEDGED');
  assert.match(r.results[0]?.details ?? '', /GET_FEATURES: no reply within 200 ms; afterwards a new connection is not served either/);
  assert.equal(r.offered, null);
});

test('runner: when a back-end reached by socket dies, that check is CRASH and the rest are not run', async (t) => {
  const b = await SpawnedBackend.start(RNG);
  t.after(() => b.stop());
  const kill = check('t.kill', (ctx) => {
    ctx.connect();
    killAndWait(b);
    return pass('the check did not notice');
  });
  const r = await runConformance({ device: rngConformance, checks: [served, kill, served], target: socketTarget(b.socketPath), timeoutMs: 2000 });
  assert.deepEqual(r.results.map((x) => x.verdict), ['PASS', 'CRASH', 'CRASH']);
  assert.match(r.results[2]?.details ?? '', /^not run: the back-end is gone/);
});
