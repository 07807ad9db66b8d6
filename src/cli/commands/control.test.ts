// SPDX-License-Identifier: Apache-2.0
/**
 * `avp input` and `avp screenshot` as a user runs them against real back-end processes laid out
 * as `avp run` lays out a run (`<runDir>/<vm>/<device>.ctl`), without a guest: steps are routed to
 * the device that takes them (queued until a driver comes), refusals name each device's reason,
 * the newest run is found without --run-dir, and a screenshot of a display nothing drew on says
 * so. The guest side of both is in cli/display.e2e.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AVP_BIN, startBackend, type BackendProcess } from '../testing/backend-process.js';
import { controlRequest } from '../../platform/control.js';
import { stepsOf } from './control.js';

let cwd = '';
let runDir = '';
const backends: BackendProcess[] = [];

function avp(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AVP_BIN, ...args], { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

before(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'avp-control-'));
  // An older run with the same VM but no live sockets, and the run in use.
  mkdirSync(join(cwd, '.avp', 'runs', 'demo-old', 'hmi'), { recursive: true });
  runDir = join(cwd, '.avp', 'runs', 'demo-new');
  mkdirSync(join(runDir, 'hmi'), { recursive: true });
  utimesSync(join(cwd, '.avp', 'runs', 'demo-old'), new Date(1000), new Date(1000));
  const ctl = (n: string) => join(runDir, 'hmi', `${n}.ctl`);
  backends.push(await startBackend('input', ['--type', 'keyboard', '--control-socket', ctl('kbd')]));
  backends.push(await startBackend('input', ['--type', 'touch', '--control-socket', ctl('touch')]));
  backends.push(await startBackend('gpu', ['--control-socket', ctl('display')]));
});

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(cwd, { recursive: true, force: true });
});

test('stepsOf: one step as words, or several quoted steps', () => {
  assert.deepEqual(stepsOf(['key', 'KEY_ENTER']), ['key KEY_ENTER']);
  assert.deepEqual(stepsOf(['key KEY_A', ' touch 1,2 ']), ['key KEY_A', 'touch 1,2']);
  assert.deepEqual(stepsOf([]), []);
});

test('avp input: each step goes to the device that takes it, in the newest run', async () => {
  const r = await avp('input', 'hmi', 'key KEY_ENTER', 'touch 10,20');
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'hmi/kbd: key KEY_ENTER (2 frame(s), queued until the guest driver is ready)\nhmi/touch: touch 10,20 (2 frame(s), queued until the guest driver is ready)\n');
  assert.equal(r.status, 0);
  const touch = (await controlRequest(join(runDir, 'hmi', 'touch.ctl'), 'info'))['metrics'] as { pendingEvents: number };
  assert.equal(touch.pendingEvents, 6, 'ABS_X, ABS_Y, BTN_TOUCH, SYN; BTN_TOUCH, SYN');
});

test('avp input: a step no device takes fails with every reason; --device and --run-dir narrow the search', async () => {
  const bad = await avp('input', 'hmi', 'touch', '99999,1');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no input device of VM 'hmi' took 'touch 99999,1': kbd: .*no absolute position; touch: .*X from 0 to 1279/);
  const narrowed = await avp('input', 'hmi', '--device', 'touch', '--run-dir', runDir, 'key', 'KEY_A');
  assert.equal(narrowed.status, 1);
  assert.match(narrowed.stderr, /touch: .*has no key KEY_A/);
  const none = await avp('input', 'cluster', 'key', 'KEY_A');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no device of VM 'cluster' takes 'input' in the runs in .*is avp run running/);
});

test('avp screenshot: asks the display; a display nothing drew on says so', async () => {
  const r = await avp('screenshot', 'hmi');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /display\.ctl: scanout 0 shows nothing/);
  const bad = await avp('screenshot', 'hmi', '--scanout', '99');
  assert.match(bad.stderr, /--scanout must be a scanout number from 0 to 15/);
});
