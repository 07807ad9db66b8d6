// SPDX-License-Identifier: Apache-2.0
/**
 * `avp canbus`: the command-line plan (a pure function), and the real program driven over its
 * sockets by two slcan peers: frames cross, the candump log is written, SIGUSR1 logs the counters
 * by node, the sockets are 0600 and removed on SIGTERM, bad input is one line and exit status 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CAN_EFF_FLAG } from '../can/index.js';
import { planCanbus } from './commands/canbus.js';
import { AVP_BIN, spawnAvp } from './testing/backend-process.js';

test('canbus plan: node specs with filters and rate limits; bus-wide options', () => {
  const plan = planCanbus({
    name: 'vehicle',
    node: ['socket=/s/a,name=cluster,receive=100:700+12345678:1FFFFFFF', 'socket=/s/b,send=400~700,rate=200:20'],
    bitrate: '250000',
    dataBitrate: '2000000',
    hostSocket: '/s/h',
    log: '/l/v.log',
    replay: '/t/speed.log',
    replayLoop: true,
    socketcan: 'vcan0',
  });
  assert.deepEqual(plan.config, {
    name: 'vehicle',
    bitrate: 250_000,
    dataBitrate: 2_000_000,
    nodes: [
      { name: 'cluster', socket: '/s/a', receive: [{ id: 0x100, mask: 0x700, invert: false }, { id: (0x12345678 | CAN_EFF_FLAG) >>> 0, mask: 0x1fffffff, invert: false }] },
      { name: 'node1', socket: '/s/b', send: [{ id: 0x400, mask: 0x700, invert: true }], rate: { framesPerSecond: 200, burst: 20 } },
    ],
    hostSocket: '/s/h',
    log: '/l/v.log',
    replay: { file: '/t/speed.log', loop: true, start: 'all-open' },
    socketcan: 'vcan0',
  });
  assert.equal(plan.statsIntervalMs, 1000);
});

test('canbus plan: mistakes are named', () => {
  const bad: Array<[Parameters<typeof planCanbus>[0], RegExp]> = [
    [{}, /at least one --node/],
    [{ node: ['name=x'] }, /has no socket=PATH/],
    [{ node: ['socket=/a,speed=9'] }, /'speed=9' is not one of socket=/],
    [{ node: ['socket=/a,name=a,name=b'] }, /name is given twice/],
    [{ node: ['socket=/a,receive=12G:7FF'] }, /receive: '12G:7FF' is not a CAN filter/],
    [{ node: ['socket=/a,rate=0'] }, /rate: expected frames per second/],
    [{ node: ['socket=/a,rate=10:0'] }, /burst is at least 1/],
    [{ node: ['socket=/a,name=bad name'] }, /name: expected/],
    [{ node: ['socket=/a', 'socket=/a'] }, /socket \/a is given twice/],
    [{ node: ['socket=/a,name=x', 'socket=/b,name=x'] }, /node name x is used twice/],
    [{ node: ['socket=/a,name=host1'] }, /reserved/],
    [{ node: ['socket=/a'], bitrate: '999' }, /--bitrate: expected an integer from 1000/],
    [{ node: ['socket=/a'], dataBitrate: 'fast' }, /--data-bitrate/],
    [{ node: ['socket=/a'], replayLoop: true }, /go with --replay FILE/],
    [{ node: ['socket=/a'], replay: '/t', replayStart: 'later' }, /--replay-start/],
    [{ node: ['socket=/a'], socketcan: 'a/b' }, /--socketcan/],
    [{ node: ['socket=/a'], statsInterval: '1' }, /--stats-interval/],
    [{ node: ['socket=/a'], name: '-x' }, /--name/],
  ];
  for (const [opts, re] of bad) assert.throws(() => planCanbus(opts), { code: 'CLI_USAGE', message: re });
});

test('avp canbus: two peers exchange a frame; SIGUSR1 counters by node; log written; sockets 0600 and removed on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-canbus-cli-'));
  const a = join(dir, 'a.sock');
  const b = join(dir, 'b.sock');
  const log = join(dir, 'bus.log');
  const p = await spawnAvp(['canbus', '--name', 'vehicle', '--node', `socket=${a},name=alpha`, '--node', `socket=${b},name=beta`, '--log', log], /"msg":"serving canbus vehicle/, { label: 'canbus' });
  try {
    assert.equal(statSync(a).mode & 0o777, 0o600);
    const pa = createConnection({ path: a });
    const pb = createConnection({ path: b });
    let got = '';
    pb.setEncoding('latin1').on('data', (d: string) => (got += d));
    pa.write('O\r');
    pb.write('O\r');
    await p.waitLog(/beta: channel open/);
    await p.waitLog(/alpha: channel open/);
    pa.write('t3212ABCD\r');
    for (let i = 0; i < 2000 && !got.includes('t3212ABCD\r'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(got, /t3212ABCD\r/);
    p.child.kill('SIGUSR1');
    const line = await p.waitLog(/"msg":"stats"/);
    const stats = (JSON.parse(line) as { stats: { ports: Record<string, { txFrames: number; rxFrames: number }>; bus: { frames: number } } }).stats;
    assert.equal(stats.ports['alpha']?.txFrames, 1);
    assert.equal(stats.ports['beta']?.rxFrames, 1);
    assert.equal(stats.bus.frames, 1);
    pa.destroy();
    pb.destroy();
  } finally {
    assert.equal(await p.stop(), 0);
  }
  assert.ok(!existsSync(a) && !existsSync(b), 'sockets removed');
  assert.match(readFileSync(log, 'utf8'), /\) vehicle 321#ABCD\n$/);
  rmSync(dir, { recursive: true, force: true });
});

test('avp canbus: bad input is one line, exit status 1, nothing left behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-canbus-bad-'));
  try {
    const r = spawnSync(process.execPath, [AVP_BIN, 'canbus', '--node', `socket=${join(dir, 'a.sock')},rate=fast`], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^avp: canbus: --node '.*': rate: expected frames per second/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const t = join(dir, 'trace.log');
    const r2 = spawnSync(process.execPath, [AVP_BIN, 'canbus', '--node', `socket=${join(dir, 'a.sock')}`, '--replay', t], { encoding: 'utf8' });
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /replay .*trace\.log: cannot read it/);
    assert.ok(!existsSync(join(dir, 'a.sock')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
