// SPDX-License-Identifier: Apache-2.0
/**
 * The runner's watchdog and balloon handling with a stand-in QEMU (a small Node program) that
 * connects to the VM's QMP socket as QEMU does (`-chardev socket,id=qmp,path=...`), greets,
 * answers qmp_capabilities, balloon and query-balloon, prints READY, and then fires its watchdog:
 * a WATCHDOG event with the action of `-action watchdog=`, and for poweroff an exit, for reset a
 * second READY. Covers: the report line, the counts in the status, restart-vm starting the VM
 * again up to the restart limit, poweroff as a failure with its reason, balloon targets and their
 * range, and that nothing is left. Real QEMU: watchdog.e2e.test.ts.
 */
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hasCode } from '../../errors.js';
import type { PlatformPlan } from '../manifest/plan.js';
import { liveVmCount } from '../qemu.js';
import { PlatformRun, type RunReporter } from './supervisor.js';
import { planIn, standInQemu } from './testing/stand-in.js';

/** Stand-in QEMU; FIRE=0 in its environment keeps the watchdog quiet (balloon tests); without a QMP socket it only prints READY. */
const FAKE_QEMU = `
(() => {
const net = require('node:net');
const arg = (flag, prefix) => { for (let i = 0; i < process.argv.length; i++) if (process.argv[i] === flag && process.argv[i + 1].startsWith(prefix)) return process.argv[i + 1]; return ''; };
const qmpPath = /path=([^,]+)/.exec(arg('-chardev', 'socket,id=qmp'))?.[1];
if (qmpPath === undefined) { process.stdout.write('AVP-GUEST: READY\\n'); setInterval(() => {}, 1000); return; }
const action = arg('-action', 'watchdog=').slice('watchdog='.length);
const out = (s) => process.stdout.write(s + '\\n');
let actual = 256 * 1048576;
const sock = net.connect(qmpPath);
const send = (m) => sock.write(JSON.stringify(m) + '\\r\\n');
let buf = '';
sock.on('connect', () => send({ QMP: { version: {}, capabilities: [] } }));
sock.on('data', (d) => {
  buf += d;
  for (let nl = buf.indexOf('\\n'); nl >= 0; nl = buf.indexOf('\\n')) {
    const m = JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1);
    if (m.execute === 'balloon') { actual = m.arguments.value; send({ return: {}, id: m.id }); }
    else if (m.execute === 'query-balloon') send({ return: { actual }, id: m.id });
    else if (m.execute === 'qmp_capabilities') { send({ return: {}, id: m.id }); boot(); }
    else send({ error: { class: 'CommandNotFound', desc: 'no' }, id: m.id });
  }
});
let boots = 0;
function boot() {
  boots++;
  out('AVP-GUEST: READY');
  if (process.env.FIRE === '0' || boots > 2) return;
  setTimeout(() => {
    send({ event: 'WATCHDOG', data: { action }, timestamp: { seconds: 1, microseconds: 0 } });
    if (action === 'poweroff') setTimeout(() => process.exit(0), 20);
    else setTimeout(boot, 20);
  }, 50);
}
setInterval(() => {}, 1000);
})();
`;

let dir = '';
let fake = '';
before(async () => {
  ({ dir, fake } = await standInQemu('avp-watchdog-test-', FAKE_QEMU));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function test(name: string, fn: () => Promise<void>): void {
  nodeTest(name, { timeout: 60_000 }, fn);
}

function plan(vms: string): PlatformPlan {
  return planIn(dir, `name: p\nvms:\n${vms}`);
}

class Rec implements RunReporter {
  readonly lines: string[] = [];
  readonly #waiters: Array<{ re: RegExp; n: number; resolve: () => void }> = [];
  console(vm: string, line: string): void {
    this.#push(`[${vm}] ${line}`);
  }
  info(m: string): void {
    this.#push(`info: ${m}`);
  }
  error(m: string): void {
    this.#push(`error: ${m}`);
  }
  waitFor(re: RegExp, n = 1): Promise<void> {
    if (this.lines.filter((l) => re.test(l)).length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${n}. line matching ${re}:\n${this.lines.join('\n')}`)), 30_000);
      this.#waiters.push({ re, n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
  #push(l: string): void {
    this.lines.push(l);
    for (const w of [...this.#waiters]) {
      if (this.lines.filter((x) => w.re.test(x)).length >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }
}

function start(p: PlatformPlan, rec: Rec, env: NodeJS.ProcessEnv = {}) {
  const controller = new AbortController();
  const run = new PlatformRun({ plan: p, reporter: rec, qemu: { binary: fake, killGraceMs: 2_000, env: { ...process.env, ...env } }, signal: controller.signal, restartLimit: { count: 2, windowMs: 60_000 } });
  const done = run.run();
  return { run, done, controller };
}

function assertCleanedUp(p: PlatformPlan): void {
  assert.equal(liveVmCount(), 0, 'no VM left');
  assert.deepEqual(readdirSync(p.runDir, { recursive: true }).map(String).filter((f) => f.endsWith('.sock')), []);
}

test('restart-vm: each firing is reported and the VM started again, up to the restart limit; then it has failed', async () => {
  const p = plan('  - name: a\n    watchdog: {timeout: 5, action: restart-vm}\n');
  const rec = new Rec();
  const { run, done } = start(p, rec);
  const result = await done; // the VM ends for good after the limit: every VM has ended
  assert.equal(result.exitCode, 1);
  assert.equal(rec.lines.filter((l) => /^error: watchdog fired on VM a: restart-vm \(QEMU powers off; avp run starts the VM again\); QEMU action poweroff/.test(l)).length, 3);
  assert.ok(rec.lines.includes('info: restarting VM a after its watchdog fired (restart 1 of at most 2 in 60 s)'), rec.lines.join('\n'));
  assert.ok(rec.lines.includes('info: restarting VM a after its watchdog fired (restart 2 of at most 2 in 60 s)'), rec.lines.join('\n'));
  assert.ok(rec.lines.includes('error: VM a: its watchdog fired 2 times within 60 s; not restarting it again'), rec.lines.join('\n'));
  const vm = run.snapshot().vms[0];
  assert.equal(vm?.state, 'failed');
  assert.equal(vm?.watchdog?.fired, 3);
  assert.equal(vm?.restarts, 2);
  assertCleanedUp(p);
});

test('poweroff: the VM has failed because its watchdog fired; reset: the same QEMU boots again, counted', async () => {
  const p = plan('  - name: po\n    watchdog: {timeout: 5, action: poweroff}\n  - name: rs\n    watchdog: {timeout: 5, action: reset}\n');
  const rec = new Rec();
  const { run, done, controller } = start(p, rec);
  await rec.waitFor(/^error: VM po was stopped: its watchdog fired \(timeout 5 s\)$/);
  await rec.waitFor(/^\[rs\] AVP-GUEST: READY$/, 3);
  await rec.waitFor(/^error: watchdog fired on VM rs: reset \(QEMU resets the guest\); QEMU action reset, 2 time\(s\) in this run$/);
  const snap = run.snapshot();
  const po = snap.vms.find((v) => v.name === 'po');
  const rs = snap.vms.find((v) => v.name === 'rs');
  assert.equal(po?.state, 'failed');
  assert.equal(po?.watchdog?.fired, 1);
  assert.equal(rs?.watchdog?.fired, 2);
  assert.equal(rs?.restarts, undefined, 'a reset is no restart');
  assert.equal(rs?.endedAt, undefined);
  controller.abort('SIGTERM');
  await done;
  assertCleanedUp(p);
});

test('balloon: a target within 64 MiB..memory is set over QMP and reported; others, and VMs without a balloon, are refused', async () => {
  const p = plan('  - name: b\n    balloon: {}\n  - name: n\n');
  const rec = new Rec();
  const { run, done, controller } = start(p, rec, { FIRE: '0' });
  await rec.waitFor(/^\[b\] AVP-GUEST: READY$/);
  assert.deepEqual(await run.balloon('b'), { vm: 'b', actual: 256 * 2 ** 20, memory: 256 * 2 ** 20 });
  assert.deepEqual(await run.balloon('b', 128 * 2 ** 20), { vm: 'b', actual: 128 * 2 ** 20, memory: 256 * 2 ** 20, target: 128 * 2 ** 20 });
  assert.ok(rec.lines.includes('info: VM b: balloon target 128 MiB of 256 MiB'));
  for (const bad of [32 * 2 ** 20, 512 * 2 ** 20, 1.5]) {
    await assert.rejects(run.balloon('b', bad), (e: unknown) => hasCode(e, 'CONTROL_REFUSED') && /must be from 64 MiB to its memory, 256 MiB/.test((e as Error).message));
  }
  await assert.rejects(run.balloon('n', 128 * 2 ** 20), (e: unknown) => hasCode(e, 'CONTROL_UNKNOWN_TARGET') && /VM n has no balloon/.test((e as Error).message));
  await assert.rejects(run.balloon('x'), (e: unknown) => hasCode(e, 'CONTROL_UNKNOWN_TARGET'));
  controller.abort('SIGTERM');
  await done;
  await assert.rejects(run.balloon('b'), (e: unknown) => hasCode(e, 'CONTROL_REFUSED') && /not running/.test((e as Error).message));
  assertCleanedUp(p);
});
