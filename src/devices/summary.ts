// SPDX-License-Identifier: Apache-2.0
/**
 * Helpers for `DeviceKind.summarize`: reading numbers out of a metrics JSON that crossed a thread
 * or process boundary (so nothing about its shape is trusted), and short counts for the status
 * board. Does not own: any kind's metrics (devices/<name>/metrics.ts documents each shape).
 */

/** `m[k1][k2]...` when every step is an object and the end is a number; else `fallback`. */
export function metric(m: unknown, keys: readonly string[], fallback = 0): number {
  let v: unknown = m;
  for (const k of keys) {
    if (typeof v !== 'object' || v === null) return fallback;
    // Checked: an object; a missing key gives undefined.
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'number' ? v : fallback;
}

/** The sum of the numbers among an object's values (`drops: { a: 1, b: 2 }` → 3). */
export function metricSum(m: unknown, keys: readonly string[]): number {
  let v: unknown = m;
  for (const k of keys) {
    if (typeof v !== 'object' || v === null) return 0;
    // Checked: an object.
    v = (v as Record<string, unknown>)[k];
  }
  if (typeof v !== 'object' || v === null) return 0;
  return Object.values(v).reduce((n: number, x) => n + (typeof x === 'number' ? x : 0), 0);
}

/** 1536 → `1.5 Ki`, 768 → `768 ` (a unit letter follows: `768 B`), for byte counters. */
export function formatCount(n: number): string {
  const units = ['', ' Ki', ' Mi', ' Gi', ' Ti'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} ` : `${v.toFixed(1)}${units[u] ?? ''}`;
}
