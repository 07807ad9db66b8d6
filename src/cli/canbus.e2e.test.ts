// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: two stock Linux 6.12 guests under QEMU 10 on one `avp canbus` process, each joined
 * through the standard slcan way: a QEMU virtio console port (virtio-serial-pci + virtconsole with
 * a socket chardev to its bus node), in the guest `slcand -o -s1 /dev/hvc0 can0`, the kernel's
 * slcan line discipline, SocketCAN `can0`, can-utils `cansend`/`candump`/`cangen`. The test
 * process joins the bus too, through the bus's host socket, to pace the phases ("go" frames).
 *
 * 1. Exchange: after go 1, each guest sends five frames; each receives the other's five.
 * 2. Replay: a looped candump trace (the bus's replay node) reaches both guests, in trace order.
 * 3. Priority under load: after go 2, alpha floods the 20 kbit/s bus with cangen (ID 0x400) far
 *    faster than it can carry; beta, once it sees the flood, sends twenty ID 0x050 frames. The bus's
 *    counters show beta's frames waited at most about two frame times (the frame on the wire, and a
 *    replayed frame that outranks beta's lower-priority frames) while
 *    alpha's waited for many; the bus's candump log has every frame; both guests got each other's.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canFrame, frameTimeUs } from '../can/index.js';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { startVm, type QemuVm, type VmSpec } from '../platform/qemu.js';
import { spawnAvp, type AvpProcess } from './testing/backend-process.js';

const BOOT_MS = 400_000;
const BITRATE = 20_000;
/** The replayed vehicle-speed trace: four frames, 200 ms apart, looped. */
const TRACE = ['100#0A00', '100#0B00', '100#0C00', '100#0D00'];

let image: GuestImage;
let dir: string;
let bus: AvpProcess | undefined;
const vms: QemuVm[] = [];
let host: Socket | undefined;

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-can-e2e-'));
});

after(async () => {
  host?.destroy();
  await Promise.all(vms.map((v) => v.kill()));
  await bus?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** slcan over the virtio console, can0 up, every frame captured from then on. */
const SETUP = `avp-wait /dev/hvc0 120||exit 1
slcand -o -s1 /dev/hvc0 can0||exit 1
# A deep queue: alpha's flood must reach the bus, not be dropped in the guest (slcan's default is 10).
n=0;until ip link set can0 qlen 1000 up 2>/dev/null;do n=$((n+1));[ $n -lt 100 ]||exit 1;sleep .2;done
candump -L can0 >/tmp/c &
w(){ avp-wait-match /tmp/c "$1" 300||{ avp-kv stuck "$1: $(wc -l </tmp/c) frames captured, the last $(tail -1 /tmp/c|cut -d' ' -f3)";exit $2;};}
# ready: sends a ready frame until this guest's own capture shows it (candump is capturing); the
# host sends "go" only when it heard both guests' ready frames.
ready(){ n=0;until grep -q " $1" /tmp/c;do n=$((n+1));[ $n -lt 1200 ]||exit 9;cansend can0 $1;sleep .5;done;}
# r: once eight replayed frames were captured (can0 may come up mid-loop), report them.
r(){ n=0;until [ "$(grep -c ' 100#' /tmp/c)" -ge 8 ];do n=$((n+1));[ $n -lt 3000 ]||exit 8;sleep .2;done
avp-kv replay "$(grep ' 100#' /tmp/c|head -8|cut -d' ' -f3|tr '\\n' ,)";}
`;

const ALPHA = `${SETUP}ready 7F1#01
w ' 7FF#01' 2
for i in 1 2 3 4 5;do cansend can0 2A$i#A$i;done
w ' 2B5#B5' 3
avp-kv peer "$(grep ' 2B[1-5]#' /tmp/c|cut -d' ' -f3|tr '\\n' ,)"
w ' 100#0D00' 4
r
w ' 7FF#02' 5
cangen can0 -I 400 -L 8 -D i -g 0 -n 300 -i
cansend can0 7FE#AA
w ' 7FD#BB' 6
avp-kv high "$(grep -c ' 050#' /tmp/c)"
`;

const BETA = `${SETUP}ready 7F2#01
w ' 7FF#01' 2
for i in 1 2 3 4 5;do cansend can0 2B$i#B$i;done
w ' 2A5#A5' 3
avp-kv peer "$(grep ' 2A[1-5]#' /tmp/c|cut -d' ' -f3|tr '\\n' ,)"
w ' 100#0D00' 4
r
w ' 7FF#02' 5
w ' 400#' 6
for i in $(seq 10 29);do cansend can0 050#$i;done
w ' 7FE#AA' 7
cansend can0 7FD#BB
avp-kv low "$(grep -c ' 400#' /tmp/c)"
`;

function vm(socket: string, script: string, name: string): VmSpec {
  return {
    kernel: image.kernel,
    initrd: image.initramfs,
    cmdlineLimit: image.cmdlineLimit,
    name,
    devices: [{ kind: 'virtio-serial', ports: [{ socket, name: 'avp.can.vehicle', console: true }] }],
    append: [scriptParam(script)],
  };
}

interface NodeStats {
  txFrames: number;
  rxFrames: number;
  maxWaitUs: number;
  ackErrors: number;
}

function readStats(file: string): { bus: { frames: number }; ports: Record<string, NodeStats> } | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { bus: { frames: number }; ports: Record<string, NodeStats> };
  } catch {
    return undefined; // being renamed into place
  }
}

/** Sends `line` on the bus every 500 ms until `done` resolves. */
async function repeat(line: string, done: Promise<unknown>): Promise<void> {
  let over = false;
  void done.finally(() => (over = true));
  while (!over) {
    host?.write(line);
    await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
  }
}

test('e2e: two Linux guests on the AVP CAN bus over slcan: exchange, replay, priority under load', async () => {
  const a = join(dir, 'alpha.sock');
  const b = join(dir, 'beta.sock');
  const hostSock = join(dir, 'host.sock');
  const log = join(dir, 'vehicle.candump');
  const stats = join(dir, 'stats.json');
  const trace = join(dir, 'speed.candump');
  writeFileSync(trace, TRACE.map((f, i) => `(1700000000.${String(i * 200_000).padStart(6, '0')}) can0 ${f}\n`).join(''));
  bus = await spawnAvp(
    ['canbus', '--name', 'vehicle', '--bitrate', String(BITRATE), '--node', `socket=${a},name=alpha`, '--node', `socket=${b},name=beta`, '--host-socket', hostSock, '--log', log, '--replay', trace, '--replay-loop', '--stats-file', stats, '--stats-interval', '200'],
    /"msg":"serving canbus vehicle/,
    { label: 'canbus', echoEnv: 'AVP_E2E_ECHO' },
  );
  host = createConnection({ path: hostSock });
  // The host node hears everything; it paces the guests: "go" only once both capture (their ready
  // frames, 7F1#01 and 7F2#01 in slcan), so neither misses the other's first frames.
  const heard = new Set<string>();
  let heardText = '';
  const bothReady = new Promise<void>((resolve) => {
    host?.on('data', (d: Buffer) => {
      if (heard.size === 2) return;
      heardText = (heardText + d.toString('latin1')).slice(-64);
      for (const r of ['t7F1101\r', 't7F2101\r']) if (heardText.includes(r)) heard.add(r);
      if (heard.size === 2) resolve();
    });
  });
  const alpha = await startVm(vm(a, ALPHA, 'avp-can-alpha'));
  vms.push(alpha);
  const beta = await startVm(vm(b, BETA, 'avp-can-beta'));
  vms.push(beta);

  // A phase that does not end says where both guests and the bus are.
  const explained = async (phase: string, p: Promise<unknown>): Promise<void> => {
    try {
      await p;
    } catch (e: unknown) {
      const logTail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-6).join('\n') : '(no log)';
      throw new Error(
        `${phase}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\nalpha:\n${alpha.tail().join('\n')}\nbeta:\n${beta.tail().join('\n')}\nbus stats: ${JSON.stringify(readStats(stats)?.ports)}\nbus log tail:\n${logTail}`,
      );
    }
  };
  // Phase 0: both guests capture (their ready frames reached the host); a guest that ends or dies first fails the test at once.
  let readyTimer: NodeJS.Timeout | undefined;
  const ended = (v: QemuVm, who: string): Promise<never> => {
    const p = v.waitForLine(/AVP-GUEST: EXIT \d+/, BOOT_MS).then((m) => Promise.reject(new Error(`${who} ended before both guests were ready: ${m[0]}`)));
    p.catch(() => {}); // after phase 0 the guests end by design: only the race below reads this
    return p;
  };
  await explained(
    'phase 0 (ready)',
    Promise.race([
      bothReady,
      ended(alpha, 'alpha'),
      ended(beta, 'beta'),
      new Promise((_, reject) => (readyTimer = setTimeout(() => reject(new Error(`the guests' ready frames did not both reach the host within ${BOOT_MS} ms (heard: ${[...heard].join(' ') || 'none'})`)), BOOT_MS))),
    ]).finally(() => clearTimeout(readyTimer)),
  );
  // Phase 1 and 2: go 1 until both have exchanged and seen the replay; then go 2 until both are done.
  await repeat('t7FF101\r', explained('phase 1 (exchange, replay)', Promise.all([alpha.waitForLine(/KV replay=|EXIT/, BOOT_MS), beta.waitForLine(/KV replay=|EXIT/, BOOT_MS)])));
  await repeat('t7FF102\r', explained('phase 2 (priority under load)', Promise.all([alpha.waitForLine(/AVP-GUEST: EXIT \d+/, BOOT_MS), beta.waitForLine(/AVP-GUEST: EXIT \d+/, BOOT_MS)])));
  const kv = (v: QemuVm) => new Map(v.lines.flatMap((l) => [...l.matchAll(/AVP-GUEST: KV (\w+)=(.*)$/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const)));
  const ka = kv(alpha);
  const kb = kv(beta);
  assert.ok(alpha.lines.some((l) => /AVP-GUEST: EXIT 0/.test(l)), `alpha's script failed:\n${alpha.lines.slice(-20).join('\n')}`);
  assert.ok(beta.lines.some((l) => /AVP-GUEST: EXIT 0/.test(l)), `beta's script failed:\n${beta.lines.slice(-20).join('\n')}`);

  // 1. Each got the other's five frames, in order.
  assert.equal(ka.get('peer'), '2B1#B1,2B2#B2,2B3#B3,2B4#B4,2B5#B5,');
  assert.equal(kb.get('peer'), '2A1#A1,2A2#A2,2A3#A3,2A4#A4,2A5#A5,');

  // 2. The replay reached both, as consecutive frames of the looped trace.
  for (const [who, got] of [['alpha', ka.get('replay')], ['beta', kb.get('replay')]] as const) {
    const frames = (got ?? '').split(',').filter((x) => x !== '');
    assert.equal(frames.length, 8, `${who} got 8 replayed frames: ${got}`);
    const start = TRACE.indexOf(frames[0] ?? '');
    assert.ok(start >= 0, `${who}: ${frames[0]} is a frame of the trace`);
    frames.forEach((f, i) => assert.equal(f, TRACE[(start + i) % TRACE.length], `${who}: frame ${i} in trace order`));
  }

  // 3. Priority: beta's high-priority frames overtook alpha's queue.
  // The bus log has every frame (beta's last one was on the bus before alpha could exit).
  const logged = readFileSync(log, 'utf8');
  const readyFrames = (id: string) => (logged.match(new RegExp(` vehicle ${id}#01\n`, 'g')) ?? []).length;
  let s = readStats(stats);
  for (let i = 0; i < 100 && (s?.ports['beta']?.txFrames ?? 0) < readyFrames('7F2') + 26; i++) {
    await new Promise((r) => setTimeout(r, 200));
    s = readStats(stats);
  }
  assert.ok(s !== undefined, 'the stats file was written');
  const alphaStats = s.ports['alpha'];
  const betaStats = s.ports['beta'];
  assert.ok(alphaStats !== undefined && betaStats !== undefined);
  const frameUs = frameTimeUs(canFrame({ id: 0x400, data: new Uint8Array(8).fill(0xff) }), { bitrate: BITRATE });
  assert.equal(betaStats.txFrames, readyFrames('7F2') + 5 + 20 + 1, "beta's frames all went out");
  assert.equal(kb.get('low'), String(alphaStats.txFrames - readyFrames('7F1') - 5 - 1), "beta received every flood frame alpha's node sent");
  assert.equal(ka.get('high'), '20', "alpha received beta's twenty high-priority frames");
  assert.ok(alphaStats.txFrames > readyFrames('7F1') + 5 + 64, `alpha flooded past its node's transmit buffer (${alphaStats.txFrames} frames)`);
  // At most the frame on the wire, plus (for beta's 0x2Bx and 0x7FD frames) one replayed 0x100 frame that outranks them.
  assert.ok(betaStats.maxWaitUs <= 2.5 * frameUs, `beta's frames waited at most about two frame times: ${betaStats.maxWaitUs} us (a frame is ${frameUs} us)`);
  assert.ok(alphaStats.maxWaitUs >= 10 * frameUs, `alpha's flood frames queued behind each other: ${alphaStats.maxWaitUs} us`);
  assert.equal((logged.match(/ vehicle 050#/g) ?? []).length, 20, 'the bus log has every high-priority frame');
  assert.match(logged, / vehicle 2A5#A5\n/);
});
