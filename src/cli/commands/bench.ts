// SPDX-License-Identifier: Apache-2.0
/**
 * `avp bench blk`: measures a vhost-user-blk back-end through AVP's front-end (no VM): 4 KiB random
 * read and write at queue depth 1 and 32, 128 KiB sequential read, each for `--seconds`, printing
 * IOPS, MB/s and p50/p99 latency. The back-end is reached on `--socket-path`, or started with
 * `--exec 'command ... {socket}'` and stopped at the end.
 * Owns: options and output. Does not own: the measurement (bench/blk-vhost.ts).
 * The benchmark writes to the image (random 4 KiB blocks): point it at a scratch image.
 */
import type { Command } from 'commander';
import { BLK_BENCH_CASES, formatBlkResult, runBlkBench, type BlkBenchResult } from '../../bench/blk-vhost.js';
import { SpawnedBackend } from '../../vhost-user/spawn.js';
import { UsageError } from '../errors.js';

interface BenchOptions {
  socketPath?: string;
  exec?: string;
  seconds: string;
  cases?: string;
  json?: boolean;
}

/** Adds `blk` under `avp bench`, creating `bench` if no other command did (`bench net` shares it). */
export function registerBenchCommand(program: Command): void {
  const bench = program.commands.find((c) => c.name() === 'bench') ?? program.command('bench').description('benchmarks');
  bench
    .command('blk')
    .description('4 KiB random read/write at queue depth 1 and 32, 128 KiB sequential read (writes to the image: use a scratch one)')
    .option('--socket-path <path>', 'connect to a back-end already listening on this socket')
    .option('--exec <command>', 'start the back-end: a command with {socket} where its socket path goes')
    .option('--seconds <n>', 'measured seconds per case', '5')
    .option('--cases <names>', `comma-separated subset of: ${BLK_BENCH_CASES.map((c) => c.name).join(', ')}`)
    .option('--json', 'print the results as JSON instead of a table')
    .action(async (opts: BenchOptions) => {
      process.exitCode = await benchBlk(opts);
    });
}

async function benchBlk(opts: BenchOptions): Promise<number> {
  if ((opts.socketPath === undefined) === (opts.exec === undefined)) throw new UsageError('bench blk: give exactly one of --socket-path PATH or --exec COMMAND');
  const seconds = Number(opts.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new UsageError(`bench blk: --seconds must be a number of seconds in (0, 3600], got ${opts.seconds}`);
  const wanted = opts.cases?.split(',').map((s) => s.trim()) ?? BLK_BENCH_CASES.map((c) => c.name);
  const unknown = wanted.filter((w) => !BLK_BENCH_CASES.some((c) => c.name === w));
  if (unknown.length > 0) throw new UsageError(`bench blk: unknown case(s) ${unknown.join(', ')}; known: ${BLK_BENCH_CASES.map((c) => c.name).join(', ')}`);
  const cases = BLK_BENCH_CASES.filter((c) => wanted.includes(c.name));
  let backend: SpawnedBackend | undefined;
  const killOnExit = () => backend?.killNow();
  process.once('exit', killOnExit);
  try {
    if (opts.exec !== undefined) backend = await SpawnedBackend.start(opts.exec);
    // Safe: exactly one of socketPath and exec is set (checked above).
    const socket = backend?.socketPath ?? opts.socketPath!;
    const results: BlkBenchResult[] = runBlkBench(socket, cases, { seconds }, (r) => {
      if (opts.json !== true) process.stdout.write(`${formatBlkResult(r)}\n`);
    });
    if (opts.json === true) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return results.some((r) => r.errors > 0) ? 1 : 0;
  } finally {
    await backend?.stop();
    process.off('exit', killOnExit);
  }
}
