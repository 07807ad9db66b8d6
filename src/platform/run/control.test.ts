// SPDX-License-Identifier: Apache-2.0
/**
 * The control socket of a real run (real back-ends, a stand-in QEMU that prints its ready line and
 * waits, as in supervisor.test.ts), driven through ControlClient as `avp ui` drives it: snapshot
 * with the rules' verdicts, console tail and live events, stopping and starting a VM (the run stays
 * up with stayUp), restarting a back-end only where restart: on-failure allows it, unknown
 * targets, screens and buses registered through the extension points, protocol errors, and the
 * socket file (created 0600, removed at the end, a stale one replaced, a live one refused).
 */
import { test as nodeTest, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { hasCode } from '../../errors.js';
import { closeQuiet } from '../../sys/index.js';
import { VhostUserFrontend } from '../../vhost-user/frontend.js';
import { listenAt } from '../../vhost-user/server.js';
import type { PlatformPlan } from '../manifest/plan.js';
import type { ControlEvent } from './control.js';
import { ControlClient, ControlServer, MAX_REQUEST_BYTES } from './control-socket.js';
import type { InputEvent } from './extensions.js';
import { PlatformRun } from './supervisor.js';
import { planIn, standInQemu } from './testing/stand-in.js';

let dir = '';
let fake = '';

/** Stand-in QEMU: prints a line and its ready line, then waits; exits 0 on SIGTERM as QEMU does. */
const FAKE_QEMU = `
process.on('SIGTERM', () => process.exit(0));
process.stdout.write('booting\\nAVP-GUEST: READY\\n');
setInterval(() => {}, 1000);
`;

before(async () => {
  ({ dir, fake } = await standInQemu('avp-control-test-', FAKE_QEMU));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function test(name: string, fn: () => Promise<void>): void {
  nodeTest(name, { timeout: 90_000 }, fn);
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => {});
});

function plan(yaml: string): PlatformPlan {
  return planIn(dir, yaml);
}

/** Starts a run that stays up, and a client on its control socket once every VM is ready. */
async function startRun(yaml: string): Promise<{ p: PlatformPlan; run: PlatformRun; client: ControlClient; done: Promise<unknown> }> {
  const p = plan(yaml);
  const controller = new AbortController();
  const quiet = { console: () => {}, info: () => {}, error: () => {} };
  const run = new PlatformRun({ plan: p, reporter: quiet, qemu: { binary: fake, killGraceMs: 2_000 }, signal: controller.signal, stayUp: true });
  const done = run.run();
  const held: { client?: ControlClient } = {};
  cleanups.push(async () => {
    held.client?.close();
    controller.abort('SIGTERM');
    await done;
  });
  await until(() => run.snapshot().vms.length > 0 && run.snapshot().vms.every((v) => v.state === 'ready'));
  const client = await ControlClient.connect(p.controlSocket);
  held.client = client;
  return { p, run, client, done };
}

/** Waits (polling every 20 ms, 30 s at most) until `cond()` holds. */
async function until(cond: () => boolean | Promise<boolean>, what = 'the condition'): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} did not hold within 30 s`);
}

test('snapshot: VMs and back-ends with the rules’ verdicts; console tail; live console and log events', async () => {
  const { client, p } = await startRun('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng}, {kind: blk, size: 1M, restart: on-failure}]\n');
  assert.equal(statSync(p.controlSocket).mode & 0o777, 0o600);
  const snap = await client.snapshot();
  assert.equal(snap.protocol, 1);
  assert.equal(snap.name, 't');
  assert.deepEqual(
    snap.vms.map((v) => [v.name, v.state, v.backends, v.actions, v.displays, v.input]),
    [['hang1', 'ready', ['hang1/rng', 'hang1/blk'], { start: 'VM hang1 is already running (ready)', stop: null, restart: null }, [], false]],
  );
  const rng = snap.backends.find((b) => b.id === 'hang1/rng');
  assert.match(rng?.actions.restart ?? '', /^back-end hang1\/rng has restart: no, so QEMU would not reconnect to it/);
  assert.deepEqual(snap.backends.find((b) => b.id === 'hang1/blk')?.actions, { start: 'back-end hang1/blk is already running', stop: null, restart: null });
  assert.deepEqual(snap.buses, []);
  assert.deepEqual(await client.consoleTail('hang1'), ['booting', 'AVP-GUEST: READY']);

  const events: ControlEvent[] = [];
  const off = client.subscribe((e) => events.push(e));
  // A request answered after the subscribe: the subscription is in place.
  await client.snapshot();
  await client.act({ target: 'vm', name: 'hang1', action: 'restart' });
  await until(() => events.some((e) => e.type === 'console-line' && e.vm === 'hang1' && e.line === 'AVP-GUEST: READY'), 'a console event');
  assert.ok(events.some((e) => e.type === 'log' && e.level === 'info' && e.message === 'VM hang1 stopped on request'), JSON.stringify(events));
  off();
});

test('a VM stopped on request is stopped, the run stays up, and it can be started again', async () => {
  const { client, done } = await startRun('name: t\nvms:\n  - name: hang1\n  - name: hang2\n');
  assert.equal(await client.act({ target: 'vm', name: 'hang1', action: 'stop' }), 'VM hang1 stopped');
  assert.equal(await client.act({ target: 'vm', name: 'hang2', action: 'stop' }), 'VM hang2 stopped');
  let snap = await client.snapshot();
  assert.deepEqual(
    snap.vms.map((v) => [v.name, v.state, v.reason]),
    [
      ['hang1', 'stopped', 'stopped on request'],
      ['hang2', 'stopped', 'stopped on request'],
    ],
  );
  assert.deepEqual(snap.vms[0]?.actions, { start: null, stop: 'VM hang1 is not running (stopped)', restart: null });
  const r = await Promise.race([done, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 200))]);
  assert.equal(r, 'running', 'every VM has ended, and the run stays up');
  await assert.rejects(client.act({ target: 'vm', name: 'hang1', action: 'stop' }), (e: unknown) => hasCode(e, 'CONTROL_REFUSED') && /not running \(stopped\)/.test((e as Error).message));
  assert.match(await client.act({ target: 'vm', name: 'hang1', action: 'start' }), /^VM hang1 started \(QEMU pid \d+\)$/);
  await until(async () => (await client.snapshot()).vms[0]?.state === 'ready', 'hang1 ready again');
  snap = await client.snapshot();
  assert.equal(snap.vms[0]?.reason, undefined, 'a fresh status');
});

test('back-ends: restart where restart: on-failure allows it (a new process on the same socket), refused elsewhere', async () => {
  const { client, p } = await startRun('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng}, {kind: blk, size: 1M, isolation: process, restart: on-failure}]\n');
  const before = (await client.snapshot()).backends.find((b) => b.id === 'hang1/blk')?.pid;
  assert.ok(before !== undefined);
  assert.match(await client.act({ target: 'backend', name: 'hang1/blk', action: 'restart' }), /^back-end hang1\/blk serving \(process \d+\)$/);
  const blk = (await client.snapshot()).backends.find((b) => b.id === 'hang1/blk');
  assert.equal(blk?.state, 'running');
  assert.notEqual(blk?.pid, before);
  assert.equal(blk?.restarts, 0, 'a restart on request is not a crash');
  assert.ok(existsSync(p.sockets.find((s) => s.endsWith('blk.sock')) ?? ''), 'the socket stayed in place');

  assert.equal(await client.act({ target: 'backend', name: 'hang1/blk', action: 'stop' }), 'back-end hang1/blk stopped');
  await assert.rejects(client.act({ target: 'vm', name: 'hang1', action: 'restart' }), (e: unknown) => hasCode(e, 'CONTROL_REFUSED') && /uses back-end hang1\/blk, which is stopped; start that first/.test((e as Error).message));
  assert.match(await client.act({ target: 'backend', name: 'hang1/blk', action: 'start' }), /serving/);

  await assert.rejects(client.act({ target: 'backend', name: 'hang1/rng', action: 'restart' }), (e: unknown) => hasCode(e, 'CONTROL_REFUSED') && /restart: no/.test((e as Error).message));
  await assert.rejects(client.act({ target: 'backend', name: 'nope', action: 'restart' }), (e: unknown) => hasCode(e, 'CONTROL_UNKNOWN_TARGET') && /has: hang1\/rng, hang1\/blk/.test((e as Error).message));
  await assert.rejects(client.consoleTail('nope'), (e: unknown) => hasCode(e, 'CONTROL_UNKNOWN_TARGET'));
});

test('shared back-ends: one restarted from the control socket leaves and rejoins the shared thread; the other keeps its front-end', async () => {
  const { client, p } = await startRun('name: t\nvms:\n  - name: hang1\n    devices: [{kind: rng}, {kind: blk, size: 1M, restart: on-failure}]\n');
  const socket = (name: string): string => p.sockets.find((s) => s.endsWith(`/${name}.sock`)) ?? '';
  const rows = async () => (await client.snapshot()).backends.map((b) => [b.id, b.isolation, b.state]);
  assert.deepEqual(await rows(), [
    ['hang1/rng', 'shared', 'running'],
    ['hang1/blk', 'shared', 'running'],
  ]);
  // A front-end on rng, served by the shared thread before, during and after blk's restart.
  const rng = VhostUserFrontend.connect(socket('rng'), { replyTimeoutMs: 30_000 });
  cleanups.push(() => Promise.resolve(rng.close()));
  const features = rng.getU64('GET_FEATURES');
  assert.match(await client.act({ target: 'backend', name: 'hang1/blk', action: 'restart' }), /^back-end hang1\/blk serving \(shared thread\)$/);
  assert.equal(rng.getU64('GET_FEATURES'), features, 'rng kept its front-end through the restart');
  assert.equal(rng.peerClosed(), false);
  // blk serves again in the shared thread: a front-end gets its config (capacity 1 MiB = 2048 sectors).
  const blk = VhostUserFrontend.connect(socket('blk'), { replyTimeoutMs: 30_000 });
  cleanups.push(() => Promise.resolve(blk.close()));
  assert.notEqual(blk.getU64('GET_FEATURES') & (1n << 32n), 0n, 'blk offers VERSION_1');
  assert.deepEqual(await rows(), [
    ['hang1/rng', 'shared', 'running'],
    ['hang1/blk', 'shared', 'running'],
  ]);
  assert.equal((await client.snapshot()).backends.find((b) => b.id === 'hang1/blk')?.restarts, 0, 'a restart on request is not a crash');
});

test('screens and buses registered through the extension points reach the client', async () => {
  const { client, run } = await startRun('name: t\nvms:\n  - name: hang1\n  - name: hang2\n');
  const png = Buffer.from('89504e470d0a1a0a0000', 'hex');
  const got: Array<[string, InputEvent]> = [];
  run.extensions.addScreens('hang1', { displays: () => [{ id: '0', width: 800, height: 480 }], screenshot: async (d) => (d === '0' ? png : Promise.reject(new Error('no such display'))) }, { send: async (d, e) => void got.push([d, e]) });
  run.extensions.addScreens('hang2', { displays: () => [{ id: '0', width: 640, height: 480 }], screenshot: async () => png });
  const listeners = new Set<(l: string) => void>();
  run.extensions.addBus({ name: 'body', kind: 'can', recent: () => ['old frame'], subscribe: (l) => (listeners.add(l), () => listeners.delete(l)) });

  const snap = await client.snapshot();
  assert.deepEqual(snap.vms.map((v) => [v.name, v.displays, v.input]), [
    ['hang1', [{ id: '0', width: 800, height: 480 }], true],
    ['hang2', [{ id: '0', width: 640, height: 480 }], false],
  ]);
  assert.deepEqual(snap.buses, [{ name: 'body', kind: 'can' }]);
  assert.deepEqual(await client.screenshot('hang1', '0'), png);
  await client.input('hang1', '0', { type: 'touch', action: 'down', x: 10, y: 20 });
  assert.deepEqual(got, [['0', { type: 'touch', action: 'down', x: 10, y: 20 }]]);
  await assert.rejects(client.input('hang2', '0', { type: 'key', action: 'down', code: 'KeyA' }), (e: unknown) => hasCode(e, 'CONTROL_REFUSED'));
  await assert.rejects(client.screenshot('nope', '0'), (e: unknown) => hasCode(e, 'CONTROL_UNKNOWN_TARGET'));

  assert.deepEqual(await client.busTail('body'), ['old frame']);
  const lines: string[] = [];
  client.subscribe((e) => e.type === 'bus' && lines.push(`${e.bus}: ${e.line}`));
  await client.snapshot(); // the subscription is in place once a later request is answered
  for (const l of listeners) l('123#DEADBEEF');
  await until(() => lines.length > 0, 'a bus event');
  assert.deepEqual(lines, ['body: 123#DEADBEEF']);
  run.extensions.removeBus('body');
  assert.equal(listeners.size, 0, 'removing the bus unsubscribes from its trace');
});

test('protocol errors: not JSON, not a request, an over-long line (which ends the connection)', async () => {
  const { p } = await startRun('name: t\nvms:\n  - name: hang1\n');
  const s = createConnection(p.controlSocket);
  cleanups.push(async () => void s.destroy());
  let text = '';
  s.setEncoding('utf8').on('data', (c: string) => (text += c));
  const replies = async (n: number): Promise<Array<{ id: unknown; error?: { code: string; message: string }; result?: unknown }>> => {
    await until(() => text.split('\n').length > n, `${n} replies`);
    return text.split('\n').slice(0, n).map((l) => JSON.parse(l) as { id: unknown });
  };
  s.write('{nope\n{"id":7,"method":"reboot"}\n{"id":8,"method":"act","params":{"target":"vm","name":"hang1","action":"explode"}}\n{"id":9,"method":"hello"}\n');
  const r = await replies(4);
  assert.deepEqual([r[0]?.id, r[0]?.error?.code], [null, 'CONTROL_PROTOCOL']);
  assert.match(r[0]?.error?.message ?? '', /^not JSON/);
  assert.deepEqual([r[1]?.id, r[1]?.error?.code], [7, 'CONTROL_PROTOCOL']);
  assert.deepEqual([r[2]?.id, r[2]?.error?.code], [8, 'CONTROL_PROTOCOL']);
  assert.match(r[2]?.error?.message ?? '', /params\.action/);
  assert.deepEqual(r[3], { id: 9, result: { protocol: 1, pid: process.pid } });
  const closed = new Promise((resolve) => s.once('close', resolve));
  s.write('x'.repeat(MAX_REQUEST_BYTES + 10));
  await closed;
  assert.match(text, /"error":\{"code":"CONTROL_PROTOCOL","message":"a line of over 1048576 bytes"\}/);
});

test('the socket file: removed at the end, a stale one replaced, a live one refused', async () => {
  const { p, client } = await startRun('name: t\nvms:\n  - name: hang1\n');
  // A live control socket: a second server at the same path is refused.
  await assert.rejects(ControlServer.listen(p.controlSocket, {} as never), (e: unknown) => hasCode(e, 'RUN_DIR_FAILED') && /another avp run is using/.test((e as Error).message));
  const closed = client.closed;
  await cleanups.pop()?.();
  assert.match(await closed, /the run ended/);
  assert.equal(existsSync(p.controlSocket), false, 'the control socket is removed');
  await assert.rejects(ControlClient.connect(p.controlSocket), (e: unknown) => hasCode(e, 'CONTROL_UNAVAILABLE'));

  // A stale socket file (its server died without removing it) is replaced.
  closeQuiet(listenAt(p.controlSocket));
  assert.equal(statSync(p.controlSocket).isSocket(), true);
  const server = await ControlServer.listen(p.controlSocket, {} as never);
  await server.close();
  assert.equal(existsSync(p.controlSocket), false);
});
