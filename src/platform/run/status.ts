// SPDX-License-Identifier: Apache-2.0
/**
 * The live status of a run as text: one table of VMs (state, uptime, ready) and one of back-ends
 * (how they run, state, connected or not, a few counters). Pure: a snapshot and a clock in, lines
 * out; the CLI redraws them in place on a terminal.
 *
 * Owns: the columns. Does not own: how a device's metrics become counters (its kind's `summarize`), collecting the snapshot
 * (supervisor.ts) nor drawing (cli).
 */
import { findKind } from '../../devices/registry.js';
import { formatCount, metric } from '../../devices/summary.js';
import type { RunSnapshot } from './supervisor.js';
import { describeIsolation } from './types.js';

/** The status table for `snapshot` at time `now` (Date.now()). */
export function renderStatus(snapshot: RunSnapshot, now: number): string[] {
  const vmRows = snapshot.vms.map((v) => [
    v.name,
    `${v.state}${vmNotes(v)}`,
    v.startedAt === undefined ? '-' : formatDuration((v.endedAt ?? now) - v.startedAt),
    v.readyAt === undefined ? 'no' : 'yes',
  ]);
  const backendRows = snapshot.backends.flatMap((b) =>
    b.ports.map((p, i) => [
      i === 0 ? b.id : '',
      i === 0 ? describeIsolation(b.isolation, b.pid) : '',
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

/** ` (watchdog fired 2 times, 1 restart)`: what happened to a VM beyond its state. */
function vmNotes(v: RunSnapshot['vms'][number]): string {
  const notes: string[] = [];
  const fired = v.watchdog?.fired ?? 0;
  if (fired > 0) notes.push(`watchdog fired ${fired} time${fired === 1 ? '' : 's'}`);
  const restarts = v.restarts ?? 0;
  if (restarts > 0) notes.push(`${restarts} restart${restarts === 1 ? '' : 's'}`);
  return notes.length === 0 ? '' : ` (${notes.join(', ')})`;
}

/**
 * A few counters from a back-end's metrics: its device kind's summary (`kind.summarize`, chosen by
 * the metrics' `device` field), else the vhost-user messages of the session.
 */
export function summarizeMetrics(m: Record<string, unknown>): string {
  const kind = typeof m['device'] === 'string' ? findKind(m['device']) : undefined;
  if (kind !== undefined) return kind.summarize(m);
  // A CAN bus node (platform/canbus metrics): its frames and error state.
  if (typeof m['txFrames'] === 'number') return `${formatCount(metric(m, ['txFrames']))} tx, ${formatCount(metric(m, ['rxFrames']))} rx, ${String(m['state'])}`;
  const requests = metric(m, ['session', 'requests'], -1);
  return requests < 0 ? '' : `${requests} messages`;
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

export { formatCount };
