// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: the per-VM watchdog (QEMU's i6300esb, fed by busybox `watchdog` in the built-in
 * image) and the balloon, with real QEMU guests under `runPlatform` (the runner of `avp run`).
 *
 * 1. restart-vm + balloon: the guest boots with its feeder running; the platform reclaims 64 MiB
 *    through the control socket (`balloon`, QMP `balloon`), and query-balloon's actual size comes
 *    to the target; the guest sees its memory shrink (virtio_balloon without deflate-on-oom takes
 *    the pages out of MemTotal, all 64 MiB of them) and then hangs its feeder (SIGKILL: no magic close, so the timer
 *    runs on). The runner reports "watchdog fired on VM wd: restart-vm", starts the VM again (a new
 *    QEMU), and it boots to a second READY. Two boots.
 * 2. reset and poweroff, side by side: each guest stops its feeder (SIGSTOP) right after READY.
 *    `reset`: the same QEMU resets the guest, which prints READY a second time (same pid); the
 *    status counts the firing. `poweroff`: QEMU ends, the VM has failed with the watchdog as its
 *    reason. Three boots.
 * Every run is aborted at the end, pass or fail; nothing of it is left (the runner's own cleanup).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage } from '../image/index.js';
import { ControlClient } from './control-socket.js';
import { planManifestFile } from './index.js';
import { PlatformRun, type RunReporter, type RunResult } from './supervisor.js';

const BOOT_MS = 240_000;
let dir = '';

before(async () => {
  await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-watchdog-e2e-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Collects what the runner reports, and waits for lines (console lines as `[vm] line`). */
class Collector implements RunReporter {
  readonly lines: string[] = [];
  /** Date.now() when each line arrived (for the record, never asserted on). */
  readonly times: number[] = [];
  readonly #waiters = new Set<{ re: RegExp; nth: number; resolve: () => void }>();

  console(vm: string, line: string): void {
    this.#add(`[${vm}] ${line}`);
  }
  info(message: string): void {
    this.#add(`[avp] ${message}`);
  }
  error(message: string): void {
    this.#add(`[avp] error: ${message}`);
  }

  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length;
  }

  /** Resolves once `nth` lines match `re`; rejects after `timeoutMs` with everything reported. */
  waitFor(re: RegExp, nth = 1, timeoutMs = BOOT_MS): Promise<void> {
    if (this.count(re) >= nth) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { re, nth, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no ${nth}. line matching ${re} within ${timeoutMs} ms; reported:\n${this.lines.join('\n')}`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }

  /** When the first line matching `re` arrived. */
  timeOf(re: RegExp): number | undefined {
    const i = this.lines.findIndex((l) => re.test(l));
    return i < 0 ? undefined : this.times[i];
  }

  #add(line: string): void {
    this.lines.push(line);
    this.times.push(Date.now());
    if (process.env['AVP_E2E_ECHO']) process.stderr.write(`  | ${line}\n`);
    for (const w of [...this.#waiters]) {
      if (this.count(w.re) >= w.nth) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }
}

async function startRun(name: string, manifest: string): Promise<{ run: PlatformRun; rec: Collector; done: Promise<RunResult>; abort: AbortController; runDir: string }> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, manifest);
  const runDir = join(dir, name);
  const { plan } = await planManifestFile(file, { runDir });
  const rec = new Collector();
  const abort = new AbortController();
  const run = new PlatformRun({ plan, reporter: rec, signal: abort.signal });
  const done = run.run();
  return { run, rec, done, abort, runDir };
}

function socketsIn(runDir: string): string[] {
  return readdirSync(runDir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.sock'));
}

function script(lines: string): string {
  return lines
    .trim()
    .split('\n')
    .map((l) => `        ${l}`)
    .join('\n');
}

test('e2e: restart-vm: a guest whose feeder dies is reported and started again; the balloon reclaims 64 MiB first', { timeout: 3 * BOOT_MS }, async (t) => {
  const { run, rec, done, abort, runDir } = await startRun(
    'restart',
    `name: wdrestart
vms:
  - name: wd
    memory: 256
    watchdog: {timeout: 10, action: restart-vm}
    balloon: {deflateOnOom: false, freePageReporting: true}
    boot:
      script: |
${script(`
total() { sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo; }
first=$(total)
avp-say feeder $(pidof watchdog) timeout $(cat /sys/class/watchdog/watchdog0/timeout) mem $first
while [ $(( first - $(total) )) -lt 65536 ]; do sleep 0.5; done
avp-say balloon seen $(total)
kill -KILL $(pidof watchdog)
avp-say feeder killed
sleep 3600
`)}
`,
  );
  try {
    await rec.waitFor(/^\[wd\] AVP-GUEST: feeder \d+ timeout 10 mem \d+/);
    const firstPid = run.snapshot().vms[0]?.pid;
    const client = await ControlClient.connect(join(runDir, 'control.sock'));
    try {
      const target = 192 * 2 ** 20;
      const set = await client.balloon('wd', target);
      assert.equal(set.memory, 256 * 2 ** 20);
      assert.equal(set.target, target);
      // The guest gives the pages up over a moment; query-balloon shows where it is.
      await rec.waitFor(/^\[wd\] AVP-GUEST: balloon seen \d+/, 1, 120_000);
      // QEMU learns the size from the guest's config write after each batch: ask until it agrees.
      const sizes: number[] = [];
      const deadline = Date.now() + 60_000;
      while (sizes.at(-1) !== target && Date.now() < deadline) {
        sizes.push((await client.balloon('wd')).actual);
        if (sizes.at(-1) !== target) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(sizes.at(-1), target, `query-balloon actual sizes seen: ${sizes.join(', ')}`);
      await assert.rejects(client.balloon('wd', 1 << 20), /balloon target for VM wd must be from 64 MiB to its memory, 256 MiB/);
      await assert.rejects(client.balloon('nope', target), /no VM 'nope'/);
    } finally {
      client.close();
    }
    await rec.waitFor(/^\[avp\] error: watchdog fired on VM wd: restart-vm/);
    await rec.waitFor(/^\[avp\] restarting VM wd after its watchdog fired \(restart 1 /);
    await rec.waitFor(/^\[wd\] AVP-GUEST: READY$/, 2);
    const vm = run.snapshot().vms[0];
    assert.equal(vm?.watchdog?.fired, 1);
    assert.equal(vm?.restarts, 1);
    assert.notEqual(vm?.pid, firstPid, 'a new QEMU runs the VM');
    assert.ok(vm?.state === 'booting' || vm?.state === 'ready', `state ${String(vm?.state)}`);
    const killed = rec.timeOf(/^\[wd\] AVP-GUEST: feeder killed/);
    const fired = rec.timeOf(/watchdog fired on VM wd/);
    if (killed !== undefined && fired !== undefined) t.diagnostic(`watchdog (timeout 10 s) fired ${((fired - killed) / 1000).toFixed(1)} s after the feeder was killed`);
  } finally {
    abort.abort('SIGTERM');
    await done;
  }
  assert.deepEqual(socketsIn(runDir), [], 'no socket is left (qmp.sock, control.sock)');
});

test('e2e: reset resets the guest in the same QEMU; poweroff ends the VM as failed; both are reported', { timeout: 3 * BOOT_MS }, async (t) => {
  const hang = script(`
avp-say feeder $(pidof watchdog)
kill -STOP $(pidof watchdog)
avp-say feeder stopped
sleep 3600
`);
  const { run, rec, done, abort, runDir } = await startRun(
    'reset',
    `name: wdreset
vms:
  - name: rs
    watchdog: {timeout: 8, action: reset}
    boot:
      script: |
${hang}
  - name: po
    watchdog: {timeout: 8, action: poweroff}
    boot:
      script: |
${hang}
`,
  );
  try {
    await rec.waitFor(/^\[avp\] error: watchdog fired on VM po: poweroff \(QEMU powers off\); QEMU action poweroff/);
    await rec.waitFor(/^\[avp\] error: VM po was stopped: its watchdog fired \(timeout 8 s\)/);
    await rec.waitFor(/^\[avp\] error: watchdog fired on VM rs: reset \(QEMU resets the guest\); QEMU action reset/);
    const firstPid = run.snapshot().vms.find((v) => v.name === 'rs')?.pid;
    await rec.waitFor(/^\[rs\] AVP-GUEST: READY$/, 2);
    const snap = run.snapshot();
    const rs = snap.vms.find((v) => v.name === 'rs');
    const po = snap.vms.find((v) => v.name === 'po');
    assert.equal(rs?.pid, firstPid, 'the same QEMU runs the reset guest');
    assert.ok((rs?.watchdog?.fired ?? 0) >= 1);
    assert.equal(rs?.endedAt, undefined);
    assert.equal(po?.state, 'failed');
    assert.equal(po?.watchdog?.fired, 1);
    assert.match(po?.reason ?? '', /watchdog fired/);
    for (const name of ['rs', 'po']) {
      const stopped = rec.timeOf(new RegExp(`^\\[${name}\\] AVP-GUEST: feeder stopped`));
      const fired = rec.timeOf(new RegExp(`watchdog fired on VM ${name}`));
      if (stopped !== undefined && fired !== undefined) t.diagnostic(`${name}: watchdog (timeout 8 s) fired ${((fired - stopped) / 1000).toFixed(1)} s after the feeder stopped`);
    }
  } finally {
    abort.abort('SIGTERM');
    await done;
  }
  assert.deepEqual(socketsIn(runDir), [], 'no socket is left');
});
