// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp switch` between two stock Linux 6.1 guests under QEMU 7.2 (software
 * emulation), each with its own virtio_net driver over vhost-user, plus (when this process may
 * create one) a host TAP uplink.
 *
 * The two guests boot once, run at the same time, and stay up for every check; each runs
 * `avp-net-agent`, which the test drives over the serial console (commands in, `avp-kv` results
 * out), so the guests coordinate through the host: B says it listens, then A sends.
 * 1. The switch MTU (1400) shows in each guest's `ip link`; static addresses; they ping each other
 *    (and the host through the uplink).
 * 2. 10 MiB from A to B over TCP, checksums equal.
 * 3. B's port is limited to 128 kB/s: while B sends 2 MiB to A, its rate measured from the
 *    switch's own counters and clock is within 10% of the limit (and the shaper did hold it back),
 *    while A moves 10 MiB to the host (or to B, without an uplink) unshaped.
 * 4. B is killed: A keeps working (its pings to the host go on; without an uplink its traffic
 *    keeps flowing into the switch), the switch keeps running.
 * The switch, both VMs and the TAP are gone afterwards, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { startVm, type QemuVm, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { KV_LINE } from '../platform/image/markers.js';
import { startSwitch, waitStats, type SwitchProcess, type SwitchStats } from './testing/switch-process.js';

const BOOT_MS = 300_000;
const XFER_MS = 600_000;
const MTU = 1400;
const RATE = 128_000;
const NET = `10.77.${20 + (process.pid % 200)}`;
const IP_A = `${NET}.1`;
const IP_B = `${NET}.2`;
const IP_HOST = `${NET}.254`;
const MAC_A = '52:54:00:77:00:0a';
const MAC_B = '52:54:00:77:00:0b';
const TAP = `avpe${process.pid % 100_000}`;

/** Why the uplink part cannot run here, or undefined when it can. */
function tapUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot create a TAP';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no ip(8)';
  return undefined;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/**
 * A guest's console as a stream of `avp-kv` results: `next(key)` resolves with the next value of
 * `key` not yet taken, whether it arrived before the call or after (background jobs in the
 * guest report in any order).
 */
class Console {
  readonly values = new Map<string, string[]>();
  readonly taken = new Map<string, number>();
  readonly #waiters = new Set<{ key: string; n: number; resolve: (v: string) => void }>();
  vm: QemuVm | undefined;
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  /** QemuVm's `echo` hook: sees every console line as it arrives. */
  readonly onLine = (line: string): void => {
    if (process.env['AVP_VM_ECHO']) process.stderr.write(`[${this.name}] ${line}\n`);
    const m = KV_LINE.exec(line) ?? /AVP-GUEST: (listening) (\d+)/.exec(line);
    if (m === null) return;
    const [key, value] = m[1] === 'listening' ? [`listening_${m[2]}`, 'yes'] : [m[1] ?? '', m[2] ?? ''];
    const list = this.values.get(key) ?? [];
    list.push(value);
    this.values.set(key, list);
    for (const w of [...this.#waiters]) {
      const v = w.key === key ? list[w.n] : undefined;
      if (v !== undefined) {
        this.#waiters.delete(w);
        w.resolve(v);
      }
    }
  };

  /** Sends one agent command. */
  send(cmd: string): void {
    this.vm?.write(`${cmd}\n`);
  }

  next(key: string, timeoutMs = XFER_MS): Promise<string> {
    const n = this.taken.get(key) ?? 0;
    this.taken.set(key, n + 1);
    const have = this.values.get(key)?.[n];
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`${this.name}: no KV ${key} (#${n + 1}) within ${timeoutMs} ms; console tail:\n${this.vm?.tail(40).join('\n') ?? ''}`));
      }, timeoutMs);
      const w = { key, n, resolve: (v: string) => (clearTimeout(timer), resolve(v)) };
      this.#waiters.add(w);
      void this.vm?.exited.then(() => {
        if (!this.#waiters.has(w)) return;
        this.#waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`${this.name}: QEMU exited while waiting for KV ${key}; tail:\n${this.vm?.tail(40).join('\n') ?? ''}`));
      });
    });
  }
}

let image: GuestImage;
let dir: string;
let statsFile: string;
let sw: SwitchProcess | undefined;
let tap: string | undefined;
const A = new Console('vm-a');
const B = new Console('vm-b');
const servers: Server[] = [];

function vmSpec(name: string, socket: string, mac: string, addr: string): VmSpec {
  const script = `avp-ifup eth0 ${addr}/24 || exit 1
avp-kv mtu "$(cat /sys/class/net/eth0/mtu)"
avp-kv link "$(ip link show eth0 | head -1)"
exec avp-net-agent
`;
  return {
    kernel: image.kernel,
    initrd: image.initramfs,
    cmdlineLimit: image.cmdlineLimit,
    name,
    append: [scriptParam(script)],
    devices: [vhostUserDevice('net', socket, { mac, mtu: MTU })],
  };
}

/** A TCP server on the host end of the uplink: resolves with the md5 and size of one upload. */
function hostSink(port: number): Promise<{ md5: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => {
      const h = createHash('md5');
      let bytes = 0;
      sock.on('data', (d: Buffer) => {
        h.update(d);
        bytes += d.length;
      });
      sock.on('end', () => {
        sock.end();
        resolve({ md5: h.digest('hex'), bytes });
      });
      sock.on('error', reject);
    });
    servers.push(server);
    server.on('error', reject);
    server.listen(port, IP_HOST);
  });
}

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-switch-e2e-'));
  statsFile = join(dir, 'stats.json');
  tap = tapUnavailable() === undefined ? TAP : undefined;
  sw = await startSwitch([
    '--port', `socket=${join(dir, 'a.sock')},name=a,mac=${MAC_A}`,
    '--port', `socket=${join(dir, 'b.sock')},name=b,mac=${MAC_B},rate=${RATE}`,
    '--mtu', String(MTU),
    '--stats-file', statsFile,
    '--stats-interval', '200',
    ...(tap === undefined ? [] : ['--uplink-tap', tap]),
  ]);
  if (tap !== undefined) {
    ip('addr', 'add', `${IP_HOST}/24`, 'dev', tap);
    ip('link', 'set', 'dev', tap, 'mtu', String(MTU), 'up');
  }
  // Both guests boot at the same time and stay up for every test.
  const [va, vb] = await Promise.all([
    startVm(vmSpec('avp-net-a', join(dir, 'a.sock'), MAC_A, IP_A), { echo: A.onLine }),
    startVm(vmSpec('avp-net-b', join(dir, 'b.sock'), MAC_B, IP_B), { echo: B.onLine }),
  ]);
  A.vm = va;
  B.vm = vb;
  await Promise.all([va.waitForLine(/AVP-GUEST: agent ready/, BOOT_MS), vb.waitForLine(/AVP-GUEST: agent ready/, BOOT_MS)]);
});

after(async () => {
  await Promise.all([A.vm?.kill(), B.vm?.kill()]);
  for (const s of servers) s.close();
  await sw?.stop();
  // The switch closed the TAP on exit, and a TAP it created goes away with it.
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('e2e switch: the switch MTU shows in both guests; they get addresses and ping each other (and the host)', async () => {
  for (const c of [A, B]) {
    assert.equal(await c.next('mtu'), String(MTU), `${c.name}: eth0 MTU is the switch MTU (host_mtu)`);
    assert.match(await c.next('link'), new RegExp(`eth0: <.*UP.*> mtu ${MTU} `), `${c.name}: ip link shows mtu ${MTU}`);
  }
  A.send(`ping ${IP_B}`);
  assert.equal(await A.next(`ping_${IP_B}`), 'ok');
  B.send(`ping ${IP_A}`);
  assert.equal(await B.next(`ping_${IP_A}`), 'ok');
  if (tap !== undefined) {
    A.send(`ping ${IP_HOST}`);
    assert.equal(await A.next(`ping_${IP_HOST}`), 'ok', 'A reaches the host through the TAP uplink');
  }
});

test('e2e switch: 10 MiB from A to B over TCP arrive with the same checksum', async () => {
  A.send('data /tmp/a 10');
  const md5 = await A.next('md5');
  B.send('listen 5001');
  await B.next('listening_5001');
  A.send(`send ${IP_B} 5001 /tmp/a`);
  assert.equal(await B.next('recv_5001'), `${md5} ${10 << 20}`);
  assert.equal(await A.next('sent_5001'), 'ok');
});

test('e2e switch: a rate-limited port never exceeds its limit (+10%) while the other port moves 10 MiB', async (t) => {
  B.send('data /tmp/b 2');
  const md5B = await B.next('md5');
  A.send('data /tmp/a 10');
  const md5A = await A.next('md5');
  // A's unshaped transfer: to the host through the uplink, or to B without one.
  let aDone: Promise<void>;
  if (tap !== undefined) {
    const sink = hostSink(5010);
    A.send(`send ${IP_HOST} 5010 /tmp/a`);
    aDone = sink.then((r) => assert.deepEqual(r, { md5: md5A, bytes: 10 << 20 }));
  } else {
    t.diagnostic(`no uplink (${tapUnavailable() ?? ''}): A sends to B instead of the host`);
    B.send('listen 5003');
    await B.next('listening_5003');
    A.send(`send ${IP_B} 5003 /tmp/a`);
    aDone = B.next('recv_5003').then((v) => assert.equal(v, `${md5A} ${10 << 20}`));
  }
  A.send('listen 5002');
  await A.next('listening_5002');
  const before = await waitStats(statsFile, () => true, 'stats');
  const base = before.ports['b']?.tx.bytes ?? 0;
  B.send(`send ${IP_A} 5002 /tmp/b`);
  // Measure on the switch's clock over the middle of the flow: from 300 kB in (past the burst and
  // TCP's slow start) to 1.3 MB in; 2 MiB take about 17 s at the limit.
  const bytesOf = (s: SwitchStats) => (s.ports['b']?.tx.bytes ?? 0) - base;
  const s0 = await waitStats(statsFile, (s) => bytesOf(s) >= 300_000, 'B has sent 300 kB', XFER_MS);
  const s1 = await waitStats(statsFile, (s) => bytesOf(s) >= bytesOf(s0) + 1_000_000, 'B has sent 1 MB more', XFER_MS);
  const dt = (s1.switch.clockMs ?? 0) - (s0.switch.clockMs ?? 0);
  const rate = ((bytesOf(s1) - bytesOf(s0)) * 1000) / dt;
  t.diagnostic(`B measured ${Math.round(rate)} B/s over ${Math.round(dt)} ms of the switch clock (limit ${RATE} B/s)`);
  // The requirement: the port cannot exceed its limit (10% tolerance). Below the limit the figure
  // measures the sender as much as the shaper: a TCG guest on a loaded 2-core machine does not always
  // keep its ring full (one CI run measured 107 kB/s). So: never above +10%, the shaper engaged in
  // the window, and the port was not starved (regression: the lower bound was ±10% and flaky).
  assert.ok(rate <= RATE * 1.1, `B's rate ${Math.round(rate)} B/s exceeds ${RATE} B/s by more than 10%`);
  assert.ok((s1.ports['b']?.shaping.throttled ?? 0) > (s0.ports['b']?.shaping.throttled ?? 0), 'the shaper held B back during the window');
  assert.ok(rate >= RATE * 0.5, `B's rate ${Math.round(rate)} B/s: the shaper starves the port (limit ${RATE})`);
  assert.equal(await A.next('recv_5002'), `${md5B} ${2 << 20}`);
  assert.equal(await B.next('sent_5002'), 'ok');
  await aDone;
  assert.equal(s1.ports['b']?.drops['rateLimit'], 0, 'back-pressure: nothing dropped');
});

test('e2e switch: killing VM B does not disturb A or the switch', async () => {
  assert.ok(sw !== undefined && B.vm !== undefined);
  const beforeKill = await waitStats(statsFile, (s) => s.ports['b']?.active === true, 'B active');
  if (tap !== undefined) {
    A.send(`pings ${IP_HOST}`);
    await A.next('pong');
  } else {
    A.send(`pings ${IP_B}`);
  }
  process.kill(B.vm.pid, 'SIGKILL');
  await B.vm.exited;
  await sw.waitLog(/"port":"b".*front-end disconnected/, 60_000);
  const afterKill = await waitStats(statsFile, (s) => s.ports['b']?.active === false, 'B inactive');
  if (tap !== undefined) {
    // Three more replies after B is gone: A's traffic still flows through the switch.
    const seen = A.values.get('pong')?.length ?? 0;
    for (let i = 0; i < seen + 3; i++) await A.next('pong', 60_000);
    A.send(`ping ${IP_HOST}`);
    assert.equal(await A.next(`ping_${IP_HOST}`), 'ok');
  } else {
    const txA = afterKill.ports['a']?.tx.frames ?? 0;
    await waitStats(statsFile, (s) => (s.ports['a']?.tx.frames ?? 0) >= txA + 3, 'A keeps sending');
  }
  const last = await waitStats(statsFile, () => true, 'stats');
  assert.equal(sw.child.exitCode, null, 'the switch is still running');
  assert.equal(last.ports['a']?.active, true, "A's port is still served");
  for (const [name, p] of Object.entries(last.ports)) {
    assert.equal(p.internalErrors, 0, `${name}: no internal errors`);
    assert.equal(p.drops['malformed'], 0, `${name}: Linux never sent a malformed frame`);
  }
  assert.ok((beforeKill.ports['a']?.rx.frames ?? 0) > 0);
});
