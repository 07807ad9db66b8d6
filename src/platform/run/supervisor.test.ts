// SPDX-License-Identifier: Apache-2.0
/**
 * The supervisor with real back-ends (threads, and `avp serve` processes) and a stand-in QEMU: a
 * small Node program that prints console lines, exits or hangs as its VM's name says. Covers each
 * way a run ends (all ready, all powered off, a failure, the timeout, an abort), a back-end
 * process killed under a VM (reported, the VM stopped; or restarted with restart: on-failure), a
 * back-end that cannot start, and that nothing is left afterwards: no VM, no back-end process, no
 * socket. Real QEMU runs are in cli/run.e2e.test.ts.
 */
import { test as nodeTest, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hasCode } from '../../errors.js';
import type { PlatformPlan } from '../manifest/plan.js';
import { liveVmCount } from '../qemu.js';
import { SharedLoopThread, liveBackendProcessCount } from './launch.js';
import { PlatformRun, type RunPlatformOptions, type RunReporter } from './supervisor.js';
import { planIn, standInQemu } from './testing/stand-in.js';

let dir = '';
let fake = '';

/**
 * Stand-in QEMU. Its VM name (-name) picks the behaviour: ok* prints READY, then EXIT 0 after
 * FAKE_DELAY ms and exits; bad* exits with script status 3; hang* prints READY and waits;
 * silent* prints nothing and waits; crash* fails like a QEMU that cannot connect.
 */
const FAKE_QEMU = `
const name = process.argv[process.argv.indexOf('-name') + 1] ?? '';
const out = (s) => process.stdout.write(s + '\\n');
const delay = Number(process.env.FAKE_DELAY ?? '50');
process.on('SIGTERM', () => { process.stderr.write('terminating on signal 15\\n'); process.exit(0); });
if (name.startsWith('ok')) { out('booting'); out('AVP-GUEST: READY'); setTimeout(() => { out('AVP-GUEST: EXIT 0'); process.exit(0); }, delay); }
else if (name.startsWith('bad')) { out('AVP-GUEST: READY'); out('AVP-GUEST: EXIT 3'); setTimeout(() => process.exit(0), 20); }
else if (name.startsWith('hang')) { out('AVP-GUEST: READY'); setInterval(() => {}, 1000); }
else if (name.startsWith('silent')) { setInterval(() => {}, 1000); }
else { process.stderr.write('qemu-system-x86_64: -chardev socket: Failed to connect\\n'); process.exit(1); }
`;

before(async () => {
  ({ dir, fake } = await standInQemu('avp-supervisor-test-', FAKE_QEMU));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** No test may hang the suite: each has a generous limit (the work takes a few seconds). */
function test(name: string, fn: () => Promise<void>): void {
  nodeTest(name, { timeout: 90_000 }, fn);
}

/** Runs not yet ended; afterEach stops them, so a failed assertion leaves nothing running. */
const active = new Set<{ controller: AbortController; done: Promise<unknown> }>();

afterEach(async () => {
  for (const a of active) {
    a.controller.abort('SIGTERM');
    await a.done.catch(() => {});
  }
  active.clear();
});

/** Plans `yaml` into a fresh run directory. */
function plan(yaml: string): PlatformPlan {
  return planIn(dir, yaml);
}

interface Recorded extends RunReporter {
  lines: string[];
  /** Resolves with the first output line matching `re` (already seen or yet to come). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

function recorder(): Recorded {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const push = (l: string): void => {
    lines.push(l);
    for (const w of [...waiters]) {
      if (w.re.test(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  return {
    lines,
    console: (vm, line) => push(`[${vm}] ${line}`),
    info: (m) => push(`info: ${m}`),
    error: (m) => push(`error: ${m}`),
    waitFor(re, timeoutMs = 30_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

/** Starts a run; `controller.abort(signalName)` stops it (and afterEach does if the test did not). */
function start(p: PlatformPlan, rec: Recorded, extra: Partial<RunPlatformOptions> = {}): { run: PlatformRun; done: ReturnType<PlatformRun['run']>; controller: AbortController } {
  const controller = new AbortController();
  const run = new PlatformRun({ plan: p, reporter: rec, qemu: { binary: fake, killGraceMs: 2_000 }, signal: controller.signal, ...extra });
  const done = run.run();
  const entry = { controller, done: done as Promise<unknown> };
  active.add(entry);
  void done.then(
    () => active.delete(entry),
    () => active.delete(entry),
  );
  return { run, done, controller };
}

/** The first bytes a back-end sends back for a bare GET_FEATURES on a fresh connection to `socket`. */
function getFeaturesReply(socket: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const c = createConnection(socket);
    c.on('error', reject);
    // VHOST_USER_GET_FEATURES (1), flags 0x1 (version 1), no payload: the back-end replies with 8 bytes.
    c.on('connect', () => c.write(Buffer.from([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])));
    c.once('data', (d: Buffer) => {
      c.destroy();
      resolve(d);
    });
  });
}

/** Nothing of the run is left: no VM, no back-end process, no socket file. */
function assertCleanedUp(p: PlatformPlan): void {
  assert.equal(liveVmCount(), 0, 'no VM left');
  assert.equal(liveBackendProcessCount(), 0, 'no back-end process left');
  for (const s of [...p.sockets, ...p.hostSockets]) assert.equal(existsSync(s), false, `${s} removed`);
  const leftovers = readdirSync(p.runDir, { recursive: true }).map(String).filter((f) => f.endsWith('.sock'));
  assert.deepEqual(leftovers, []);
}

test('untilReady: exit 0 once every VM printed its ready line; logs written; nothing left', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng}, {kind: blk, size: 1M}]\n  - name: hang2\n    devices: [{kind: rng, isolation: process}]\n');
  const rec = recorder();
  const { done } = start(p, rec, { untilReady: true });
  const result = await done;
  assert.equal(result.exitCode, 0, rec.lines.join('\n'));
  assert.equal(result.reason, 'every VM is ready (2)');
  assert.deepEqual(
    result.snapshot.vms.map((v) => [v.name, v.readyAt !== undefined]),
    [
      ['hang1', true],
      ['hang2', true],
    ],
  );
  assert.ok(rec.lines.includes('[hang1] AVP-GUEST: READY'));
  assert.match(readFileSync(join(p.runDir, 'hang1', 'console.log'), 'utf8'), /^AVP-GUEST: READY\n/);
  assert.match(readFileSync(p.runLog, 'utf8'), /back-end hang2\/rng serving \(process \d+\)/);
  assert.equal(existsSync(join(p.runDir, 'hang1', 'blk.img')), true, 'the scratch disk was created');
  assertCleanedUp(p);
});

test('every VM powers off: 0 when every guest script exited 0, else 1 naming the failed VMs', async () => {
  const good = plan('name: t\nvms:\n  - name: ok1\n  - name: ok2\n    devices: [{kind: rng}]\n');
  const r1 = await start(good, recorder()).done;
  assert.deepEqual([r1.exitCode, r1.reason], [0, 'every VM powered off successfully (2)']);
  assertCleanedUp(good);

  const mixed = plan('name: t\nvms:\n  - name: ok1\n  - name: bad1\n');
  const rec = recorder();
  const r2 = await start(mixed, rec).done;
  assert.deepEqual([r2.exitCode, r2.reason], [1, 'every VM has powered off; failed: bad1']);
  assert.ok(rec.lines.includes('error: VM bad1 powered off (guest script exit status 3)'), rec.lines.join('\n'));
  assertCleanedUp(mixed);
});

test('untilReady: a VM that fails before it is ready ends the run with 1 and QEMU’s words', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n  - name: crash1\n');
  const rec = recorder();
  const r = await start(p, rec, { untilReady: true }).done;
  assert.equal(r.exitCode, 1);
  assert.equal(r.reason, 'VM crash1 exited (QEMU status 1) before its guest script ended');
  assert.ok(rec.lines.some((l) => l.includes('qemu-system-x86_64: -chardev socket: Failed to connect')), rec.lines.join('\n'));
  assertCleanedUp(p);
});

test('timeout: exit 1 naming the VMs that are not ready', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n  - name: silent1\n');
  const r = await start(p, recorder(), { untilReady: true, timeoutMs: 3_000 }).done;
  assert.deepEqual([r.exitCode, r.reason], [1, 'timed out after 3 s: not ready: silent1 (booting)']);
  assertCleanedUp(p);
});

test('--until replaces the ready patterns; a VM without one is refused up front', async () => {
  const p = plan("name: t\nvms:\n  - name: ok1\n    boot: {kernel: /k, initrd: /i}\n");
  await assert.rejects(start(p, recorder(), { untilReady: true }).done, (e: unknown) => hasCode(e, 'PLATFORM_PLAN_INVALID'));
  const r = await start(p, recorder(), { untilReady: true, until: /^booting$/ }).done;
  assert.equal(r.exitCode, 0);
  assertCleanedUp(p);
});

test('abort (SIGTERM): everything stops, status 143', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng, isolation: process}, {kind: blk, size: 1M}]\n');
  const rec = recorder();
  const { done, controller } = start(p, rec);
  await rec.waitFor(/VM hang1 is ready/);
  controller.abort('SIGTERM');
  const r = await done;
  assert.deepEqual([r.exitCode, r.reason], [143, 'stopped by SIGTERM']);
  assert.deepEqual(
    r.snapshot.backends.map((b) => b.state),
    ['stopped', 'stopped'],
  );
  assertCleanedUp(p);
});

test('a back-end process killed under a running VM is reported and its VM stopped', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng, isolation: process}]\n  - name: hang2\n');
  const rec = recorder();
  const { run, done } = start(p, rec);
  await rec.waitFor(/VM hang1 is ready/);
  await rec.waitFor(/VM hang2 is ready/);
  const pid = run.snapshot().backends[0]?.pid;
  assert.ok(pid !== undefined);
  process.kill(pid, 'SIGKILL');
  await rec.waitFor(/error: VM hang1 was stopped: its back-end hang1\/rng failed/);
  assert.ok(rec.lines.some((l) => /error: back-end hang1\/rng \(process \d+\) exited unexpectedly \(killed by SIGKILL\)/.test(l)), rec.lines.join('\n'));
  // Why it is not restarted: rng's QEMU front-end cannot reconnect, said in so many words.
  assert.ok(
    rec.lines.includes(
      "error: stopping VM hang1: its back-end hang1/rng failed; QEMU's vhost-user-rng-pci cannot reconnect to a restarted back-end (restart: on-failure is refused for rng), so the device would stay dead in this QEMU; start the run again to get it back",
    ),
    rec.lines.join('\n'),
  );
  assert.equal(run.snapshot().vms[1]?.state, 'ready', 'the other VM runs on');
  const r = await Promise.race([done, new Promise<'running'>((resolve) => setImmediate(() => resolve('running')))]);
  assert.equal(r, 'running', 'one VM still runs, so the run goes on');
  // The stand-in for hang2 exits on SIGTERM, as QEMU does; the run then ends by itself.
  process.kill(run.snapshot().vms[1]?.pid ?? 0, 'SIGTERM');
  const end = await done;
  assert.equal(end.exitCode, 1);
  assert.match(end.reason, /^every VM has powered off; failed: hang1/);
  assertCleanedUp(p);
});

test('restart: on-failure starts a killed back-end again on the same socket', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: blk, size: 1M, isolation: process, restart: on-failure}]\n');
  const rec = recorder();
  const { run, done, controller } = start(p, rec);
  await rec.waitFor(/VM hang1 is ready/);
  const first = run.snapshot().backends[0]?.pid;
  assert.ok(first !== undefined);
  process.kill(first, 'SIGKILL');
  await rec.waitFor(/back-end hang1\/blk restarted \(process \d+\); QEMU reconnects to .*blk\.sock/);
  const snap = run.snapshot();
  assert.equal(snap.backends[0]?.state, 'running');
  assert.equal(snap.backends[0]?.restarts, 1);
  assert.notEqual(snap.backends[0]?.pid, first);
  assert.equal(snap.vms[0]?.state, 'ready', 'the VM was not stopped');
  assert.equal(existsSync(p.sockets[0] ?? ''), true, 'the socket stayed in place');
  controller.abort('SIGINT');
  const r = await done;
  assert.equal(r.exitCode, 130);
  assertCleanedUp(p);
});

test('the shared back-end thread crashing: its restartable back-ends join a new thread and serve again; a VM whose back-end cannot be restarted is stopped', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: blk, size: 1M, restart: on-failure}]\n  - name: hang2\n    devices: [{kind: rng}]\n  - name: hang3\n    devices: [{kind: rng, isolation: thread}]\n');
  const loop = new SharedLoopThread();
  const rec = recorder();
  const { run, done, controller } = start(p, rec, { sharedLoop: loop });
  for (const vm of ['hang1', 'hang2', 'hang3']) await rec.waitFor(new RegExp(`VM ${vm} is ready`));
  assert.deepEqual(
    run.snapshot().backends.map((b) => [b.id, b.isolation, b.state]),
    [
      ['hang1/blk', 'shared', 'running'],
      ['hang2/rng', 'shared', 'running'],
      ['hang3/rng', 'thread', 'running'],
    ],
  );
  assert.equal(await loop.terminate(), 1, 'the worker ended as a crash does');
  await rec.waitFor(/back-end hang1\/blk restarted \(shared thread\); QEMU reconnects to .*blk\.sock/);
  await rec.waitFor(/error: VM hang2 was stopped: its back-end hang2\/rng failed/);
  assert.ok(rec.lines.some((l) => l.includes('hang1/blk (shared thread) exited unexpectedly')), rec.lines.join('\n'));
  const snap = run.snapshot();
  assert.deepEqual(
    snap.backends.map((b) => [b.id, b.state, b.restarts]),
    [
      ['hang1/blk', 'running', 1],
      ['hang2/rng', 'failed', 0],
      ['hang3/rng', 'running', 0],
    ],
  );
  assert.deepEqual(
    snap.vms.map((v) => [v.name, v.state]),
    [
      ['hang1', 'ready'],
      ['hang2', 'failed'],
      ['hang3', 'ready'],
    ],
  );
  // The restarted blk is served by the new thread: a front-end on its socket gets the features.
  const socket = p.sockets.find((s) => s.endsWith('/blk.sock')) ?? '';
  const reply = await getFeaturesReply(socket);
  assert.equal(reply.length, 20, 'a GET_FEATURES reply: 12-byte header and 8 bytes');
  assert.notEqual(reply.readBigUInt64LE(12) & (1n << 32n), 0n, 'blk offers VERSION_1');
  controller.abort('SIGINT');
  assert.equal((await done).exitCode, 130);
  assertCleanedUp(p);
});

test('a socket file removed while the run goes on is made again when its back-end restarts', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: blk, size: 1M, isolation: process, restart: on-failure}]\n');
  const socket = p.sockets[0] ?? '';
  const rec = recorder();
  const { run, done, controller } = start(p, rec);
  await rec.waitFor(/VM hang1 is ready/);
  const before = statSync(socket).ino;
  unlinkSync(socket);
  process.kill(run.snapshot().backends[0]?.pid ?? 0, 'SIGKILL');
  await rec.waitFor(/back-end hang1\/blk restarted/);
  assert.ok(
    rec.lines.some((l) => l.includes(`back-end hang1/blk: its socket ${socket} was removed while the run went on; listening at a new one there so QEMU can connect again`)),
    rec.lines.join('\n'),
  );
  assert.notEqual(statSync(socket).ino, before, 'a new socket file');
  // The restarted back-end accepts on the new file: a front-end that connects by path is served.
  const reply = await getFeaturesReply(socket);
  assert.equal(reply.subarray(0, 4).toString('hex'), '01000000', 'GET_FEATURES answered on the new socket');
  controller.abort('SIGINT');
  const r = await done;
  assert.equal(r.exitCode, 130);
  assertCleanedUp(p);
});

test('a VM started again after its back-end socket file was removed is refused precisely; restarting the back-end makes the file again', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: blk, size: 1M, isolation: process, restart: on-failure}]\n');
  const socket = p.sockets[0] ?? '';
  const rec = recorder();
  const { run, done, controller } = start(p, rec, { stayUp: true });
  await rec.waitFor(/VM hang1 is ready/);
  assert.equal(await run.act({ target: 'vm', name: 'hang1', action: 'stop' }), 'VM hang1 stopped');
  unlinkSync(socket);
  await assert.rejects(
    run.act({ target: 'vm', name: 'hang1', action: 'start' }),
    (e: unknown) =>
      hasCode(e, 'CONTROL_REFUSED') &&
      (e as Error).message ===
        `cannot start VM hang1: the socket ${socket} of its back-end hang1/blk was removed or replaced while the run went on, so QEMU could not reach the back-end; restart the back-end (it listens at a new socket file then), then start the VM`,
  );
  await run.act({ target: 'backend', name: 'hang1/blk', action: 'restart' });
  assert.equal(existsSync(socket), true, 'the restart made the socket file again');
  assert.match(await run.act({ target: 'vm', name: 'hang1', action: 'start' }), /^VM hang1 started/);
  controller.abort('SIGINT');
  await done;
  assertCleanedUp(p);
});

test('restart limit: a back-end that keeps dying is given up on', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: blk, size: 1M, isolation: process, restart: on-failure}]\n');
  const rec = recorder();
  const { run, done } = start(p, rec, { restartLimit: { count: 1, windowMs: 60_000 } });
  await rec.waitFor(/VM hang1 is ready/);
  process.kill(run.snapshot().backends[0]?.pid ?? 0, 'SIGKILL');
  await rec.waitFor(/back-end hang1\/blk restarted/);
  process.kill(run.snapshot().backends[0]?.pid ?? 0, 'SIGKILL');
  await rec.waitFor(/failed 1 times within 60 s; not restarting it again/);
  const r = await done;
  assert.deepEqual([r.exitCode, r.reason], [1, 'every VM has powered off; failed: hang1']);
  assertCleanedUp(p);
});

test('a back-end that cannot start: the run fails before any VM, and what started is stopped', async () => {
  const p = plan(`name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng, isolation: process}, {kind: blk, image: ${JSON.stringify(dir)}}]\n`);
  const rec = recorder();
  await assert.rejects(start(p, rec).done, (e: unknown) => hasCode(e, 'BACKEND_START_FAILED') && /hang1\/blk/.test((e as Error).message));
  assert.equal(rec.lines.some((l) => /VM hang1 started/.test(l)), false);
  assertCleanedUp(p);
});

test('QEMU not installed: a clear error, nothing left', async () => {
  const p = plan('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng}]\n');
  await assert.rejects(new PlatformRun({ plan: p, reporter: recorder(), qemu: { binary: join(dir, 'no-such-qemu') } }).run(), (e: unknown) => hasCode(e, 'QEMU_NOT_INSTALLED'));
  assertCleanedUp(p);
});
