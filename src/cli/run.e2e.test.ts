// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp run` as a real process booting real QEMU guests (software emulation) against
 * AVP's back-ends.
 *
 * 1. `avp run examples/minimal.yaml --headless`: the guest uses its rng and blk, prints its
 *    ready line, the run exits 0, and afterwards no QEMU, no back-end and no socket of the run
 *    is left (pgrep -f on the run directory, which every one of them has on its command line).
 * 2. Two guests with back-end processes: `victim` reads its rng, `keeper` its blk disk, whose
 *    back-end has restart: on-failure. Killing victim's back-end is reported and victim stopped;
 *    killing keeper's restarts it on the same socket, QEMU reconnects, and keeper's reads go on.
 *    Then SIGTERM: the run stops everything and exits 143, leaving nothing behind.
 * 3. `avp run examples/cockpit.yaml --headless`: two guests on one switch (an `avp switch`
 *    process) ping each other and pass a vsock message (one `avp serve vsock` process for both);
 *    the cluster prints the vehicle speed replayed on the CAN bus (slcan on a virtio console port),
 *    and the infotainment VM plays the chime, which lands sample-exact in the run directory;
 *    the cluster reads its coolant temperature, fed from a signal trace, over I2C (lm75);
 *    the infotainment guest gets a tap from its touch panel's script, and each screen's last
 *    frame is left in the run directory as a PNG of its size.
 * Each test stops its avp run in every case, pass or fail; a VM boots in 10-40 s here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePng } from '../devices/gpu/index.js';
import { buildGuestImage } from '../platform/image/index.js';
import { AVP_BIN, processesOf } from './testing/backend-process.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BOOT_MS = 240_000;
let dir = '';

before(async () => {
  // Built (or taken from the cache) once here, so that no run below spends its time limit on it.
  await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-run-e2e-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface AvpRun {
  child: ChildProcess;
  out: string[];
  err: string[];
  exited: Promise<number | string>;
  /** The `nth` (default first) line of stdout or stderr matching `re`, waiting for it when need be. */
  waitFor(re: RegExp, timeoutMs?: number, nth?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after 60 s; then kills (by pid) anything of the run still alive. */
  stop(): Promise<void>;
}

function avpRun(runDir: string, args: string[]): AvpRun {
  const child = spawn(process.execPath, [AVP_BIN, 'run', ...args, '--run-dir', runDir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  const waiters = new Set<{ re: RegExp; nth: number; resolve: (l: string) => void }>();
  const count = (re: RegExp): number => [...out, ...err].filter((l) => re.test(l)).length;
  const feed = (into: string[]) => {
    let partial = '';
    return (chunk: string): void => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        into.push(l);
        if (process.env['AVP_E2E_ECHO']) process.stderr.write(`  | ${l}\n`);
        for (const w of [...waiters]) {
          if (w.re.test(l) && count(w.re) >= w.nth) {
            waiters.delete(w);
            w.resolve(l);
          }
        }
      }
    };
  };
  child.stdout?.setEncoding('utf8').on('data', feed(out));
  child.stderr?.setEncoding('utf8').on('data', feed(err));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const all = (): string => [...out, ...err].join('\n');
  return {
    child,
    out,
    err,
    exited,
    waitFor(re, timeoutMs = BOOT_MS, nth = 1) {
      const seen = [...out, ...err].filter((l) => re.test(l))[nth - 1];
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { re, nth, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${all()}`));
        }, timeoutMs);
        waiters.add(w);
        void exited.then((code) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`avp run exited (${code}) before printing ${re}; output:\n${all()}`));
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
      // Only if avp run itself failed to clean up: its QEMUs and back-ends, by pid.
      for (const pid of processesOf(runDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

function socketsIn(runDir: string): string[] {
  return readdirSync(runDir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.sock') || f.endsWith('.vsock'));
}

test('e2e: avp run examples/minimal.yaml --headless boots the guest to its ready line and leaves nothing behind', { timeout: BOOT_MS + 60_000 }, async () => {
  const runDir = join(dir, 'minimal');
  const run = avpRun(runDir, ['examples/minimal.yaml', '--headless', '--timeout', '300']);
  try {
    const code = await run.exited;
    const output = [...run.out, ...run.err].join('\n');
    assert.equal(code, 0, output);
    assert.ok(run.out.includes('[guest] rng: virtio_rng.0, 1024 random bytes read'), output);
    assert.ok(run.out.includes('[guest] disk: /dev/vda 64 MiB, serial AVP-MINIMAL'), output);
    assert.ok(run.out.includes('[guest] AVP-GUEST: minimal platform up'), output);
    assert.ok(run.err.includes('[avp] every VM is ready (1)'), output);
    assert.deepEqual(processesOf(runDir), [], 'no QEMU or back-end of the run is left');
    assert.deepEqual(socketsIn(runDir), [], 'no socket is left');
    assert.match(readFileSync(join(runDir, 'guest', 'console.log'), 'utf8'), /AVP-GUEST: minimal platform up/);
    assert.match(readFileSync(join(runDir, 'guest', 'rng.log'), 'utf8'), /front-end connected/);
    assert.equal(existsSync(join(runDir, 'guest', 'blk.img')), true);
  } finally {
    await run.stop();
  }
});

/** Every second, reads from `device` (bypassing the page cache) and says how many bytes it got. */
function ticks(read: string): string {
  return `i=0
while true; do
  i=$((i+1))
  avp-say tick $i $(${read} 2>/dev/null | wc -c)
  sleep 1
done
`;
}

function bootSection(ready: string, script: string): string {
  return `    boot:\n      ready: "${ready}"\n      script: |\n${script.split('\n').map((l) => `        ${l}`).join('\n')}\n`;
}

test('e2e: a killed back-end process stops its VM, or is restarted (restart: on-failure) and QEMU reconnects; SIGTERM cleans up', { timeout: 2 * BOOT_MS }, async () => {
  const runDir = join(dir, 'crash');
  const manifest = join(dir, 'crash.yaml');
  // keeper: a blk back-end process with restart: on-failure (QEMU 7.2 reconnects vhost-user-blk);
  // victim: an rng back-end process without restart.
  writeFileSync(
    manifest,
    `name: crash
vms:
  - name: keeper
${bootSection('AVP-GUEST: tick 1 4096', ticks('dd if=/dev/vda bs=4096 count=1 skip=$((i % 1000)) iflag=direct'))}    devices:
      - {kind: blk, size: 8M, isolation: process, restart: on-failure}
  - name: victim
${bootSection('AVP-GUEST: tick 1 16', ticks('dd if=/dev/hwrng bs=16 count=1'))}    devices:
      - {kind: rng, isolation: process}
`,
  );
  const run = avpRun(runDir, [manifest]);
  try {
    const pidOf = async (id: string): Promise<number> => Number(/\(process (\d+)\)/.exec(await run.waitFor(new RegExp(`^\\[avp\\] back-end ${id} (serving|restarted) \\(process \\d+\\)`)))?.[1]);
    const keeperPid = await pidOf('keeper/blk');
    const victimPid = await pidOf('victim/rng');
    await run.waitFor(/^\[keeper\] AVP-GUEST: tick \d+ 4096$/);
    await run.waitFor(/^\[victim\] AVP-GUEST: tick \d+ 16$/);
    assert.deepEqual(
      processesOf(runDir).filter((p) => p === keeperPid || p === victimPid).sort(),
      [keeperPid, victimPid].sort(),
      'the back-end processes show the run directory in pgrep -f',
    );

    // Without restart: reported, and the VM that used it is stopped.
    process.kill(victimPid, 'SIGKILL');
    await run.waitFor(new RegExp(`^\\[avp\\] error: back-end victim/rng \\(process ${victimPid}\\) exited unexpectedly \\(killed by SIGKILL\\)`));
    await run.waitFor(/^\[avp\] error: VM victim was stopped: its back-end victim\/rng failed/);

    // With restart: on-failure: a new process on the same socket; the guest gets bytes again.
    const keeperTick = /^\[keeper\] AVP-GUEST: tick \d+ 4096$/;
    const ticksBefore = run.out.filter((l) => keeperTick.test(l)).length;
    process.kill(keeperPid, 'SIGKILL');
    await run.waitFor(/^\[avp\] restarting back-end keeper\/blk \(restart 1 of at most 5 in 60 s\)/);
    const restarted = Number(/\(process (\d+)\)/.exec(await run.waitFor(/^\[avp\] back-end keeper\/blk restarted \(process \d+\)/))?.[1]);
    assert.notEqual(restarted, keeperPid);
    // Reads go on after the restart: QEMU reconnected and the guest's requests reach the new back-end.
    await run.waitFor(keeperTick, 120_000, ticksBefore + 3);

    // SIGTERM: everything stops; nothing is left.
    run.child.kill('SIGTERM');
    const code = await run.exited;
    assert.equal(code, 143, [...run.out, ...run.err].join('\n'));
    assert.ok(run.err.includes('[avp] stopped by SIGTERM'));
    assert.deepEqual(processesOf(runDir), [], 'no QEMU or back-end of the run is left');
    assert.deepEqual(socketsIn(runDir), [], 'no socket is left');
    assert.match(readFileSync(join(runDir, 'keeper', 'blk.log'), 'utf8'), /exited \(SIGKILL\)/);
  } finally {
    await run.stop();
  }
});

test('e2e: avp run examples/cockpit.yaml --headless: a ping over the switch, a vsock message, CAN speed, a chime, a coolant temperature over I2C, a tap on the touch panel, screenshots of both screens', { timeout: BOOT_MS + 60_000 }, async () => {
  const runDir = join(dir, 'cockpit');
  const run = avpRun(runDir, ['examples/cockpit.yaml', '--headless', '--timeout', '400']);
  try {
    const code = await run.exited;
    const output = [...run.out, ...run.err].join('\n');
    assert.equal(code, 0, output);
    assert.ok(run.out.includes('[infotainment] 3 packets transmitted, 3 packets received, 0% packet loss'), output);
    assert.ok(run.out.includes('[infotainment] AVP-GUEST: infotainment sent speed=88'), output);
    assert.ok(run.out.includes('[cluster] AVP-GUEST: cluster got: speed=88'), output);
    // The replayed trace ramps 80 to 96 km/h and back; the cluster read one of its frames over CAN.
    const kmh = Number(/^\[cluster\] AVP-GUEST: cluster speed from CAN: (\d+) km\/h$/m.exec(output)?.[1]);
    assert.ok(kmh >= 80 && kmh <= 96, `cluster speed from CAN: ${kmh}\n${output}`);
    assert.ok(run.out.includes('[infotainment] AVP-GUEST: infotainment played the chime'), output);
    assert.ok(run.err.some((l) => /^\[avp\] back-end canbus\/vehicle serving \(thread\)$/.test(l)), output);
    assert.match(readFileSync(join(runDir, '_canbus', 'vehicle.candump'), 'utf8'), /^\(\d+\.\d{6}\) vehicle 100#[0-9A-F]{2}00$/m);
    // The chime the guest played is in the run directory, sample for sample (aplay may pad with silence).
    const chime = readFileSync(join(REPO, 'examples', 'sounds', 'chime.wav')).subarray(44);
    const played = readFileSync(join(runDir, 'chime.wav'));
    assert.ok(played.length - 44 >= chime.length, `chime.wav holds ${played.length - 44} bytes of ${chime.length}`);
    assert.ok(played.subarray(44, 44 + chime.length).equals(chime), 'the chime arrived sample-exact');
    assert.ok(played.subarray(44 + chime.length).every((b) => b === 0));
    assert.ok(run.out.includes('[cluster] AVP-GUEST: cluster coolant: 87.5 C'), output);
    assert.ok(run.out.some((l) => /^\[infotainment\] AVP-GUEST: infotainment touched at x=(200|800)$/.test(l)), output);
    for (const [vm, w, h] of [['cluster', 1280, 480], ['infotainment', 1024, 600]] as const) {
      const png = decodePng(readFileSync(join(runDir, vm, 'screen-scanout0.png')));
      assert.deepEqual([png.width, png.height], [w, h], `${vm}'s last frame`);
    }
    assert.ok(run.err.some((l) => /^\[avp\] back-end switch\/backbone serving \(process \d+\)$/.test(l)), output);
    assert.ok(run.err.some((l) => /^\[avp\] back-end vsock\/cluster\+infotainment serving \(process \d+\)$/.test(l)), output);
    assert.deepEqual(processesOf(runDir), [], 'no QEMU or back-end of the run is left');
    assert.deepEqual(socketsIn(runDir), [], 'no socket is left');
  } finally {
    await run.stop();
  }
});
