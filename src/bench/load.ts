// SPDX-License-Identifier: Apache-2.0
/**
 * Is the machine idle? Benchmarks print the load before and after they run and warn when it is
 * not idle: load flatters AVP (the peers suffer more from it), so figures taken under load are
 * not to be reported. A sample is the 1-minute load average and the share of CPU time that was
 * busy (not idle, not iowait) over a short window, from /proc/loadavg and /proc/stat.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface LoadSample {
  readonly load1: number;
  /** Busy CPU time over the window, percent of all cores. */
  readonly busyPercent: number;
  readonly cores: number;
}

/** Busy share above which the machine does not count as idle. */
export const BUSY_LIMIT_PERCENT = 10;

/** Total and idle jiffies of the `cpu` line of /proc/stat text. @throws Error when the line is missing. */
export function cpuTimes(stat: string): { total: number; idle: number } {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('/proc/stat has no aggregate cpu line');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are already inside user/nice).
  const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { total, idle };
}

/** Busy percent between two /proc/stat readings. */
export function busyBetween(a: { total: number; idle: number }, b: { total: number; idle: number }): number {
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return (100 * (total - (b.idle - a.idle))) / total;
}

/** Samples the machine over `windowMs` (default 2 s). */
export async function sampleLoad(windowMs = 2000): Promise<LoadSample> {
  const a = cpuTimes(readFileSync('/proc/stat', 'utf8'));
  await new Promise((r) => setTimeout(r, windowMs));
  const b = cpuTimes(readFileSync('/proc/stat', 'utf8'));
  const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  return { load1, busyPercent: busyBetween(a, b), cores: availableParallelism() };
}

/** One line for the log, with a warning when the sample is not idle. */
export function describeLoad(when: string, s: LoadSample): string {
  const text = `machine load ${when}: load average ${s.load1.toFixed(2)} on ${s.cores} cores, CPU ${s.busyPercent.toFixed(1)}% busy`;
  return isIdle(s) ? text : `${text} -- WARNING: not idle; these figures flatter AVP and must not be reported`;
}

export function isIdle(s: LoadSample): boolean {
  return s.busyPercent <= BUSY_LIMIT_PERCENT;
}

/** Samples and logs the load; returns the sample. */
export async function reportLoad(when: string, log: (m: string) => void): Promise<LoadSample> {
  const s = await sampleLoad();
  log(describeLoad(when, s));
  return s;
}
