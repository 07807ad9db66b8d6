// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard page in headless Chromium (Debian's chromium via playwright-core), over a fake
 * RunControl (testing/fake-control.ts) so that what no back-end has yet can be shown: a VM with
 * a display that takes input. Checks that the page draws the VMs (one with its screen, one with
 * "no display on this VM"), the back-end's live chart following its counter, the supervisor's
 * verdicts on the buttons (a refused one disabled, its reason as tooltip), that a button click
 * reaches the run as a control request, that a click on the screen reaches the run's InputSink as
 * touch down and up at the clicked display pixel and a key press as key down and up, the bus
 * trace, and the end of the run. The real platform is in cli/ui.e2e.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Dashboard } from './server.js';
import { FakeControl } from './testing/fake-control.js';
import { browserMissing, launchBrowser, testOutputDir, type TestBrowser } from './testing/browser.js';

const missing = browserMissing();
let control: FakeControl;
let dash: Dashboard;
let browser: TestBrowser;

before(async () => {
  if (missing !== undefined) return;
  control = new FakeControl();
  control.extraVms = [{ name: 'infotainment', state: 'booting', pid: 6, startedAt: Date.now() - 5000, watchdog: { action: 'restart-vm', timeoutSeconds: 30, fired: 2, lastFiredAt: Date.now() - 1000 }, restarts: 2, backends: [], actions: { start: 'VM infotainment is already running (booting)', stop: null, restart: null }, displays: [], input: false }];
  dash = await Dashboard.start({ control, mode: 'in-process', intervalMs: 200 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await dash?.close();
});

test('the dashboard page in Chromium: VMs, screen with touch and keys, live chart, verdicts, actions, bus, end', { skip: missing, timeout: 180_000 }, async () => {
  const { page } = browser;
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(dash.url);

  // Both VMs; the one without a display says so.
  await page.locator('[data-vm="cluster"] .badge[data-state="ready"]').waitFor();
  await page.locator('[data-vm="infotainment"] .badge[data-state="booting"]').waitFor();
  // The watchdog: its action, timeout and firings, and the restarts it caused.
  await page.locator('[data-vm="infotainment"] .meta', { hasText: 'watchdog 30 s, restart-vm: fired 2 times · started again 2 times' }).waitFor();
  assert.equal(await page.locator('[data-vm="infotainment"] .screens .empty').isVisible(), true);
  assert.equal(await page.locator('[data-vm="infotainment"] .screens .empty').textContent(), 'no display on this VM');
  assert.equal(await page.locator('[data-vm="cluster"] .screens .empty').isVisible(), false);
  await page.locator('[data-console="cluster"]', { hasText: 'AVP-GUEST: ready' }).waitFor();

  // The verdicts: start refused with the supervisor's reason; a click on restart asks the run.
  const start = page.locator('[data-vm="cluster"] button[data-action="start"]');
  assert.equal(await start.isDisabled(), true);
  assert.equal(await start.getAttribute('title'), 'already running');
  await page.locator('[data-vm="cluster"] button[data-action="restart"]').click();
  await page.locator('#notice', { hasText: 'VM cluster restarted' }).waitFor();
  assert.deepEqual(control.acts.at(-1), { target: 'vm', name: 'cluster', action: 'restart' });

  // The chart follows the counter: IOPS shows the rate once the counter moves.
  const iops = page.locator('[data-backend="cluster/blk"] [data-series="iops"]');
  await iops.waitFor();
  control.blkRequests = 1000;
  // (The page's CSP forbids eval, so conditions are polled from here, not with waitForFunction.)
  for (let i = 0; (await iops.getAttribute('data-total')) !== '1002'; i++) {
    assert.ok(i < 600, 'the chart did not follow the counter within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match((await iops.locator('[data-value]').textContent()) ?? '', /^[\d.]+ k? ?req\/s$/);

  // A click on the screen: touch down and up at the display pixel under the pointer.
  const img = page.locator('[data-vm="cluster"] [data-display="0"] img');
  await img.waitFor();
  const box = await img.boundingBox();
  assert.ok(box !== null);
  control.inputs = [];
  await page.mouse.click(box.x + box.width * 0.25, box.y + box.height * 0.5);
  await page.keyboard.press('KeyA');
  for (let i = 0; i < 200 && control.inputs.length < 4; i++) await new Promise((r) => setTimeout(r, 25));
  const touches = control.inputs.filter(([, , e]) => e.type === 'touch');
  assert.deepEqual(
    touches.map(([vm, d, e]) => [vm, d, e.action]),
    [
      ['cluster', '0', 'down'],
      ['cluster', '0', 'up'],
    ],
  );
  for (const [, , e] of touches) {
    assert.ok(e.type === 'touch' && Math.abs(e.x - 200) <= 2 && Math.abs(e.y - 240) <= 2, `touch at ${JSON.stringify(e)}, expected about (200, 240) of 800×480`);
  }
  assert.deepEqual(
    control.inputs.filter(([, , e]) => e.type === 'key').map(([, , e]) => e),
    [
      { type: 'key', action: 'down', code: 'KeyA' },
      { type: 'key', action: 'up', code: 'KeyA' },
    ],
  );

  // The bus trace, live.
  await page.locator('[data-bus="body"]', { hasText: '123#00' }).waitFor();
  control.listener?.({ type: 'bus', bus: 'body', line: '7DF#0201050000000000' });
  await page.locator('[data-bus="body"]', { hasText: '7DF#0201050000000000' }).waitFor();
  await page.screenshot({ path: join(testOutputDir('ui'), 'dashboard-fake.png'), fullPage: true });

  // The end of the run: said, and the buttons disabled.
  dash.end('stopped by SIGTERM');
  await page.locator('#status', { hasText: 'ended' }).waitFor();
  await page.locator('#notice', { hasText: 'the run has ended: stopped by SIGTERM' }).waitFor();
  assert.equal(await page.locator('[data-vm="cluster"] button[data-action="stop"]').isDisabled(), true);
  assert.deepEqual(errors, [], 'no script error on the page');
});
