// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard's view of a run: a control snapshot (platform/run/control.ts) turned into what the
 * page draws (wire.ts PageSnapshot). For each back-end port: its kind's one-line summary and chart
 * series (`DeviceKind.summarize` / `series`, the kind chosen by the metrics' `device` field), and
 * every number of its metrics as a flat list, so that a kind without `series` is still shown in
 * full. Metrics crossed a thread or process boundary: nothing about their shape is trusted.
 *
 * Owns: that mapping and its caps. Does not own: the metrics (devices/<kind>/metrics.ts), drawing
 * (page/).
 */
import { findKind } from '../devices/registry.js';
import type { MetricSeries } from '../devices/kind.js';
import type { ControlSnapshot } from '../platform/run/control.js';
import { summarizeMetrics } from '../platform/run/status.js';
import type { PagePort, PageReport, PageSeries, PageSnapshot } from './wire.js';

/** Numbers listed per port at most (a switch port has about 40). */
export const MAX_COUNTERS = 200;
/** How deep the metrics are walked. */
const MAX_DEPTH = 6;
/** Chart series per port at most. */
const MAX_SERIES = 8;

export function pageSnapshot(snap: ControlSnapshot, reports: PageReport[]): PageSnapshot {
  return {
    at: snap.at,
    name: snap.name,
    runDir: snap.runDir,
    startedAt: snap.startedAt,
    ending: snap.ending,
    vms: snap.vms.map((v) => ({
      name: v.name,
      state: v.state,
      ...(v.pid === undefined ? {} : { pid: v.pid }),
      ...(v.startedAt === undefined ? {} : { startedAt: v.startedAt }),
      ...(v.readyAt === undefined ? {} : { readyAt: v.readyAt }),
      ...(v.endedAt === undefined ? {} : { endedAt: v.endedAt }),
      ...(v.reason === undefined ? {} : { reason: v.reason }),
      ...(v.watchdog === undefined ? {} : { watchdog: { action: v.watchdog.action, timeoutSeconds: v.watchdog.timeoutSeconds, fired: v.watchdog.fired } }),
      ...(v.restarts === undefined || v.restarts === 0 ? {} : { restarts: v.restarts }),
      backends: v.backends,
      actions: v.actions,
      displays: v.displays,
      input: v.input,
    })),
    backends: snap.backends.map((b) => ({
      id: b.id,
      kind: b.kind,
      isolation: b.isolation,
      state: b.state,
      ...(b.pid === undefined ? {} : { pid: b.pid }),
      restarts: b.restarts,
      restart: b.restart,
      vms: b.vms,
      actions: b.actions,
      ports: b.ports.map((p) => pagePort(p.name, p.connected, p.metrics, p.metricsAt)),
    })),
    buses: snap.buses,
    reports,
  };
}

export function pagePort(name: string, connected: boolean, metrics: Record<string, unknown>, metricsAt?: number): PagePort {
  return { name, connected, summary: safe(() => summarizeMetrics(metrics), ''), series: seriesOf(metrics), counters: flatten(metrics), ...(metricsAt === undefined ? {} : { metricsAt }) };
}

/** The kind's chart series for these metrics (none for an unknown kind, or when its `series` throws). */
export function seriesOf(metrics: Record<string, unknown>): PageSeries[] {
  const kind = typeof metrics['device'] === 'string' ? findKind(metrics['device']) : undefined;
  if (kind?.series === undefined || Object.keys(metrics).length === 0) return [];
  const series = safe<MetricSeries[]>(() => kind.series?.(metrics) ?? [], []);
  return series.filter((s) => Number.isFinite(s.value)).slice(0, MAX_SERIES).map((s) => ({ key: s.key, label: s.label, value: s.value, type: s.type, unit: s.unit }));
}

/** Every finite number in `m`, by dotted path, depth-first in key order, at most MAX_COUNTERS. */
export function flatten(m: unknown): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const walk = (v: unknown, path: string, depth: number): void => {
    if (out.length >= MAX_COUNTERS) return;
    if (typeof v === 'number') {
      if (Number.isFinite(v) && path !== '') out.push([path, v]);
      return;
    }
    if (typeof v !== 'object' || v === null || depth >= MAX_DEPTH) return;
    // Arrays walk as objects: indexes become path parts (`streams.0.xruns`).
    for (const [k, x] of Object.entries(v)) walk(x, path === '' ? k : `${path}.${k}`, depth + 1);
  };
  walk(m, '', 0);
  return out;
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback; // a kind's summary of odd metrics must not break the page
  }
}
