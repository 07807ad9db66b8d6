// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:memory`: how much memory the back-ends of a platform take, measured on a real
 * run. Runs `avp run <manifest> --headless` (default examples/cockpit.yaml, AVP_BENCH_MANIFEST)
 * in rounds, alternating two variants of the same manifest: as written (back-ends without an
 * `isolation` run in the shared loop thread, the default) and with every such device back-end in
 * a thread of its own (`isolation: thread`, the layout before the shared thread existed; net
 * devices are their switch's ports). While
 * the guests run it samples, every 250 ms, every process of the run except QEMU (the `avp run`
 * process with its threads, and the back-end processes) from /proc/PID/smaps_rollup, and keeps
 * the largest sum: RSS, and private dirty memory (the back-ends' own; RSS also counts the guest
 * pages a back-end touched, which are QEMU's memfd). Prints both variants and the issue #15
 * target (all back-ends ≤ 80 MB); AVP_BENCH_ROUNDS (default 2).
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { reportLoad } from './load.js';
import { emitBenchOutput, median, type Comparison } from './results.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const AVP = join(REPO, 'bin', 'avp.js');
const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 2);
const TARGET_MB = 80;

interface Usage {
  rssMb: number;
  privateMb: number;
  /** The processes in the largest sample, e.g. `avp run 120/96`. */
  parts: string[];
}

/** pid → parent pid and command name, for every process. */
function processTable(): Map<number, { ppid: number; comm: string }> {
  const out = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // comm is in parentheses and may hold spaces; the fields after the last ')' are plain.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.set(Number(name), { ppid, comm });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** RSS and private dirty memory (MB) of a process, or undefined when it is gone. */
function memoryOf(pid: number): { rss: number; priv: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('Rss') / 1024, priv: kb('Private_Dirty') / 1024 };
  } catch {
    return undefined;
  }
}

/** The run's processes (the avp run process and its descendants) other than QEMU. */
function sample(root: number): Usage {
  const table = processTable();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, p] of table) if (p.ppid === tree[i]) tree.push(pid);
  let rssMb = 0;
  let privateMb = 0;
  const parts: string[] = [];
  for (const pid of tree) {
    const comm = table.get(pid)?.comm ?? '';
    if (comm.startsWith('qemu')) continue;
    const m = memoryOf(pid);
    if (m === undefined) continue;
    rssMb += m.rss;
    privateMb += m.priv;
    parts.push(`${pid === root ? 'avp run' : comm} ${m.rss.toFixed(0)}/${m.priv.toFixed(0)}`);
  }
  return { rssMb, privateMb, parts };
}

/** Runs the manifest once and returns the largest memory sample taken while it ran. */
function measure(manifest: string, log: (m: string) => void): Promise<Usage> {
  const runDir = mkdtempSync(join(tmpdir(), 'avp-bench-memory-'));
  const child = spawn(process.execPath, [AVP, 'run', manifest, '--headless', '--timeout', '600', '--run-dir', join(runDir, 'run')], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let best: Usage = { rssMb: 0, privateMb: 0, parts: [] };
  let started = false;
  let tail = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    tail = (tail + c).slice(-4000);
    if (/\[avp\] VM \S+ started/.test(tail)) started = true;
  });
  const timer = setInterval(() => {
    if (!started || child.pid === undefined) return;
    const s = sample(child.pid);
    if (s.privateMb > best.privateMb) best = s;
  }, 250);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      clearInterval(timer);
      rmSync(runDir, { recursive: true, force: true });
      if (code !== 0) return reject(new Error(`avp run ${manifest} exited with ${code}:\n${tail}`));
      log(`  ${best.parts.join(', ')} (MB RSS/private)`);
      resolve(best);
    });
  });
}

/**
 * A copy of the manifest's folder (its relative files come along) with a variant of the manifest
 * in which every device without an `isolation` runs in a thread of its own.
 */
function ownThreadVariant(manifest: string, into: string): string {
  cpSync(dirname(manifest), into, { recursive: true });
  const doc = parseDocument(readFileSync(manifest, 'utf8'));
  const vms = doc.get('vms') as { items?: Array<{ get(k: string): unknown }> } | undefined;
  for (const vm of vms?.items ?? []) {
    const devices = vm.get('devices') as { items?: Array<{ get(k: string): unknown; has(k: string): boolean; set(k: string, v: unknown): void }> } | undefined;
    // A net device has no back-end of its own (its switch has).
    for (const d of devices?.items ?? []) if (d.get('kind') !== 'net' && !d.has('isolation')) d.set('isolation', 'thread');
  }
  const file = join(into, `own-thread-${basename(manifest)}`);
  writeFileSync(file, doc.toString());
  return file;
}

async function main(): Promise<void> {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const manifest = resolve(REPO, process.env['AVP_BENCH_MANIFEST'] ?? 'examples/cockpit.yaml');
  const scratch = mkdtempSync(join(tmpdir(), 'avp-bench-memory-manifests-'));
  try {
    const variants = [
      { name: 'shared', file: manifest },
      { name: 'own threads', file: ownThreadVariant(manifest, join(scratch, 'examples')) },
    ];
    const loadBefore = await reportLoad('before', log);
    const got = new Map<string, Usage[]>(variants.map((v) => [v.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const v of variants) {
        log(`round ${round}, ${v.name}:`);
        const u = await measure(v.file, log);
        got.get(v.name)?.push(u);
        log(`round ${round}, ${v.name}: ${u.rssMb.toFixed(0)} MB RSS, ${u.privateMb.toFixed(0)} MB private`);
      }
    }
    const loadAfter = await reportLoad('after', log);
    process.stdout.write(`\nback-end memory of ${basename(manifest)} (every process of the run but QEMU, largest sample), medians of ${ROUNDS} round(s)\n`);
    for (const v of variants) {
      const us = got.get(v.name) ?? [];
      process.stdout.write(`${v.name.padEnd(12)} ${median(us.map((u) => u.rssMb)).toFixed(0).padStart(5)} MB RSS ${median(us.map((u) => u.privateMb)).toFixed(0).padStart(5)} MB private\n`);
    }
    const shared = median((got.get('shared') ?? []).map((u) => u.privateMb));
    process.stdout.write(`issue #15 target: all back-ends ≤ ${TARGET_MB} MB: ${shared <= TARGET_MB ? 'met' : `not met (${shared.toFixed(0)} MB private)`}\n`);
    const comparisons: Comparison[] = [
      { bench: 'memory', case: `${basename(manifest)} back-ends, private MB`, unit: 'MB', higherIsBetter: false, peerName: 'one thread per back-end', avp: (got.get('shared') ?? []).map((u) => u.privateMb), peer: (got.get('own threads') ?? []).map((u) => u.privateMb) },
    ];
    emitBenchOutput({ bench: 'memory', comparisons, loadBefore, loadAfter, notes: [`every process of the run but QEMU, largest of 250 ms samples; target ${TARGET_MB} MB`] });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
