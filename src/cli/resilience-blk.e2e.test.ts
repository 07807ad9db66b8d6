// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, issue #16: a blk back-end killed with SIGKILL in the middle of guest I/O, ten times,
 * under `avp run` with `restart: on-failure`, and the guest never sees an error.
 *
 * A real Linux 6.12 guest (the built-in image, QEMU 10.0, TCG) runs a verifying random-I/O workload
 * on its vhost-user-blk disk served by an `avp serve blk` process: 16 workers in parallel (queue
 * depth up to 16), each with O_DIRECT 4 KiB I/O on its own blocks of an 8 MiB disk, first random
 * writes only, then random reads and writes mixed, every read checked against the last content
 * written there (busybox crc32), until the host raises a stop flag. The content of a block is
 * derived from (block, worker, generation), so the host can check the image file afterwards too.
 * fio is not in the image: Debian 12's fio links librbd, librados, libgfapi and more (87 packages),
 * too heavy for the shared guest image; this workload keeps fio's shape (randwrite then randrw,
 * 16 in flight, direct I/O, crc verify) with busybox dd.
 *
 * While it runs the test SIGKILLs the back-end process ten times. Each kill waits for an event:
 * the supervisor's "restarted" line, then two progress lines of the guest after it (I/O served by
 * the new process). `avp run` restarts a back-end at most 5 times in 60 s, so kills 6..10 also wait
 * until the kill five before is 60 s old (the supervisor's policy, not a guess at timing).
 *
 * Passes when: every kill was followed by a restart (10 restarts); the guest reports 0 write
 * errors and 0 verify errors; the guest kernel log has no I/O error; the guest's MD5 of the
 * whole disk equals the host's of the image file; and every block of the image holds exactly
 * what the guest last wrote there (or zeros). Prints the figures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage } from '../platform/image/index.js';
import { avpRun, pidIn } from './testing/avp-run.js';

const KILLS = 10;
const BLOCK = 4096;
const DISK_BLOCKS = 2048; // 8 MiB
const FLAG_BLOCK = DISK_BLOCKS - 1;
let dir = '';

before(async () => {
  await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-resilience-e2e-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The guest's workload (busybox ash; it travels on the kernel command line, so it is terse).
 * r B: read block B (direct); x B: the content block B should hold (from /tmp/s/B = "worker.gen");
 * c B: verify block B; o W MODE: one random op of worker W (MODE w: write; m: 50/50 read/write).
 * Workers own blocks W, W+16, ... below 512, so their writes never race each other's checks.
 */
const WORKLOAD = `D=/dev/vda;F=${FLAG_BLOCK};mkdir -p /tmp/s
r(){ dd if=$D bs=4096 skip=$1 count=1 iflag=direct 2>/dev/null; }
x(){ yes "$1 $(cat /tmp/s/$1)"|head -c 4096; }
c(){ [ "$(r $1|crc32)" = "$(x $1|crc32)" ]; }
o(){ b=$((RANDOM%32*16+$1))
if [ $2 = w ]||[ $((RANDOM%2)) = 0 ];then echo $1.$n>/tmp/s/$b;x $b|dd of=$D bs=4096 seek=$b count=1 iflag=fullblock oflag=direct 2>/dev/null||echo>>/tmp/ew$1
elif [ -f /tmp/s/$b ];then c $b||echo>>/tmp/ev$1;fi; }
w(){ RANDOM=$(($1+1));n=0;while [ $n -lt 16 ];do n=$((n+1));o $1 w;done
while [ "$(r $F|head -c4)" != STOP ];do k=0;while [ $k -lt 4 ];do k=$((k+1));n=$((n+1));o $1 m;done;[ $1 = 0 ]&&avp-say p $n;done;echo $n>/tmp/n$1; }
i=0;while [ $i -lt 16 ];do w $i & i=$((i+1));done;avp-say started;wait
avp-say done ops $(cat /tmp/n*|awk '{s+=$1}END{print s}') werr $(cat /tmp/ew* 2>/dev/null|wc -l) verr $(cat /tmp/ev* 2>/dev/null|wc -l) kerr $(dmesg|grep -ciE 'I/O error|blk_update|vda.*(fail|timeout|timed out)') sum $(dd if=$D bs=1M iflag=direct 2>/dev/null|md5sum)
grep -r . /tmp/s|sed 's,/tmp/s/,,'|xargs -n 32 avp-say s;avp-say blocks $(ls /tmp/s|wc -l)
`;

/** What the workload writes into block `b` for state `gen` ("worker.n"): `yes "b gen" | head -c 4096`. */
function expectedBlock(b: number, gen: string): Buffer {
  const unit = Buffer.from(`${b} ${gen}\n`);
  const out = Buffer.alloc(BLOCK);
  for (let off = 0; off < BLOCK; off += unit.length) unit.copy(out, off);
  return out;
}

test(`e2e: a verifying random-I/O workload on a vhost-user-blk disk survives ${KILLS} SIGKILLs of its back-end (restart: on-failure, inflight resubmission)`, { timeout: 15 * 60_000 }, async () => {
  const runDir = join(dir, 'run');
  const manifest = join(dir, 'resilience.yaml');
  const script = WORKLOAD.split('\n').map((l) => `        ${l}`).join('\n');
  writeFileSync(
    manifest,
    `name: resilience
vms:
  - name: disk
    boot:
      ready: "AVP-GUEST: started"
      script: |
${script}
    devices:
      - {kind: blk, size: 8M, isolation: process, restart: on-failure}
`,
  );
  const started = Date.now();
  const run = avpRun(runDir, [manifest]);
  try {
    let pid = pidIn(await run.waitFor(/^\[avp\] back-end disk\/blk serving \(process \d+\)/));
    await run.waitFor(/^\[disk\] AVP-GUEST: started$/);
    const progress = /^\[disk\] AVP-GUEST: p \d+$/;
    await run.waitFor(progress, 120_000, 2);
    const killedAt: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      // The supervisor restarts at most 5 times in 60 s: wait until the kill five before is that old.
      const fifthBack = killedAt[k - 6];
      if (fifthBack !== undefined) {
        const wait = fifthBack + 61_000 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const before = run.count(progress);
      killedAt.push(Date.now());
      process.kill(pid, 'SIGKILL');
      const restarted = await run.waitFor(/^\[avp\] back-end disk\/blk restarted \(process \d+\)/, 60_000, k);
      const next = pidIn(restarted);
      assert.notEqual(next, pid, `restart ${k} started a new process`);
      pid = next;
      // I/O served by the new process: two more progress lines (a whole chunk of ops after the kill).
      await run.waitFor(progress, 180_000, before + 2);
      process.stderr.write(`kill ${k}: back-end restarted as process ${pid}; guest progress goes on\n`);
    }
    // Stop flag: the workers finish their chunk, then the guest checks and reports.
    const fd = openSync(join(runDir, 'disk', 'blk.img'), 'r+');
    try {
      writeSync(fd, Buffer.from('STOP'), 0, 4, FLAG_BLOCK * BLOCK);
    } finally {
      closeSync(fd);
    }
    const done = await run.waitFor(/^\[disk\] AVP-GUEST: done /, 600_000);
    // The guest's record of what it wrote where, 32 blocks a line, then the block count.
    const blocks = Number(/blocks (\d+)$/.exec(await run.waitFor(/^\[disk\] AVP-GUEST: blocks \d+$/, 300_000))?.[1]);
    const m = /done ops (\d+) werr (\d+) verr (\d+) kerr (\d+) sum ([0-9a-f]{32})/.exec(done);
    assert.ok(m !== null, done);
    const [ops, werr, verr, kerr] = m.slice(1, 5).map(Number) as [number, number, number, number];
    const sum = m[5];
    const restarts = run.count(/^\[avp\] back-end disk\/blk restarted /);
    const blkLog = readFileSync(join(runDir, 'disk', 'blk.log'), 'utf8').split('\n');
    const inflightLines = blkLog.filter((l) => /inflight record: [1-9]/.test(l));
    const adopted = blkLog.filter((l) => /inflight record from the front-end/.test(l)).length;
    process.stderr.write(
      `resilience: ${restarts} restarts of the blk back-end, ${ops} guest ops (randwrite then randrw, 16 workers, 4 KiB direct), ` +
        `write errors ${werr}, verify errors ${verr}, guest kernel I/O error lines ${kerr}, ` +
        `inflight record handed back ${adopted} times, ${inflightLines.length} restarts found chains in flight and served them again, runtime ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
    assert.equal(restarts, KILLS, 'every kill was followed by a restart');
    // QEMU handed the inflight record back to every restarted process (and once to the first).
    assert.ok(adopted >= KILLS + 1, `SET_INFLIGHT_FD after each restart (${adopted} in blk.log)`);
    assert.equal(werr, 0, 'no write failed in the guest');
    assert.equal(verr, 0, 'no read returned other data than written');
    assert.equal(kerr, 0, 'the guest kernel logged no I/O error');
    assert.ok(ops > 16 * 16, `the workload ran (${ops} ops)`);

    await run.stop();
    // The image file as the host sees it: the guest's checksum of the disk, and every block.
    const image = readFileSync(join(runDir, 'disk', 'blk.img'));
    assert.equal(image.length, DISK_BLOCKS * BLOCK);
    assert.equal(createHash('md5').update(image).digest('hex'), sum, 'the guest saw the same bytes as the image file holds');
    const state = new Map<number, string>();
    for (const line of run.lines.filter((l) => l.startsWith('[disk] AVP-GUEST: s '))) {
      for (const [, b, g] of line.matchAll(/(\d+):(\d+\.\d+)/g)) state.set(Number(b), g as string);
    }
    assert.ok(state.size > 0, 'the guest reported which blocks it wrote');
    assert.equal(state.size, blocks, 'every block the guest wrote was reported');
    let mismatches = 0;
    for (let b = 0; b < FLAG_BLOCK; b++) {
      const got = image.subarray(b * BLOCK, (b + 1) * BLOCK);
      const gen = state.get(b);
      const want = gen === undefined ? Buffer.alloc(BLOCK) : expectedBlock(b, gen);
      if (!got.equals(want)) mismatches++;
    }
    process.stderr.write(`resilience: image check: ${state.size} blocks written, ${mismatches} differ from what the guest last wrote\n`);
    assert.equal(mismatches, 0, 'every block of the image holds what the guest last wrote there');
  } finally {
    await run.stop();
  }
});
