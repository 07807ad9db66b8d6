// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp run examples/cockpit.yaml --ui` (two real QEMU guests on an `avp switch`
 * process, vsock between them) and its dashboard in headless Chromium (Debian's chromium through
 * playwright-core). The page loads from the printed address and shows both VMs; the switch's
 * counters move on the page while the guests ping each other; both VMs' screens show pictures
 * with more than one colour (from the gpu back-ends); a click on the infotainment screen reaches
 * its guest as a touch (its script prints the position of each new tap); the CAN bus trace shows
 * the replayed vehicle-speed frames (100#..); a screenshot of the page and the last picture of
 * each screen are saved in the test output folder (AVP_TEST_OUTPUT, default
 * .cache/test-output/ui/: cockpit.png, screen-cluster.png, screen-infotainment.png); a
 * restart of the switch from the page is carried out (a new process, QEMU reconnects) and shown;
 * a back-end with restart: no cannot be restarted (its button disabled with the reason); a VM
 * that has powered off is started again from the page; requests without the token are refused.
 * `avp ui RUNDIR` attaches to the same run. Then SIGTERM: nothing of the run is left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePng } from '../devices/gpu/index.js';
import { buildGuestImage } from '../platform/image/index.js';
import { browserMissing, launchBrowser, testOutputDir, type TestBrowser } from '../ui/testing/browser.js';
import { AVP_BIN, processesOf } from './testing/backend-process.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BOOT_MS = 240_000;
const missing = browserMissing();
let dir = '';

before(async () => {
  if (missing !== undefined) return;
  await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-ui-e2e-'));
});

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** An avp process whose output lines are kept and can be waited for. */
interface Proc {
  child: ChildProcess;
  lines: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

function avp(args: string[]): Proc {
  const child = spawn(process.execPath, [AVP_BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (process.env['AVP_E2E_ECHO']) for (const l of parts) process.stderr.write(`  | ${l}\n`);
      for (const w of [...waiters]) w();
    });
  }
  return {
    child,
    lines,
    waitFor(re, timeoutMs = BOOT_MS) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const l of lines) {
            const m = re.exec(l);
            if (m !== null) return done(() => resolve(m));
          }
          if (child.exitCode !== null || child.signalCode !== null) done(() => reject(new Error(`avp ${args[0]} exited before printing ${re}:\n${lines.join('\n')}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join('\n')}`))), timeoutMs);
        const done = (f: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        void exited.then(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** How many colours a PNG has, counting up to `max`. */
function colours(png: Buffer, max = 2): number {
  const { rgba } = decodePng(png);
  const seen = new Set<number>();
  for (let i = 0; i + 3 < rgba.length && seen.size < max; i += 4) seen.add(rgba.readUInt32BE(i));
  return seen.size;
}

/** Polls `cond` every 250 ms until it holds. @throws after `timeoutMs` */
async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

test('e2e: avp run examples/cockpit.yaml --ui: the dashboard in Chromium shows both VMs, live counters, both screens, a click reaching the guest as a touch, the CAN trace; restarts the switch, starts a VM again; no token, no access', { skip: missing, timeout: 3 * BOOT_MS }, async () => {
  const runDir = join(dir, 'cockpit');
  const run = avp(['run', 'examples/cockpit.yaml', '--ui', '--run-dir', runDir, '--timeout', '900']);
  let browser: TestBrowser | undefined;
  let attached: Proc | undefined;
  let passed = false;
  try {
    const url = (await run.waitFor(/^\[avp\] dashboard: (http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/)$/))[1] ?? '';
    const origin = new URL(url).origin;

    // No token, a wrong one: refused, page and API alike.
    for (const path of ['/', '/api/snapshot', `/${'A'.repeat(43)}/`, `/${'A'.repeat(43)}/api/snapshot`]) assert.equal(await status(`${origin}${path}`), 403, path);

    browser = await launchBrowser();
    const { page } = browser;
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // The screens' pictures as the page gets them: the last one of each VM with more than one colour.
    const pictures = new Map<string, Buffer>();
    page.on('response', (res) => {
      const m = /\/api\/screens\/([^/]+)\/[^/]+\.png\b/.exec(res.url());
      if (m === null || res.status() !== 200) return;
      void res.body().then(
        (png) => {
          if (colours(png) > 1) pictures.set(decodeURIComponent(m[1] ?? ''), png);
        },
        () => {}, // the page went on before the body was read
      );
    });
    await page.goto(url);
    await page.locator('[data-vm="cluster"]').waitFor({ timeout: BOOT_MS });
    await page.locator('[data-vm="infotainment"]').waitFor({ timeout: BOOT_MS });

    // A click on the infotainment screen (its middle: x 512 of 1024) reaches the guest as a touch:
    // its script prints each tap at a new position (the input script taps at x 200 and 800).
    // Clicked until that line comes: before the guest's reader runs, a tap reaches no one.
    const screen = page.locator('[data-screens="infotainment"] [data-display="screen"] img');
    await screen.waitFor({ timeout: BOOT_MS });
    const infoConsole = page.locator('[data-console="infotainment"]');
    const tappedAt = async (): Promise<number | undefined> => {
      const xs = [...((await infoConsole.textContent()) ?? '').matchAll(/AVP-GUEST: infotainment touched at x=(\d+)/g)].map((m) => Number(m[1]));
      return xs.find((x) => x !== 200 && x !== 800);
    };
    const tapped = until(
      'a click on the infotainment screen to reach its guest',
      async () => {
        if ((await tappedAt()) !== undefined) return true;
        const box = await screen.boundingBox();
        if (box === null) return false;
        await screen.click({ position: { x: box.width / 2, y: box.height / 2 } });
        await new Promise((r) => setTimeout(r, 750));
        return (await tappedAt()) !== undefined;
      },
      BOOT_MS,
    );
    tapped.catch(() => {}); // awaited below; a failure before that must not be an unhandled rejection

    // Counters move: the switch's ports carry the guests' pings (the page got 0 or nothing first).
    const txTotal = async (): Promise<number> => Number((await page.locator('[data-backend="switch/backbone"] [data-port="infotainment/net"] [data-series="txFrames"]').getAttribute('data-total', { timeout: BOOT_MS })) ?? '0');
    const first = await txTotal();
    await until('the switch counters to move on the page', async () => (await txTotal()) > first, BOOT_MS);
    await tapped;
    const x = await tappedAt();
    assert.ok(x !== undefined && Math.abs(x - 512) <= 1, `the guest read the click at x=${String(x)} (clicked at the middle, 512)`);
    await page.locator('[data-console="infotainment"]', { hasText: 'AVP-GUEST: infotainment sent speed=88' }).waitFor({ timeout: BOOT_MS });
    await page.locator('[data-console="cluster"]', { hasText: 'AVP-GUEST: cluster got: speed=88' }).waitFor({ timeout: BOOT_MS });

    // The screens showed pictures (not one flat colour) from both gpu back-ends.
    await until('pictures with more than one colour on both screens', () => Promise.resolve(pictures.has('cluster') && pictures.has('infotainment')), BOOT_MS);
    for (const [vm, png] of pictures) writeFileSync(join(testOutputDir('ui'), `screen-${vm}.png`), png);
    // The CAN bus trace: the replayed vehicle-speed frames, as the candump log has them.
    await page.locator('[data-bus="vehicle"]', { hasText: /\(\d+\.\d{6}\) vehicle 100#[0-9A-F]{2,16}/ }).waitFor({ timeout: BOOT_MS });
    await page.screenshot({ path: join(testOutputDir('ui'), 'cockpit.png'), fullPage: true });

    // restart: no → the button is disabled and says why.
    const rngRestart = page.locator('[data-backend="cluster/rng"] button[data-action="restart"]');
    assert.equal(await rngRestart.isDisabled(), true);
    assert.match((await rngRestart.getAttribute('title')) ?? '', /has restart: no/);

    // The switch (restart: on-failure): restarted from the page, a new process, shown running.
    const pidOf = async (): Promise<string> => /process (\d+)/.exec((await page.locator('[data-backend="switch/backbone"] .meta').textContent()) ?? '')?.[1] ?? '';
    const before = await pidOf();
    assert.match(before, /^\d+$/);
    await page.locator('[data-backend="switch/backbone"] button[data-action="restart"]').click();
    await page.locator('#notice', { hasText: /^back-end switch\/backbone serving \(process \d+\)$/ }).waitFor({ timeout: 60_000 });
    await run.waitFor(/^\[avp\] back-end switch\/backbone started on request \(process \d+\); QEMU reconnects/, 60_000);
    // Running again, with another pid than before (the page redraws every second).
    const badge = page.locator('[data-backend="switch/backbone"] .badge');
    await until('the switch to run again in another process', async () => (await badge.getAttribute('data-state')) === 'running' && /^\d+$/.test(await pidOf()) && (await pidOf()) !== before, 60_000);
    assert.notEqual(await pidOf(), before);
    await page.locator('#log', { hasText: 'back-end switch/backbone stopped on request' }).waitFor();

    // The guests power off after their exchange; the run stays up, and a VM starts again from the page.
    await page.locator('[data-vm="cluster"] .badge[data-state="exited"]').waitFor({ timeout: BOOT_MS });
    await page.locator('[data-vm="cluster"] button[data-action="start"]:not([disabled])').click();
    await page.locator('#notice', { hasText: /^VM cluster started \(QEMU pid \d+\)$/ }).waitFor({ timeout: 60_000 });
    await page.locator('[data-vm="cluster"] .badge[data-state="booting"]').waitFor({ timeout: 60_000 });

    // avp ui attaches to the same run through its control socket, with a token of its own.
    attached = avp(['ui', runDir]);
    const url2 = (await attached.waitFor(/^(http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/)$/, 60_000))[1] ?? '';
    await page.goto(url2);
    await page.locator('[data-vm="cluster"] .badge[data-state="booting"]').waitFor({ timeout: 60_000 });
    await page.locator('#mode', { hasText: 'attached to its control socket' }).waitFor();
    assert.equal(await status(`${new URL(url2).origin}/`), 403);
    assert.deepEqual(errors, [], 'no script error on the page');
    passed = true;
  } finally {
    // On a failure, what the run printed (guest consoles included) says why: a page locator cannot.
    if (!passed) process.stderr.write(`avp run printed (last 300 lines):\n${run.lines.slice(-300).join('\n')}\n`);
    await browser?.close();
    await attached?.stop();
    await run.stop();
    for (const pid of processesOf(runDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  assert.deepEqual(processesOf(runDir), [], 'no QEMU or back-end of the run is left');
  const sockets = readdirSync(runDir, { recursive: true }).map(String).filter((f) => f.endsWith('.sock') || f.endsWith('.vsock'));
  assert.deepEqual(sockets, [], 'no socket is left (control.sock included)');
});
