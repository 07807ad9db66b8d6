// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, issue #16: the rows of the fault matrix (docs/reliability.md) that are not a
 * back-end restart under load, each with real Linux 6.12 guests under `avp run` (QEMU 10.0, TCG).
 *
 * 1. A vsock back-end process killed. QEMU 10.0's vhost-user-vsock-pci cannot reconnect, so the
 *    manifest refuses `restart: on-failure` for vsock (checked with `avp validate`). With the
 *    default `restart: no`, two guests that talk over vsock (one back-end process for the pair)
 *    lose it: `avp run` reports the kill, says why it does not restart it (the front-end cannot
 *    reconnect), stops both VMs and ends with status 1; no restart is tried, no socket is left.
 * 2. One VM's QEMU killed (SIGKILL) while another runs: `avp run` reports that VM failed with the
 *    signal, the other VM's guest goes on with its disk I/O; then that disk's socket file is
 *    removed (the live connection goes on), and its back-end is killed: the runner restarts it at
 *    a new socket file, QEMU reconnects and the guest's I/O goes on. The surviving guest ends its
 *    script with 0 on a host flag; the run ends with status 1 naming the killed VM.
 * 3. The host file system under a blk image fills up (a 512 KiB tmpfs, as root; skipped
 *    otherwise): the guest's writes that need new space fail with EIO, one back-end log line each
 *    (ENOSPC); what was written before reads back, a rewrite in place succeeds, the back-end never
 *    dies and the guest's script ends with 0.
 * 4. A stalled disk: the blk back-end process stopped (SIGSTOP) for 10 s while the guest writes:
 *    its writes wait (none completes during the stop but the one in flight), the VM's rng back-end
 *    serves meanwhile, and after SIGCONT every write completes, no error, every block as written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage } from '../platform/image/index.js';
import { AVP_BIN } from './testing/backend-process.js';
import { avpRun, pidIn } from './testing/avp-run.js';

let dir = '';

before(async () => {
  await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-resilience-faults-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function socketsUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(root, f)).isSocket());
}

const VSOCK_VMS = (restart: string) => `name: vsock-kill
vms:
  - name: a
    boot:
      ready: "AVP-GUEST: sent"
      script: |
        echo hello | socat -u STDIN VSOCK-CONNECT:4:5000,retry=120,interval=1 || exit 1
        avp-say sent
        while :; do sleep 1; done
    devices:
      - {kind: vsock, cid: 3, allowedPeers: [b], isolation: process${restart}}
  - name: b
    boot:
      ready: "AVP-GUEST: got hello"
      script: |
        socat -u VSOCK-LISTEN:5000 CREATE:/tmp/m &
        avp-wait-match /tmp/m hello 300 || exit 1
        avp-say got $(cat /tmp/m)
        while :; do sleep 1; done
    devices:
      - {kind: vsock, cid: 4, allowedPeers: [a], isolation: process}
`;

test('e2e: a killed vsock back-end process: restart: on-failure is refused up front; with restart: no both VMs are stopped, and the report says why', { timeout: 10 * 60_000 }, async () => {
  // restart: on-failure for vsock: refused by the manifest check, naming the field and the reason.
  const refused = join(dir, 'vsock-restart.yaml');
  writeFileSync(refused, VSOCK_VMS(', restart: on-failure'));
  const v = spawnSync(process.execPath, [AVP_BIN, 'validate', refused], { encoding: 'utf8' });
  assert.notEqual(v.status, 0, 'avp validate refuses restart: on-failure for vsock');
  assert.match(v.stdout + v.stderr, /vms\[0\]\.devices\[0\]\.restart.*on-failure needs QEMU to reconnect to the restarted back-end, which vhost-user-vsock-pci cannot/s);

  const runDir = join(dir, 'vsock-run');
  const manifest = join(dir, 'vsock.yaml');
  writeFileSync(manifest, VSOCK_VMS(''));
  const run = avpRun(runDir, [manifest]);
  try {
    const pid = pidIn(await run.waitFor(/^\[avp\] back-end vsock\/a\+b serving \(process \d+\)/));
    await run.waitFor(/^\[avp\] VM a is ready/);
    await run.waitFor(/^\[avp\] VM b is ready/);
    process.kill(pid, 'SIGKILL');
    const code = await run.exited;
    const out = run.lines.join('\n');
    process.stderr.write(`vsock kill: avp run ended with ${code}; its report:\n${run.lines.filter((l) => /^\[avp\] (error|VM|back-end|every)/.test(l)).join('\n')}\n`);
    assert.match(out, new RegExp(`^\\[avp\\] error: back-end vsock/a\\+b \\(process ${pid}\\) exited unexpectedly \\(killed by SIGKILL\\)`, 'm'));
    for (const vm of ['a', 'b']) {
      assert.ok(
        run.lines.includes(
          `[avp] error: stopping VM ${vm}: its back-end vsock/a+b failed; QEMU's vhost-user-vsock-pci cannot reconnect to a restarted back-end (restart: on-failure is refused for vsock), so the device would stay dead in this QEMU; start the run again to get it back`,
        ),
        `the report says why VM ${vm} is stopped:\n${run.tail()}`,
      );
      assert.match(out, new RegExp(`^\\[avp\\] error: VM ${vm} was stopped: its back-end vsock/a\\+b failed`, 'm'));
    }
    assert.equal(run.count(/restarting back-end/), 0, 'no restart is tried');
    assert.equal(code, 1, 'avp run ends with status 1');
    assert.match(out, /every VM has powered off; failed: a, b/);
  } finally {
    await run.stop();
  }
  assert.deepEqual(socketsUnder(runDir), [], 'no socket left in the run directory');
});

test('e2e: one VM\'s QEMU killed is reported and the other VM goes on; a removed socket file is made again when its back-end restarts', { timeout: 10 * 60_000 }, async () => {
  const runDir = join(dir, 'qemu-run');
  const manifest = join(dir, 'qemu-kill.yaml');
  // survivor: writes and reads its disk (direct I/O, through the back-end) every 0.3 s until the
  // host writes STOP at the start of it; then exits 0.
  writeFileSync(
    manifest,
    `name: qemu-kill
vms:
  - name: victim
    boot:
      ready: "AVP-GUEST: up"
      script: |
        avp-say up
        while :; do sleep 1; done
    devices:
      - {kind: rng}
  - name: survivor
    boot:
      ready: "AVP-GUEST: t 1$"
      script: |
        n=0
        while [ "$(dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | head -c4)" != STOP ]; do
          n=$((n+1)); yes $n | head -c 4096 | dd of=/dev/vda bs=4096 seek=1 count=1 iflag=fullblock oflag=direct 2>/dev/null || { avp-say ioerr; exit 1; }
          avp-say t $n; sleep 0.3
        done
        avp-say stopped after $n
    devices:
      - {kind: blk, size: 1M, isolation: process, restart: on-failure}
`,
  );
  const run = avpRun(runDir, [manifest]);
  const tick = /^\[survivor\] AVP-GUEST: t \d+$/;
  /** Waits for `more` survivor ticks after line index `from`. */
  const ticksAfter = (from: number, more: number, what: string) =>
    run.until(`${more} survivor I/O rounds ${what}`, (ls) => ls.slice(from).filter((l) => tick.test(l)).length >= more, 180_000);
  try {
    const victimPid = Number(/QEMU pid (\d+)/.exec(await run.waitFor(/^\[avp\] VM victim started \(QEMU pid \d+/))?.[1]);
    let blkPid = pidIn(await run.waitFor(/^\[avp\] back-end survivor\/blk serving \(process \d+\)/));
    await run.waitFor(/^\[avp\] VM victim is ready/);
    await run.waitFor(/^\[avp\] VM survivor is ready/);

    // 1. The victim's QEMU is killed: reported with the signal; the survivor goes on.
    process.kill(victimPid, 'SIGKILL');
    const reported = await run.waitFor(/^\[avp\] error: VM victim exited \(QEMU signal SIGKILL\) before its guest script ended/, 60_000);
    await ticksAfter(run.lines.indexOf(reported), 3, 'after the victim was killed');
    assert.equal(run.child.exitCode, null, 'avp run goes on');
    // The victim's rng back-end (a thread) is not touched: only its QEMU went.
    assert.equal(run.count(/back-end victim\/rng .*exited/), 0);

    // 2. The survivor's socket file is removed: the live connection does not need it.
    const socket = join(runDir, 'survivor', 'blk.sock');
    const oldIno = statSync(socket).ino;
    unlinkSync(socket);
    await ticksAfter(run.lines.length, 3, 'after its socket file was removed');

    // 3. Its back-end is killed: restarted at a new socket file, and QEMU reconnects to it.
    process.kill(blkPid, 'SIGKILL');
    const restarted = await run.waitFor(/^\[avp\] back-end survivor\/blk restarted \(process \d+\)/, 120_000);
    blkPid = pidIn(restarted);
    // QEMU connects by path: the guest's I/O resumes only if the runner made the file again.
    await ticksAfter(run.lines.indexOf(restarted), 3, 'after its back-end was restarted at a new socket file');
    assert.ok(
      run.lines.includes(`[avp] error: back-end survivor/blk: its socket ${socket} was removed while the run went on; listening at a new one there so QEMU can connect again`),
      run.tail(),
    );
    assert.notEqual(statSync(socket).ino, oldIno, 'a new socket file');

    // 4. The survivor ends its script; the run ends, naming the victim.
    const fd = openSync(join(runDir, 'survivor', 'blk.img'), 'r+');
    try {
      writeSync(fd, Buffer.from('STOP'), 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    const code = await run.exited;
    const out = run.lines.join('\n');
    process.stderr.write(
      `qemu kill: avp run ended with ${code}; survivor I/O rounds ${run.count(tick)}; its report:\n${run.lines.filter((l) => /^\[avp\] (error|VM|back-end|every)/.test(l)).join('\n')}\n`,
    );
    assert.equal(run.count(/AVP-GUEST: ioerr/), 0, 'the survivor saw no I/O error');
    assert.match(out, /^\[survivor\] AVP-GUEST: stopped after \d+$/m);
    assert.match(out, /^\[avp\] VM survivor powered off \(guest script exit status 0\)/m);
    assert.equal(code, 1, 'avp run ends with status 1: one VM failed');
    assert.match(out, /every VM has powered off; failed: victim$/m);
  } finally {
    await run.stop();
  }
  assert.deepEqual(socketsUnder(runDir), [], 'no socket left in the run directory');
});

/** Why a tmpfs cannot be mounted here, or undefined when it can. */
function mountUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a small tmpfs to fill';
  return undefined;
}

test('e2e: a full host file system under a blk disk: the writes that need space fail with an I/O error in the guest, everything else goes on', { timeout: 10 * 60_000, skip: mountUnavailable() }, async () => {
  // A 512 KiB tmpfs holding a sparse 4 MiB image: a write to a block not yet allocated needs space.
  const mnt = mkdtempSync(join(dir, 'full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    assert.fail(`mount -t tmpfs failed as root: ${mounted.stderr}`);
  }
  const runDir = join(dir, 'full-run');
  const run = { current: undefined as ReturnType<typeof avpRun> | undefined };
  try {
    const image = join(mnt, 'disk.img');
    writeFileSync(image, '');
    spawnSync('truncate', ['-s', '4M', image]);
    const manifest = join(dir, 'full.yaml');
    // 32 direct writes of 64 KiB (2 MiB) onto a disk whose host file system holds 512 KiB; then
    // the first block is read back, and written again (already allocated: needs no space).
    writeFileSync(
      manifest,
      `name: disk-full
vms:
  - name: g
    boot:
      script: |
        yes A | head -c 65536 > /tmp/a
        ok=0; bad=0; i=0
        while [ $i -lt 32 ]; do
          if dd if=/tmp/a of=/dev/vda bs=65536 seek=$i count=1 oflag=direct 2>/tmp/err; then ok=$((ok+1)); else bad=$((bad+1)); fi
          i=$((i+1))
        done
        avp-say fill ok $ok bad $bad err $(head -c 80 /tmp/err | tr '\\n' ' ')
        r=$(dd if=/dev/vda bs=65536 count=1 iflag=direct 2>/dev/null | md5sum); e=$(md5sum < /tmp/a)
        [ "\${r%% *}" = "\${e%% *}" ] && avp-say readback ok || avp-say readback bad
        dd if=/tmp/a of=/dev/vda bs=65536 seek=0 count=1 oflag=direct 2>/dev/null && avp-say rewrite ok || avp-say rewrite bad
        avp-say kerr $(dmesg | grep -c 'I/O error')
    devices:
      - {kind: blk, image: ${JSON.stringify(image)}, isolation: process}
`,
    );
    run.current = avpRun(runDir, [manifest]);
    const r = run.current;
    const code = await r.exited;
    const fill = /fill ok (\d+) bad (\d+) err (.*)$/.exec(r.lines.find((l) => l.startsWith('[g] AVP-GUEST: fill ')) ?? '');
    const kerr = Number(/kerr (\d+)$/.exec(r.lines.find((l) => l.startsWith('[g] AVP-GUEST: kerr ')) ?? '')?.[1]);
    const blkLog = readFileSync(join(runDir, 'g', 'blk.log'), 'utf8').split('\n');
    const hostErrors = blkLog.filter((l) => /ENOSPC|no space/i.test(l));
    process.stderr.write(
      `disk full: guest writes ok ${fill?.[1]} failed ${fill?.[2]} (dd said: ${fill?.[3]?.trim()}); guest kernel I/O error lines ${kerr}; ` +
        `back-end log lines naming ENOSPC ${hostErrors.length}, e.g. ${hostErrors[0]?.slice(0, 300)}; avp run ended with ${code}\n`,
    );
    assert.ok(fill !== null, r.tail());
    const [ok, bad] = [Number(fill[1]), Number(fill[2])];
    assert.equal(ok + bad, 32);
    assert.ok(ok >= 1 && ok <= 8, `the writes that fit (512 KiB) went through (${ok})`);
    assert.ok(bad >= 24, `the writes that did not fit failed (${bad})`);
    assert.match(fill[3] ?? '', /Input\/output error/, 'the guest saw EIO');
    assert.ok(r.lines.includes('[g] AVP-GUEST: readback ok'), 'what was written before the disk filled reads back');
    assert.ok(r.lines.includes('[g] AVP-GUEST: rewrite ok'), 'a write that needs no new space still succeeds');
    assert.ok(kerr >= 1, 'the guest kernel logged the I/O errors');
    assert.ok(hostErrors.length >= 1, 'the back-end logged the host error');
    assert.equal(r.count(/exited unexpectedly|restarting back-end/), 0, 'the back-end never died');
    assert.equal(code, 0, 'the guest script ended with 0: the VM went on');
  } finally {
    await run.current?.stop();
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
  assert.deepEqual(socketsUnder(runDir), [], 'no socket left in the run directory');
});

test('e2e: a stalled disk (its back-end stopped with SIGSTOP for 10 s) delays the guest\'s writes without an error; the VM\'s other device keeps serving meanwhile', { timeout: 10 * 60_000 }, async () => {
  const runDir = join(dir, 'slow-run');
  const manifest = join(dir, 'slow.yaml');
  // The guest writes 40 numbered 4 KiB blocks (direct I/O) and, in the background, reads 64 bytes
  // of /dev/hwrng every 0.2 s (rng in the run's shared thread, blk in a process of its own); at
  // the end it checks every block and the kernel log.
  writeFileSync(
    manifest,
    `name: slow-disk
vms:
  - name: g
    boot:
      script: |
        (n=0; while :; do n=$((n+1)); [ "$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)" = 64 ] && avp-say rng $n; sleep 0.2; done) &
        i=0; bad=0
        while [ $i -lt 40 ]; do
          yes $i | head -c 4096 | dd of=/dev/vda bs=4096 seek=$i count=1 iflag=fullblock oflag=direct 2>/dev/null || bad=$((bad+1))
          avp-say w $i; i=$((i+1)); sleep 0.2
        done
        i=0; wrong=0
        while [ $i -lt 40 ]; do
          [ "$(dd if=/dev/vda bs=4096 skip=$i count=1 iflag=direct 2>/dev/null | md5sum)" = "$(yes $i | head -c 4096 | md5sum)" ] || wrong=$((wrong+1)); i=$((i+1))
        done
        avp-say done bad $bad wrong $wrong kerr $(dmesg | grep -ciE 'I/O error|blk_update|timed out|hung')
    devices:
      - {kind: rng}
      - {kind: blk, size: 1M, isolation: process}
`,
  );
  const run = avpRun(runDir, [manifest]);
  try {
    const pid = pidIn(await run.waitFor(/^\[avp\] back-end g\/blk serving \(process \d+\)/));
    await run.waitFor(/^\[g\] AVP-GUEST: w 5$/);
    process.kill(pid, 'SIGSTOP');
    const writesAtStop = run.count(/^\[g\] AVP-GUEST: w \d+$/);
    const rngAtStop = run.count(/^\[g\] AVP-GUEST: rng \d+$/);
    // The fault's length (not a wait for an event): the disk answers nothing for 10 s.
    await new Promise((r) => setTimeout(r, 10_000));
    const writesDuring = run.count(/^\[g\] AVP-GUEST: w \d+$/) - writesAtStop;
    const rngDuring = run.count(/^\[g\] AVP-GUEST: rng \d+$/) - rngAtStop;
    process.kill(pid, 'SIGCONT');
    const done = await run.waitFor(/^\[g\] AVP-GUEST: done /);
    const code = await run.exited;
    process.stderr.write(`stalled disk: ${writesDuring} write(s) completed during the 10 s stop (at most the one in flight), ${rngDuring} hwrng reads served meanwhile; then: ${done}; avp run ended with ${code}\n`);
    assert.ok(writesDuring <= 1, `the guest's writes waited for the stopped back-end (${writesDuring} completed during the stop)`);
    assert.ok(rngDuring >= 1, 'the VM\'s rng (another back-end) kept serving while its disk stalled');
    assert.match(done, /done bad 0 wrong 0 kerr 0$/, 'no write failed, every block holds what was written, no I/O error or hung-task line in the guest kernel log');
    assert.equal(run.count(/exited unexpectedly|restarting back-end/), 0, 'the stopped back-end was not taken for dead');
    assert.equal(code, 0);
  } finally {
    try {
      const line = run.lines.find((l) => /^\[avp\] back-end g\/blk serving \(process \d+\)/.test(l));
      if (line !== undefined) process.kill(pidIn(line), 'SIGCONT');
    } catch {
      // gone already
    }
    await run.stop();
  }
  assert.deepEqual(socketsUnder(runDir), [], 'no socket left in the run directory');
});
