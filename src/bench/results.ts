// SPDX-License-Identifier: Apache-2.0
/**
 * What every comparison benchmark produces, in one shape: per case, AVP's figure and a peer's
 * figure for each round (measured alternately in the same run), the unit, and which direction is
 * better. The benchmark scripts print their own tables; with AVP_BENCH_JSON=FILE they also write
 * their comparisons there, which is how `npm run bench:all` (bench/all.ts) collects them into one
 * HTML report (bench/report-html.ts).
 */
import { writeFileSync } from 'node:fs';
import type { LoadSample } from './load.js';

export interface Comparison {
  /** The benchmark: blk, net, guest, fs, gpu. */
  readonly bench: string;
  /** The case, e.g. randread-4k-qd32. */
  readonly case: string;
  /** The figure's unit, e.g. IOPS, p99 us, MB/s. */
  readonly unit: string;
  /** True for rates (more is better), false for latencies and times. */
  readonly higherIsBetter: boolean;
  /** The peer measured in the same run: qemu-storage-daemon, dpdk-testpmd, QEMU built-in, virtiofsd. */
  readonly peerName: string;
  /** One figure per round. */
  readonly avp: readonly number[];
  readonly peer: readonly number[];
}

/** What one benchmark script wrote: its comparisons, the machine's load around it, and notes (e.g. the harness ceiling). */
export interface BenchOutput {
  readonly bench: string;
  readonly comparisons: readonly Comparison[];
  readonly loadBefore?: LoadSample;
  readonly loadAfter?: LoadSample;
  readonly notes: readonly string[];
}

/** The median (NaN for no values). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  // Safe: the indexes are inside s, which is non-empty.
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * How AVP compares, as a factor where > 1 means AVP is better: AVP/peer for rates, peer/AVP for
 * latencies and times. NaN when either median is missing or not positive.
 */
export function advantage(c: Comparison): number {
  const a = median(c.avp);
  const p = median(c.peer);
  if (!(a > 0) || !(p > 0)) return Number.NaN;
  return c.higherIsBetter ? a / p : p / a;
}

/** Writes `output` to $AVP_BENCH_JSON when set (bench:all sets it); a no-op otherwise. */
export function emitBenchOutput(output: BenchOutput, env: NodeJS.ProcessEnv = process.env): void {
  const file = env['AVP_BENCH_JSON'];
  if (file === undefined || file === '') return;
  writeFileSync(file, `${JSON.stringify(output, null, 1)}\n`);
}
