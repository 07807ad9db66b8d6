// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, issue #16: a blk back-end killed with SIGKILL in the middle of guest I/O, ten times,
 * under `avp run` with `restart: on-failure`, and the guest never sees an error.
 *
 * A real Linux 6.12 guest (the built-in image, QEMU 10.0, TCG) runs fio (built from Debian's fio
 * source into the image, platform/image/fio.ts) on its vhost-user-blk disk served by an
 * `avp serve blk` process: 4 KiB blocks, O_DIRECT, io_uring at queue depth 16, `--verify=crc32c`
 * with `--verify_backlog=64` (written blocks are read back and checked while the job runs, and at
 * its end) and `--verify_fatal=1` (the first bad block ends the job with an error), over the whole
 * 8 MiB disk but its last block: randwrite, then randrw, then randwrite again and so on (each job
 * with its own random seed), one after the other until the host raises a stop flag in that last
 * block, so that kills land in both kinds of job. After each
 * job the guest reports fio's exit status, its error field, I/O counts and IOPS (terse output) and
 * how many lines of fio's stderr mention verify (a verify failure prints "verify: bad magic header",
 * "crc32c: verify failed at file …").
 *
 * While it runs the test SIGKILLs the back-end process ten times. Each kill waits for an event:
 * the supervisor's "restarted" line, then two more fio jobs completed after it (their I/O served
 * and verified by the new process). `avp run` restarts a back-end at most 5 times in 60 s, so kills
 * 6..10 also wait until the kill five before is 60 s old (the supervisor's policy, not a guess at
 * timing).
 *
 * Passes when: every kill was followed by a restart (10 restarts); every fio job exited 0 with
 * error 0 and no verify complaint on stderr; the guest kernel log has no I/O error; and the guest's
 * MD5 of the whole disk equals the host's of the image file. Prints the figures.
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
/** fio's region: every block but the flag block. */
const FIO_BLOCKS = FLAG_BLOCK;
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
 * f NAME SEED: one fio job (rw=NAME); half a second in, "io SEED" (fio is running: the test kills
 * the back-end on that line, so that kills land inside jobs, not between them); at its end
 * "p SEED NAME rc R err E r READS w WRITES v V e L": exit status, fio's error field and I/Os
 * (KiB / 4) from the terse line (fields 5, 6, 47), stderr lines mentioning verify, stderr lines in all.
 */
const WORKLOAD = `D=/dev/vda;o="--filename=$D --size=${FIO_BLOCKS * 4}k --bs=4k --iodepth=16 --ioengine=io_uring --direct=1 --verify=crc32c --verify_backlog=64 --verify_fatal=1 --output-format=terse"
f(){ fio --name=$1 --rw=$1 --randseed=$2 $o >/tmp/o 2>/tmp/e & sleep 0.5;avp-say io $2;wait $!;r=$?
avp-say p $2 $1 rc $r $(grep '^3;' /tmp/o|awk -F';' '{print "err",$5,"r",$6/4,"w",$47/4}') v $(grep -ci verify /tmp/e) e $(grep -c . /tmp/e)
[ $r = 0 ]||avp-say fio-stderr $(head -c 300 /tmp/e); }
n=0;avp-say started
while [ "$(dd if=$D bs=4096 skip=${FLAG_BLOCK} count=1 iflag=direct 2>/dev/null|head -c4)" != STOP ];do n=$((n+1));m=randrw;[ $((n%2)) = 1 ]&&m=randwrite;f $m $n;done
avp-say done jobs $n kerr $(dmesg|grep -ciE 'I/O error|blk_update|vda.*(fail|timeout|timed out)') sum $(dd if=$D bs=1M iflag=direct 2>/dev/null|md5sum)
`;

/** One fio job as the guest reports it (see WORKLOAD). */
interface FioJob {
  seed: number;
  rw: string;
  rc: number;
  err: number;
  reads: number;
  writes: number;
  verifyLines: number;
  stderrLines: number;
}

const JOB_LINE = /^\[disk\] AVP-GUEST: p (\d+) (\w+) rc (\d+) err (\d+) r (\d+) w (\d+) v (\d+) e (\d+)$/;

function parseJobs(lines: readonly string[]): { jobs: FioJob[]; malformed: string[] } {
  const jobs: FioJob[] = [];
  const malformed: string[] = [];
  for (const l of lines.filter((x) => /^\[disk\] AVP-GUEST: p /.test(x))) {
    const m = JOB_LINE.exec(l);
    if (m === null) {
      malformed.push(l);
      continue;
    }
    const n = m.slice(1).map((x) => Number(x));
    // The pattern has eight groups, all taking part in every match; group 2 is the word.
    jobs.push({ seed: n[0] as number, rw: m[2] as string, rc: n[2] as number, err: n[3] as number, reads: n[4] as number, writes: n[5] as number, verifyLines: n[6] as number, stderrLines: n[7] as number });
  }
  return { jobs, malformed };
}

test(`e2e: fio with crc32c verify (randwrite + randrw, QD16, direct, io_uring) on a vhost-user-blk disk survives ${KILLS} SIGKILLs of its back-end (restart: on-failure, inflight resubmission)`, { timeout: 15 * 60_000 }, async () => {
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
    const workloadStart = Date.now();
    const progress = /^\[disk\] AVP-GUEST: p \d+ /;
    const inJob = /^\[disk\] AVP-GUEST: io \d+$/;
    await run.waitFor(progress, 120_000, 2);
    const killedAt: number[] = [];
    for (let k = 1; k <= KILLS; k++) {
      // The supervisor restarts at most 5 times in 60 s: wait until the kill five before is that old.
      const fifthBack = killedAt[k - 6];
      if (fifthBack !== undefined) {
        const wait = fifthBack + 61_000 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      // Kill while a fio job runs: on the next "io" line of the guest.
      await run.waitFor(inJob, 180_000, run.count(inJob) + 1);
      const before = run.count(progress);
      killedAt.push(Date.now());
      process.kill(pid, 'SIGKILL');
      const restarted = await run.waitFor(/^\[avp\] back-end disk\/blk restarted \(process \d+\)/, 60_000, k);
      const next = pidIn(restarted);
      assert.notEqual(next, pid, `restart ${k} started a new process`);
      pid = next;
      // I/O served by the new process: two more fio jobs completed (each verified) after the kill.
      await run.waitFor(progress, 180_000, before + 2);
      process.stderr.write(`kill ${k}: back-end restarted as process ${pid}; fio jobs go on (${run.count(progress)} done)\n`);
    }
    // Stop flag: the guest finishes the fio job in progress, then checks and reports.
    const fd = openSync(join(runDir, 'disk', 'blk.img'), 'r+');
    try {
      writeSync(fd, Buffer.from('STOP'), 0, 4, FLAG_BLOCK * BLOCK);
    } finally {
      closeSync(fd);
    }
    const done = await run.waitFor(/^\[disk\] AVP-GUEST: done /, 600_000);
    const workloadSeconds = (Date.now() - workloadStart) / 1000;
    const m = /done jobs (\d+) kerr (\d+) sum ([0-9a-f]{32})/.exec(done);
    assert.ok(m !== null, done);
    const [jobCount, kerr] = [Number(m[1]), Number(m[2])];
    const sum = m[3];
    const { jobs, malformed } = parseJobs(run.lines);
    const restarts = run.count(/^\[avp\] back-end disk\/blk restarted /);
    const blkLog = readFileSync(join(runDir, 'disk', 'blk.log'), 'utf8').split('\n');
    const inflightLines = blkLog.filter((l) => /inflight record: [1-9]/.test(l));
    const adopted = blkLog.filter((l) => /inflight record from the front-end/.test(l)).length;
    const sumOf = (f: (j: FioJob) => number): number => jobs.reduce((a, j) => a + f(j), 0);
    const failed = jobs.filter((j) => j.rc !== 0 || j.err !== 0 || j.verifyLines !== 0 || j.stderrLines !== 0);
    const ios = sumOf((j) => j.reads + j.writes);
    process.stderr.write(
      `resilience: ${restarts} restarts of the blk back-end; ${jobs.length} fio jobs (${jobs.filter((j) => j.rw === 'randwrite').length} randwrite, ` +
        `${jobs.filter((j) => j.rw === 'randrw').length} randrw; 4 KiB, QD 16, direct, io_uring, crc32c verify), ${ios} I/Os ` +
        `(${sumOf((j) => j.reads)} reads incl. verify reads, ${sumOf((j) => j.writes)} writes) in ${workloadSeconds.toFixed(0)} s of workload, ` +
        `${Math.round(ios / workloadSeconds)} I/Os a second on average, kills and restarts included; ` +
        `jobs with a non-zero exit status ${jobs.filter((j) => j.rc !== 0).length}, with fio error set ${jobs.filter((j) => j.err !== 0).length}, ` +
        `verify complaints ${sumOf((j) => j.verifyLines)}, fio stderr lines ${sumOf((j) => j.stderrLines)}, guest kernel I/O error lines ${kerr}, ` +
        `inflight record handed back ${adopted} times, ${inflightLines.length} restarts found chains in flight and served them again, runtime ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
    for (const l of run.lines.filter((x) => x.includes('AVP-GUEST: fio-stderr')).slice(0, 5)) process.stderr.write(`  ${l}\n`);
    assert.deepEqual(malformed, [], 'every fio job report has all its figures');
    assert.equal(jobs.length, jobCount, 'the guest reported every job');
    assert.equal(restarts, KILLS, 'every kill was followed by a restart');
    // QEMU handed the inflight record back to every restarted process (and once to the first).
    assert.ok(adopted >= KILLS + 1, `SET_INFLIGHT_FD after each restart (${adopted} in blk.log)`);
    assert.deepEqual(failed, [], 'every fio job exited 0, with error 0 and nothing on stderr (no verify failure, no I/O error)');
    assert.equal(kerr, 0, 'the guest kernel logged no I/O error');
    assert.ok(jobs.some((j) => j.rw === 'randwrite') && jobs.some((j) => j.rw === 'randrw'), 'both kinds of job ran');
    assert.ok(ios > 4 * FIO_BLOCKS, `the workload ran (${ios} I/Os)`);

    await run.stop();
    // The image file as the host sees it: the guest's checksum of the disk.
    const image = readFileSync(join(runDir, 'disk', 'blk.img'));
    assert.equal(image.length, DISK_BLOCKS * BLOCK);
    assert.equal(createHash('md5').update(image).digest('hex'), sum, 'the guest saw the same bytes as the image file holds');
    process.stderr.write(`resilience: image check: MD5 of the 8 MiB disk in the guest = MD5 of the image file on the host (${sum})\n`);
  } finally {
    await run.stop();
  }
});
