// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:all`: every comparison benchmark, one after the other (never two at once), each
 * in its own process with its output shown as it runs; then one HTML report with every case
 * (bench/report-html.ts) and the raw figures as JSON.
 *
 * Environment: AVP_BENCH_ONLY (comma-separated subset of blk,net,guest,fs,gpu), AVP_BENCH_REPORT
 * (the report folder, default .cache/bench), and each benchmark's own variables (AVP_BENCH_ROUNDS,
 * AVP_BENCH_SECONDS, ...). Take the figures on an otherwise idle machine: each benchmark prints
 * the load before and after and the report marks a run that was not idle.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchReportHtml } from './report-html.js';
import type { BenchOutput } from './results.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

/** The benchmarks, in the order they run, with the arguments of their process. */
export const BENCHES: ReadonlyArray<{ name: string; args: readonly string[] }> = [
  { name: 'blk', args: [here('./blk-compare.js')] },
  { name: 'net', args: [join(REPO, 'bin', 'avp.js'), 'bench', 'net', '--testpmd'] },
  { name: 'guest', args: [here('./guest-bench.js')] },
  { name: 'fs', args: [here('./fs-bench.js')] },
  { name: 'gpu', args: [here('./gpu-compare.js')] },
];

function runOne(args: readonly string[], json: string): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, AVP_BENCH_JSON: json } });
    child.once('error', rej);
    child.once('exit', (code, signal) => res(code ?? (signal === null ? 1 : 128)));
  });
}

async function main(): Promise<void> {
  const only = process.env['AVP_BENCH_ONLY']?.split(',').filter((s) => s !== '');
  const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`bench:all: AVP_BENCH_ONLY names unknown benchmarks: ${unknown.join(', ')} (known: ${BENCHES.map((b) => b.name).join(', ')})\n`);
    process.exit(2);
  }
  const outDir = resolve(process.env['AVP_BENCH_REPORT'] ?? join(REPO, '.cache', 'bench'));
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'avp-bench-all-'));
  const startedAt = new Date().toISOString();
  const outputs: BenchOutput[] = [];
  const failures: Array<{ bench: string; error: string }> = [];
  try {
    for (const b of BENCHES.filter((x) => only === undefined || only.includes(x.name))) {
      process.stderr.write(`\n=== bench:all: ${b.name} ===\n`);
      const json = join(tmp, `${b.name}.json`);
      const code = await runOne(b.args, json);
      if (code !== 0) failures.push({ bench: b.name, error: `exited with status ${code}` });
      if (existsSync(json)) outputs.push(JSON.parse(readFileSync(json, 'utf8')) as BenchOutput);
      else if (code === 0) failures.push({ bench: b.name, error: 'wrote no results' });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify({ startedAt, node: process.version, outputs, failures }, null, 1)}\n`);
  writeFileSync(join(outDir, 'report.html'), benchReportHtml(outputs, { startedAt, node: process.version, failures }));
  process.stdout.write(`\nbench:all: report ${join(outDir, 'report.html')} (raw figures: results.json)${failures.length > 0 ? `; failed: ${failures.map((f) => `${f.bench} (${f.error})`).join(', ')}` : ''}\n`);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
