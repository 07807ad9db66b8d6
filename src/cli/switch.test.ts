// SPDX-License-Identifier: Apache-2.0
/**
 * `avp switch` and `avp serve net`: the command-line plan (a pure function), and the real program
 * driven over its sockets by two vhost-user front-ends: a frame crosses from port A to port B,
 * sockets are 0600 and removed on SIGTERM, SIGUSR1 logs the counters, the stats file is written,
 * bad input is one line and exit status 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetTestGuest } from '../vhost-user/testing/net-guest.js';
import { planSwitch, statsDocument } from './commands/switch.js';
import { AVP_BIN, startBackend } from './testing/backend-process.js';
import { readStats, startSwitch, waitStats } from './testing/switch-process.js';

test('switch plan: --socket-path ports take per-port options positionally; - keeps a default; values are parsed as the net kind options', () => {
  const plan = planSwitch({ socketPath: ['/s/a', '/s/b'], mac: ['52:54:00:00:00:01', '52:54:00:00:00:02'], rate: ['-', '1M:2000'], priority: ['7', '0'], mtu: '9000', uplinkTap: 'tap9' });
  assert.deepEqual(plan.ports, [
    { socketPath: '/s/a', name: 'port0', options: { switch: 'default', mac: '52:54:00:00:00:01', priority: 7, name: 'port0', mtu: 9000, uplinkTap: 'tap9' } },
    { socketPath: '/s/b', name: 'port1', options: { switch: 'default', mac: '52:54:00:00:00:02', rate: '1M:2000', priority: 0, name: 'port1', mtu: 9000, uplinkTap: 'tap9' } },
  ]);
  assert.equal(plan.statsIntervalMs, 1000);
});

test('switch plan: --port specs', () => {
  const plan = planSwitch({ port: ['socket=/s/a,name=cam,mac=52:54:00:00:00:01,rate=125k,burst=3000,rate-policy=drop,priority=3,link=down', 'socket=/s/b'], macAgeing: '60' });
  assert.deepEqual(plan.ports[0], {
    socketPath: '/s/a',
    name: 'cam',
    options: { switch: 'default', name: 'cam', mac: '52:54:00:00:00:01', rate: '125k', burst: '3000', ratePolicy: 'drop', priority: 3, link: 'down', macAgeing: 60 },
  });
  assert.deepEqual(plan.ports[1], { socketPath: '/s/b', name: 'port1', options: { switch: 'default', name: 'port1', macAgeing: 60 } });
});

test('switch plan: mistakes are named', () => {
  const bad: Array<[Parameters<typeof planSwitch>[0], RegExp]> = [
    [{}, /give at least one port/],
    [{ socketPath: ['/a'], port: ['socket=/b'] }, /not both/],
    [{ socketPath: ['/a', '/b'], mac: ['52:54:00:00:00:01'] }, /--mac was given 1 times for 2 ports/],
    [{ port: ['socket=/a'], rate: ['1M'] }, /--rate goes with --socket-path/],
    [{ port: ['mac=52:54:00:00:00:01'] }, /has no socket=PATH/],
    [{ port: ['socket=/a,speed=9'] }, /unknown key 'speed'/],
    [{ port: ['socket=/a,oops'] }, /'oops' is not key=value/],
    [{ socketPath: ['/a', '/a'] }, /given twice/],
    [{ socketPath: ['/a', '/b'], name: ['x', 'x'] }, /two ports are named x/],
    [{ socketPath: ['/a'], statsInterval: '5' }, /--stats-interval/],
  ];
  for (const [opts, re] of bad) assert.throws(() => planSwitch(opts), { code: 'CLI_USAGE', message: re });
});

test('switch stats document: the switch block once, ports without it', () => {
  const doc = statsDocument({ a: { device: 'net', switch: { mtu: 1500 } }, b: { device: 'net', switch: { mtu: 1500 } } }, new Date(0));
  assert.deepEqual(doc, { time: '1970-01-01T00:00:00.000Z', switch: { mtu: 1500 }, ports: { a: { device: 'net' }, b: { device: 'net' } } });
});

test('switch: bad input is one line on stderr and exit status 1; no socket is left behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  try {
    const run = (...args: string[]) => spawnSync(process.execPath, [AVP_BIN, 'switch', ...args], { encoding: 'utf8' });
    const none = run();
    assert.equal(none.status, 1);
    assert.equal(none.stderr, 'avp: switch: give at least one port (--socket-path PATH or --port socket=PATH,...)\n');
    const mtu = run('--socket-path', join(dir, 'a.sock'), '--mtu', '10');
    assert.equal(mtu.status, 1);
    assert.match(mtu.stderr, /^avp: switch: --mtu: expected an integer from 68 to 65535, got 10\n$/);
    const tap = run('--socket-path', join(dir, 'a.sock'), '--uplink-tap', 'bad/name');
    assert.equal(tap.status, 1);
    assert.match(tap.stderr, /^avp: switch: --uplink-tap: expected an interface name of 1-15 letters, digits, _ . or -, got "bad\/name"/);
    assert.equal(existsSync(join(dir, 'a.sock')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A minimal virtio-net guest (vhost-user/testing/net-guest.ts) with EVENT_IDX. */
class Guest extends NetTestGuest {
  constructor(socket: string) {
    super(socket, { eventIdx: true });
  }

  send(frame: Uint8Array): void {
    const used = this.transmit(frame, 20_000);
    assert.ok(used !== null, 'transmit completed');
    assert.equal(used.len, 0);
  }

  receive(): Uint8Array {
    assert.ok(this.fe.waitCall(this.rxFds.call, 20_000), 'a frame arrived');
    const u = this.rx.popUsed();
    assert.ok(u !== null);
    return this.mem.memory.read(u.token, u.len);
  }
}

function frame(dst: number, src: number): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0x52, 0x54, 0, 0, 0, dst], 0);
  f.set([0x52, 0x54, 0, 0, 0, src], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f.fill(0xab, 14);
  return f;
}

test('switch: two front-ends exchange a frame; 0600 sockets; SIGUSR1 logs stats; SIGTERM removes the sockets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  const stats = join(dir, 'stats.json');
  const sw = await startSwitch(['--port', `socket=${join(dir, 'a.sock')},name=a`, '--port', `socket=${join(dir, 'b.sock')},name=b`, '--stats-file', stats, '--stats-interval', '100']);
  const guests: Guest[] = [];
  try {
    assert.equal(statSync(join(dir, 'a.sock')).mode & 0o777, 0o600);
    const a = new Guest(join(dir, 'a.sock'));
    const b = new Guest(join(dir, 'b.sock'));
    guests.push(a, b);
    const f = frame(2, 1);
    a.send(f);
    const got = b.receive();
    assert.deepEqual([...got.subarray(0, 12)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], 'header: num_buffers 1');
    assert.deepEqual(got.subarray(12), f);
    const s = await waitStats(stats, (x) => x.ports['b']?.rx.frames === 1, 'b received one frame', 30_000);
    assert.equal(s.ports['a']?.tx.bytes, 64);
    sw.child.kill('SIGUSR1');
    await sw.waitLog(/"msg":"stats"/);
  } finally {
    for (const g of guests) g.fe.close();
    assert.equal(await sw.stop(), 0);
  }
  assert.equal(existsSync(join(dir, 'a.sock')), false);
  assert.equal(existsSync(join(dir, 'b.sock')), false);
  assert.ok(readStats(stats) !== undefined, 'the stats file stays for the user');
  rmSync(dir, { recursive: true, force: true });
});

test('serve net: one port, reachable through the same device kind', async () => {
  const b = await startBackend('net', ['--mac', '52:54:00:00:00:01', '--rate', '1M']);
  try {
    const g = new Guest(b.socket);
    g.send(frame(9, 1));
    g.fe.close();
    assert.equal(spawnSync(process.execPath, [AVP_BIN, 'serve', 'net', '--print-capabilities'], { encoding: 'utf8' }).stdout, '{"type":"net","features":["mac","mtu","rate","priority","uplink-tap"]}\n');
  } finally {
    await b.stop();
  }
});

test('switch --busy-poll-us: planned as microseconds (default 0: off); a value that is not a whole number in range is refused by name', () => {
  assert.equal(planSwitch({ socketPath: ['/tmp/a.sock'] }).busyPollUs, 0);
  assert.equal(planSwitch({ socketPath: ['/tmp/a.sock'], busyPollUs: '50' }).busyPollUs, 50);
  for (const bad of ['-1', '1.5', 'fast', '1000001', ''])
    assert.throws(() => planSwitch({ socketPath: ['/tmp/a.sock'], busyPollUs: bad }), (e: Error) => e.message.includes(`--busy-poll-us must be an integer from 0 to 1000000 (microseconds), got '${bad}'`), bad);
});

test('avp serve rng --busy-poll-us: a bad value fails before any socket is created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-busy-poll-cli-'));
  try {
    const sock = join(dir, 'rng.sock');
    const r = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--socket-path', sock, '--busy-poll-us', 'soon'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /serve rng: --busy-poll-us must be an integer from 0 to 1000000 \(microseconds\), got 'soon'/);
    assert.equal(existsSync(sock), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
