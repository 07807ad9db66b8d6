// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard's view of a run's devices (device-views.ts): screens and input of the planned gpu
 * and input devices, served by stand-in control sockets that record the requests they get, and a
 * CAN bus's candump log followed as its trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../manifest/load.js';
import { planPlatform } from '../manifest/plan.js';
import { BUS_LINES_PER_POLL, BUS_TAIL_LINES, CandumpTrace, evdevKeyOf, exposeDevices, touchStep } from './device-views.js';
import { RunExtensions } from './extensions.js';

/** A control socket at `path` answering each line with `answer(line)`, recording the lines. */
async function fakeControl(path: string, answer: (line: string) => Record<string, unknown>): Promise<{ lines: string[]; server: Server }> {
  const lines: string[] = [];
  const server = createServer((s) => {
    let text = '';
    s.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        lines.push(line);
        s.write(`${JSON.stringify(answer(line))}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { lines, server };
}

const MANIFEST = `
name: car
buses:
  - name: vehicle
vms:
  - name: hmi
    can: [{ bus: vehicle }]
    devices:
      - kind: gpu
        name: screen
        width: 800
        height: 480
      - kind: input
        name: kbd
      - kind: input
        name: touch
        type: touch
        width: 1600
        height: 960
  - name: ecu
    devices:
      - kind: rng
`;

function planOf(text: string, dir: string) {
  const r = parseManifest(text, { baseDir: dir, fileExists: () => true });
  assert.ok(r.model !== undefined, JSON.stringify(r.issues));
  return planPlatform(r.model, { runDir: join(dir, 'run'), image: { kernel: '/k', initramfs: '/i' } });
}

test('exposeDevices: a VM with a gpu shows its scanout at the planned size, pictures come from its control socket; input goes to its input devices as steps; a bus with a log is a trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-views-'));
  const servers: Server[] = [];
  const ext = new RunExtensions();
  let unexpose = (): void => {};
  t.after(() => {
    unexpose();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const plan = planOf(MANIFEST, dir);
  for (const d of plan.dirs) mkdirSync(d, { recursive: true });
  const hmi = join(dir, 'run', 'hmi');
  const png = Buffer.from('\x89PNG not really');
  let drawn = true;
  const gpu = await fakeControl(join(hmi, 'screen.ctl'), (line) => {
    if (!drawn) return { ok: false, error: 'scanout 0 shows nothing' };
    writeFileSync(join(hmi, 'screen-scanout0.png'), png);
    return line === 'screenshot 0' ? { ok: true, path: join(hmi, 'screen-scanout0.png'), width: 800, height: 480, frame: 3 } : { ok: false, error: 'no' };
  });
  const kbd = await fakeControl(join(hmi, 'kbd.ctl'), () => ({ ok: true, frames: 1 }));
  const touch = await fakeControl(join(hmi, 'touch.ctl'), () => ({ ok: true, frames: 1 }));
  servers.push(gpu.server, kbd.server, touch.server);

  unexpose = exposeDevices(plan, ext, { busPollMs: 20 });
  assert.deepEqual(ext.displays('hmi'), [{ id: 'screen', width: 800, height: 480, label: 'screen (scanout 0)' }]);
  assert.deepEqual(ext.displays('ecu'), []);
  assert.equal(ext.screens('ecu'), undefined);
  const screens = ext.screens('hmi');
  assert.ok(screens?.input !== undefined, 'the screens take input');

  // Two requests at once: one screenshot request, the same picture.
  const [a, b] = await Promise.all([screens.provider.screenshot('screen'), screens.provider.screenshot('screen')]);
  assert.deepEqual(a, png);
  assert.deepEqual(b, png);
  assert.deepEqual(gpu.lines, ['screenshot 0']);
  await assert.rejects(screens.provider.screenshot('nope'), { code: 'CONTROL_UNKNOWN_TARGET' });
  // The scanout shows nothing now (the VM went off): the last frame the back-end saved.
  drawn = false;
  await new Promise((r) => setTimeout(r, 250)); // past the reuse of the last picture
  writeFileSync(join(hmi, 'screen-scanout0.png'), 'last frame');
  assert.equal((await screens.provider.screenshot('screen')).toString(), 'last frame');
  assert.deepEqual(gpu.lines, ['screenshot 0', 'screenshot 0']);
  rmSync(join(hmi, 'screen-scanout0.png'));
  await new Promise((r) => setTimeout(r, 250));
  await assert.rejects(screens.provider.screenshot('screen'), { code: 'CONTROL_REQUEST_FAILED', message: /scanout 0 shows nothing/ });

  // A click: down then up, scaled from the display (800x480) to the touch device's axes (1600x960).
  await screens.input.send('screen', { type: 'touch', action: 'down', x: 400, y: 100 });
  await screens.input.send('screen', { type: 'touch', action: 'up', x: 400, y: 100 });
  assert.deepEqual(touch.lines, ['down 800,200', 'up']);
  await screens.input.send('screen', { type: 'key', action: 'down', code: 'KeyA' });
  await screens.input.send('screen', { type: 'key', action: 'up', code: 'KeyA' });
  assert.deepEqual(kbd.lines, ['press KEY_A', 'release KEY_A']);
  await assert.rejects(screens.input.send('screen', { type: 'key', action: 'down', code: 'Fn' }), { code: 'CONTROL_REFUSED', message: /no Linux key code for the key 'Fn'/ });
  await assert.rejects(screens.input.send('other', { type: 'touch', action: 'up', x: 0, y: 0 }), { code: 'CONTROL_UNKNOWN_TARGET' });

  // The bus: its candump log's lines, as they are written.
  assert.deepEqual(ext.buses(), [{ name: 'vehicle', kind: 'CAN' }]);
  const seen: string[] = [];
  const off = ext.onBusLine((bus, line) => seen.push(`${bus}: ${line}`));
  appendFileSync(join(dir, 'run', '_canbus', 'vehicle.candump'), '(1.000000) vehicle 100#5800\n(1.100000) vehicle 100#59');
  await waitFor(() => seen.length === 1);
  appendFileSync(join(dir, 'run', '_canbus', 'vehicle.candump'), '00\n');
  await waitFor(() => seen.length === 2);
  off();
  assert.deepEqual(seen, ['vehicle: (1.000000) vehicle 100#5800', 'vehicle: (1.100000) vehicle 100#5900']);
  assert.deepEqual(ext.bus('vehicle')?.recent(), ['(1.000000) vehicle 100#5800', '(1.100000) vehicle 100#5900']);

  unexpose();
  unexpose = () => {};
  assert.deepEqual(ext.buses(), []);
  assert.equal(ext.screens('hmi'), undefined);
});

test('a VM with a gpu and no input device: view-only screens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-views-'));
  try {
    const plan = planOf('name: p\nvms:\n  - name: a\n    devices:\n      - kind: gpu\n        scanouts: 2\n', dir);
    const ext = new RunExtensions();
    const off = exposeDevices(plan, ext);
    assert.deepEqual(
      ext.displays('a').map((d) => [d.id, d.width, d.height]),
      [
        ['gpu-0', 1280, 720],
        ['gpu-1', 1280, 720],
      ],
    );
    assert.equal(ext.screens('a')?.input, undefined);
    assert.deepEqual(ext.buses(), []);
    off();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('touchStep: display pixels to the device axes, clamped inside them', () => {
  assert.equal(touchStep({ type: 'touch', action: 'down', x: 0, y: 0 }, { width: 1024, height: 600 }, { width: 1024, height: 600 }), 'down 0,0');
  assert.equal(touchStep({ type: 'touch', action: 'move', x: 1023, y: 599 }, { width: 1024, height: 600 }, { width: 100, height: 50 }), 'move 99,49');
  assert.equal(touchStep({ type: 'touch', action: 'down', x: 5000, y: -3 }, { width: 1024, height: 600 }, { width: 1024, height: 600 }), 'down 1023,0');
  assert.equal(touchStep({ type: 'touch', action: 'up', x: 5, y: 5 }, { width: 10, height: 10 }, { width: 10, height: 10 }), 'up');
});

test('evdevKeyOf: KeyboardEvent.code to Linux key names; unknown codes have none', () => {
  const cases: Array<[string, string | undefined]> = [
    ['KeyA', 'KEY_A'],
    ['KeyZ', 'KEY_Z'],
    ['Digit0', 'KEY_0'],
    ['Numpad7', 'KEY_KP7'],
    ['F1', 'KEY_F1'],
    ['F12', 'KEY_F12'],
    ['Enter', 'KEY_ENTER'],
    ['ArrowUp', 'KEY_UP'],
    ['ShiftLeft', 'KEY_LEFTSHIFT'],
    ['Period', 'KEY_DOT'],
    ['F13', undefined],
    ['Keya', undefined],
    ['constructor', undefined],
    ['toString', undefined],
    ['', undefined],
  ];
  for (const [code, key] of cases) assert.equal(evdevKeyOf(code), key, code);
});

test('CandumpTrace: a burst shows its newest lines, the tail is bounded, a cut first line is dropped, a new log starts over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-trace-'));
  const file = join(dir, 'bus.candump');
  const trace = new CandumpTrace('b', file, 60_000);
  try {
    await trace.poll(); // no file yet: nothing
    assert.deepEqual(trace.recent(), []);
    const line = (i: number): string => `(${String(i).padStart(6, '0')}.000000) b 100#${(i % 256).toString(16).padStart(2, '0').toUpperCase()}`;
    const seen: string[] = [];
    trace.subscribe((l) => seen.push(l));
    writeFileSync(file, `${Array.from({ length: 1000 }, (_, i) => line(i)).join('\n')}\n`);
    await trace.poll();
    assert.equal(seen.length, BUS_LINES_PER_POLL);
    assert.equal(seen.at(-1), line(999));
    assert.equal(seen[0], line(1000 - BUS_LINES_PER_POLL));
    for (let round = 0; round < 3; round++) {
      appendFileSync(file, `${Array.from({ length: 100 }, (_, i) => line(1000 + round * 100 + i)).join('\n')}\n`);
      await trace.poll();
    }
    assert.equal(trace.recent().length, BUS_TAIL_LINES);
    assert.equal(trace.recent().at(-1), line(1299));
    // More than one read's worth at once: the newest part, whole lines only.
    appendFileSync(file, `${Array.from({ length: 5000 }, (_, i) => line(2000 + i)).join('\n')}\n`);
    seen.length = 0;
    await trace.poll();
    assert.equal(seen.at(-1), line(6999));
    for (const l of seen) assert.match(l, /^\(\d{6}\.000000\) b 100#[0-9A-F]{2}$/);
    // The log replaced by a shorter one: read from its start.
    writeFileSync(file, `${line(7)}\n`);
    seen.length = 0;
    await trace.poll();
    assert.deepEqual(seen, [line(7)]);
  } finally {
    trace.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'timed out');
}
