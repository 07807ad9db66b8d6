// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:all`: every comparison benchmark, one after the other (never two at once), each
 * in its own process with its output shown as it runs; then one HTML report with every case
 * (bench/report-html.ts) and the raw figures as JSON.
 *
 * Environment: AVP_BENCH_ONLY (comma-separated subset of blk,net,guest,fs,gpu,boot,memory), AVP_BENCH_REPORT
 * (the report folder, default .cache/bench), and each benchmark's own variables (AVP_BENCH_ROUNDS,
 * AVP_BENCH_SECONDS, ...); AVP_BENCH_ROUNDS_<NAME> (e.g. AVP_BENCH_ROUNDS_BLK=5) sets the rounds of
 * one benchmark (net takes them as --rounds). Take the figures on an otherwise idle machine: each benchmark prints
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
  { name: 'boot', args: [here('./boot-bench.js')] },
  { name: 'memory', args: [here('./memory-bench.js')] },
];

/** The environment of one benchmark: its JSON output file and its own round count, if given. */
function benchEnv(name: string, json: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rounds = env[`AVP_BENCH_ROUNDS_${name.toUpperCase()}`];
  return { ...env, AVP_BENCH_JSON: json, ...(rounds === undefined ? {} : { AVP_BENCH_ROUNDS: rounds }) };
}

function runOne(name: string, args: readonly string[], json: string): Promise<number> {
  const env = benchEnv(name, json, process.env);
  const rounds = env['AVP_BENCH_ROUNDS'];
  const argv = name === 'net' && rounds !== undefined ? [...args, '--rounds', rounds] : args;
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'], env });
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
      const code = await runOne(b.name, b.args, json);
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
