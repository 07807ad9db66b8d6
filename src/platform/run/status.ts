// SPDX-License-Identifier: Apache-2.0
/**
 * The live status of a run as text: one table of VMs (state, uptime, ready) and one of back-ends
 * (how they run, state, connected or not, a few counters). Pure: a snapshot and a clock in, lines
 * out; the CLI redraws them in place on a terminal.
 *
 * Owns: the columns and how metrics become counters. Does not own: collecting the snapshot
 * (supervisor.ts) nor drawing (cli).
 */
import type { RunSnapshot } from './supervisor.js';

/** The status table for `snapshot` at time `now` (Date.now()). */
export function renderStatus(snapshot: RunSnapshot, now: number): string[] {
  const vmRows = snapshot.vms.map((v) => [
    v.name,
    v.state,
    v.startedAt === undefined ? '-' : formatDuration((v.endedAt ?? now) - v.startedAt),
    v.readyAt === undefined ? 'no' : 'yes',
  ]);
  const backendRows = snapshot.backends.flatMap((b) =>
    b.ports.map((p, i) => [
      i === 0 ? b.id : '',
      i === 0 ? (b.isolation === 'process' ? `process ${b.pid ?? '-'}` : 'thread') : '',
      i === 0 ? `${b.state}${b.restarts > 0 ? ` (${b.restarts} restart${b.restarts === 1 ? '' : 's'})` : ''}` : '',
      b.ports.length > 1 ? p.name : '',
      p.connected ? 'yes' : 'no',
      summarizeMetrics(p.metrics),
    ]),
  );
  return [
    `${snapshot.name}: ${snapshot.vms.length} VM${snapshot.vms.length === 1 ? '' : 's'}, up ${formatDuration(now - snapshot.startedAt)}`,
    ...table(['VM', 'STATE', 'UPTIME', 'READY'], vmRows),
    ...table(['BACK-END', 'RUNS AS', 'STATE', 'PORT', 'CONNECTED', 'COUNTERS'], backendRows),
  ];
}

/**
 * A few counters from a back-end's metrics: rng requests and bytes, blk bytes read and written,
 * net frames and drops, vsock packets, else the vhost-user messages of the session.
 */
export function summarizeMetrics(m: Record<string, unknown>): string {
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  if (m['device'] === 'rng') return `${num(m['requests']) ?? 0} req, ${formatCount(num(m['bytes']) ?? 0)}B`;
  if (m['device'] === 'blk') return `read ${formatCount(num(m['bytesRead']) ?? 0)}B, written ${formatCount(num(m['bytesWritten']) ?? 0)}B`;
  const field = (o: unknown, k: string): unknown => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined); // checked: an object
  if (m['device'] === 'net') {
    const drops = field(m, 'drops');
    const dropped = typeof drops === 'object' && drops !== null ? Object.values(drops).reduce((n: number, v) => n + (typeof v === 'number' ? v : 0), 0) : 0;
    return `tx ${num(field(m['tx'], 'frames')) ?? 0} fr, rx ${num(field(m['rx'], 'frames')) ?? 0} fr, ${dropped} dropped`;
  }
  if (m['device'] === 'vsock') return `tx ${num(field(m['packets'], 'tx')) ?? 0} pkts, rx ${num(field(m['packets'], 'rx')) ?? 0} pkts`;
  const session = m['session'];
  const requests = typeof session === 'object' && session !== null ? num((session as Record<string, unknown>)['requests']) : undefined; // checked: an object
  return requests === undefined ? '' : `${requests} messages`;
}

function table(header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** 75_000 → `1m15s`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** 1536 → `1.5 Ki`, for byte counters. */
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
