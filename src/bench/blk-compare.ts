// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:blk`: AVP's blk back-end (`avp serve blk`) against qemu-storage-daemon 7.2's
 * vhost-user-blk export on the same raw image on tmpfs (/dev/shm), measured through the same
 * front-end (bench/blk-vhost.ts), alternating whole rounds (AVP, qsd, AVP, qsd, ...) so that
 * machine load hits both alike. Prints every round's figures, then the medians per case and the
 * AVP/qsd ratios of IOPS and p50/p99 latency.
 *
 * The harness's own ceiling is measured too: the same front-end against qemu-storage-daemon's
 * null-co block driver (no data moved, every request completed at once), printed beside the
 * results, so a ratio is never bounded by the front-end.
 *
 * Environment: AVP_BENCH_ROUNDS (default 2), AVP_BENCH_SECONDS per case (default 3),
 * AVP_BENCH_IMAGE_MIB (default 512), AVP_BENCH_CASES (comma-separated subset).
 * The image is created filled with random bytes and removed at the end; back-ends are always
 * stopped.
 */
import { accessSync, closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SpawnedBackend } from '../vhost-user/spawn.js';
import { BLK_BENCH_CASES, formatBlkResult, runBlkBench, type BlkBenchResult } from './blk-vhost.js';
import { reportLoad } from './load.js';
import { emitBenchOutput, median, type Comparison } from './results.js';

const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 2);
const SECONDS = Number(process.env['AVP_BENCH_SECONDS'] ?? 3);
const IMAGE_MIB = Number(process.env['AVP_BENCH_IMAGE_MIB'] ?? 512);
const CASES = process.env['AVP_BENCH_CASES']?.split(',') ?? BLK_BENCH_CASES.map((c) => c.name);
const QSD = '/usr/bin/qemu-storage-daemon';
const AVP_BIN = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));


function makeImage(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = randomFillSync(Buffer.alloc(1 << 20));
    for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

function hasQsd(): boolean {
  try {
    accessSync(QSD, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function measure(label: string, command: string, log: (m: string) => void): Promise<BlkBenchResult[]> {
  const backend = await SpawnedBackend.start(command);
  try {
    const cases = BLK_BENCH_CASES.filter((c) => CASES.includes(c.name));
    return runBlkBench(backend.socketPath, cases, { seconds: SECONDS }, (r) => log(`  ${label.padEnd(4)} ${formatBlkResult(r)}`));
  } finally {
    await backend.stop();
  }
}

async function main(): Promise<void> {
  const image = `/dev/shm/avp-bench-blk-${process.pid}.img`;
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const backends: Array<[string, string]> = [['AVP', `${JSON.stringify(process.execPath)} ${AVP_BIN} serve blk --socket-path {socket} --image ${image}`]];
  if (hasQsd()) backends.push(['qsd', `${QSD} --blockdev driver=file,node-name=f0,filename=${image} --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path={socket},writable=on`]);
  else log(`${QSD} is not installed: AVP only, no ratios`);
  const runs = new Map<string, BlkBenchResult[][]>(backends.map(([label]) => [label, []]));
  const loadBefore = await reportLoad('before', log);
  let ceiling: BlkBenchResult[] = [];
  try {
    log(`blk benchmark: ${IMAGE_MIB} MiB image on /dev/shm, ${ROUNDS} round(s) of ${SECONDS} s per case, node ${process.version}`);
    makeImage(image, IMAGE_MIB);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [label, command] of backends) {
        log(`round ${round}, ${label}:`);
        runs.get(label)?.push(await measure(label, command, log));
      }
    }
    if (hasQsd()) {
      log('harness ceiling (the same front-end against qemu-storage-daemon null-co: nothing stored, every request completed at once):');
      try {
        ceiling = await measure('null', `${QSD} --blockdev driver=null-co,node-name=n0,size=${IMAGE_MIB * 1048576} --export type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path={socket},writable=on`, log);
      } catch (e: unknown) {
        log(`the harness ceiling could not be measured: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  } finally {
    rmSync(image, { force: true });
  }
  const cases = BLK_BENCH_CASES.filter((c) => CASES.includes(c.name));
  const med = (label: string, name: string, key: 'iops' | 'mbps' | 'p50us' | 'p99us'): number =>
    median((runs.get(label) ?? []).map((rs) => rs.find((r) => r.name === name)?.[key] ?? 0));
  const lines: string[] = [];
  const pad = (s: string, n: number) => s.padStart(n);
  lines.push(`${'case'.padEnd(18)} ${pad('AVP IOPS', 9)} ${pad('qsd IOPS', 9)} ${pad('AVP/qsd', 8)}  ${pad('AVP MB/s', 8)} ${pad('qsd MB/s', 8)}  ${pad('AVP p50/p99 us', 15)} ${pad('qsd p50/p99 us', 15)}  ${pad('p50 ratio', 9)} ${pad('p99 ratio', 9)}`);
  for (const c of cases) {
    const a = (k: 'iops' | 'mbps' | 'p50us' | 'p99us') => med('AVP', c.name, k);
    const q = (k: 'iops' | 'mbps' | 'p50us' | 'p99us') => (runs.has('qsd') ? med('qsd', c.name, k) : Number.NaN);
    const ratio = (x: number, y: number) => (Number.isFinite(y) && y > 0 ? (x / y).toFixed(2) : 'n/a');
    lines.push(
      `${c.name.padEnd(18)} ${pad(a('iops').toFixed(0), 9)} ${pad(q('iops').toFixed(0), 9)} ${pad(ratio(a('iops'), q('iops')), 8)}  ` +
        `${pad(a('mbps').toFixed(1), 8)} ${pad(q('mbps').toFixed(1), 8)}  ` +
        `${pad(`${a('p50us').toFixed(0)}/${a('p99us').toFixed(0)}`, 15)} ${pad(`${q('p50us').toFixed(0)}/${q('p99us').toFixed(0)}`, 15)}  ` +
        `${pad(ratio(a('p50us'), q('p50us')), 9)} ${pad(ratio(a('p99us'), q('p99us')), 9)}`,
    );
  }
  const notes = ceiling.map((r) => `harness ceiling ${r.name}: ${r.iops.toFixed(0)} IOPS, p50/p99 ${r.p50us.toFixed(0)}/${r.p99us.toFixed(0)} us (front-end against qsd null-co)`);
  process.stdout.write(`\nmedians of ${ROUNDS} round(s), ${SECONDS} s per case (IOPS ratio > 1: AVP faster; latency ratio < 1: AVP faster)\n${lines.join('\n')}\n${notes.join('\n')}\n`);
  const loadAfter = await reportLoad('after', log);
  const per = (label: string, name: string, key: 'iops' | 'mbps' | 'p50us' | 'p99us'): number[] => (runs.get(label) ?? []).map((rs) => rs.find((r) => r.name === name)?.[key] ?? Number.NaN);
  const comparisons: Comparison[] = runs.has('qsd')
    ? cases.flatMap((c) => {
        const rate: Comparison = c.name.startsWith('seq')
          ? { bench: 'blk', case: c.name, unit: 'MB/s', higherIsBetter: true, peerName: 'qemu-storage-daemon', avp: per('AVP', c.name, 'mbps'), peer: per('qsd', c.name, 'mbps') }
          : { bench: 'blk', case: c.name, unit: 'IOPS', higherIsBetter: true, peerName: 'qemu-storage-daemon', avp: per('AVP', c.name, 'iops'), peer: per('qsd', c.name, 'iops') };
        const p99: Comparison = { bench: 'blk', case: c.name, unit: 'p99 us', higherIsBetter: false, peerName: 'qemu-storage-daemon', avp: per('AVP', c.name, 'p99us'), peer: per('qsd', c.name, 'p99us') };
        return c.queueDepth === 1 ? [rate, p99] : [rate];
      })
    : [];
  emitBenchOutput({ bench: 'blk', comparisons, loadBefore, loadAfter, notes });
}

await main();
