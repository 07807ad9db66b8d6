// SPDX-License-Identifier: Apache-2.0
/**
 * The benchmark report of `npm run bench:all`: one self-contained HTML page (no scripts, inline
 * SVG) with, per benchmark, the machine load around it, a bar per case of how AVP compares with
 * the peer (> 1: AVP better; the line at 1 is parity; rates compare AVP/peer, latencies
 * peer/AVP), every round of both as dots relative to the peer's median (the spread), and the
 * table of medians.
 */
import { html } from '../conformance/report.js';
import { describeLoad, isIdle } from './load.js';
import { advantage, median, type BenchOutput, type Comparison } from './results.js';

const BAR_W = 360;
const ROW_H = 26;
const LABEL_W = 260;
/** Longest case label drawn in the chart (the table has the whole name). */
const LABEL_CHARS = 40;

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function clip(label: string): string {
  return label.length <= LABEL_CHARS ? label : `${label.slice(0, LABEL_CHARS - 1)}…`;
}

/** The largest factor the chart shows (ratios beyond it are clipped and labelled). */
function chartMax(comparisons: readonly Comparison[]): number {
  const xs = comparisons.flatMap((c) => {
    const p = median(c.peer);
    const rel = (v: number) => (c.higherIsBetter ? v / p : p / v);
    return [advantage(c), ...c.avp.map(rel), ...c.peer.map(rel)];
  });
  const finite = xs.filter((x) => Number.isFinite(x));
  return Math.min(4, Math.max(1.5, ...finite) * 1.1);
}

/** Bars of the advantage per case, with every round of AVP (filled) and the peer (hollow) as dots. */
export function comparisonChart(comparisons: readonly Comparison[]): string {
  const max = chartMax(comparisons);
  const x = (v: number) => LABEL_W + (Math.min(Math.max(v, 0), max) / max) * BAR_W;
  const height = comparisons.length * ROW_H + 24;
  const rows = comparisons.map((c, i) => {
    const y = i * ROW_H + 4;
    const a = advantage(c);
    const p = median(c.peer);
    const rel = (v: number) => (c.higherIsBetter ? v / p : p / v);
    const colour = !Number.isFinite(a) ? '#999' : a >= 1 ? '#2e7d32' : '#c62828';
    const bar = Number.isFinite(a) ? `<rect x="${LABEL_W}" y="${y + 4}" width="${(x(a) - LABEL_W).toFixed(1)}" height="${ROW_H - 10}" fill="${colour}" opacity="0.35"/>` : '';
    const dots = [
      ...c.peer.map((v) => `<circle cx="${x(rel(v)).toFixed(1)}" cy="${y + ROW_H / 2 - 1}" r="3.5" fill="none" stroke="#555"><title>${html(c.peerName)}: ${fmt(v)} ${html(c.unit)}</title></circle>`),
      ...c.avp.map((v) => `<circle cx="${x(rel(v)).toFixed(1)}" cy="${y + ROW_H / 2 - 1}" r="3.5" fill="${colour}"><title>AVP: ${fmt(v)} ${html(c.unit)}</title></circle>`),
    ].join('');
    return (
      `<text x="${LABEL_W - 8}" y="${y + ROW_H / 2 + 3}" text-anchor="end">${html(clip(`${c.case} (${c.unit})`))}</text>${bar}${dots}` +
      `<text x="${LABEL_W + BAR_W + 8}" y="${y + ROW_H / 2 + 3}">${Number.isFinite(a) ? `${fmt(a)}x` : 'n/a'}</text>`
    );
  });
  const one = x(1);
  const axis = [0.5, 1, 1.5, 2, 3, 4]
    .filter((t) => t <= max)
    .map((t) => `<line x1="${x(t)}" y1="0" x2="${x(t)}" y2="${height - 18}" stroke="#ddd"/><text x="${x(t)}" y="${height - 4}" text-anchor="middle" class="ax">${t}x</text>`)
    .join('');
  return (
    `<svg class="chart" width="${LABEL_W + BAR_W + 70}" height="${height}" role="img" aria-label="AVP compared with the peer per case">` +
    `${axis}<line x1="${one}" y1="0" x2="${one}" y2="${height - 18}" stroke="#333" stroke-dasharray="4 3"/>${rows.join('')}</svg>`
  );
}

function table(comparisons: readonly Comparison[]): string {
  const rows = comparisons.map((c) => {
    const a = advantage(c);
    return (
      `<tr><td>${html(c.case)}</td><td>${html(c.unit)}${c.higherIsBetter ? '' : ' (lower is better)'}</td><td class="n">${fmt(median(c.avp))}</td>` +
      `<td class="n">${fmt(median(c.peer))}</td><td class="n ${Number.isFinite(a) ? (a >= 1 ? 'good' : 'bad') : ''}">${Number.isFinite(a) ? `${fmt(a)}x` : 'n/a'}</td>` +
      `<td class="n">${c.avp.length}/${c.peer.length}</td></tr>`
    );
  });
  const peer = comparisons[0]?.peerName ?? 'peer';
  return `<table><thead><tr><th>case</th><th>unit</th><th>AVP median</th><th>${html(peer)} median</th><th>AVP advantage</th><th>rounds</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The whole page for the outputs of one bench:all run. */
export function benchReportHtml(outputs: readonly BenchOutput[], meta: { startedAt: string; node: string; failures: ReadonlyArray<{ bench: string; error: string }> }): string {
  const sections = outputs.map((o) => {
    const load = [o.loadBefore === undefined ? undefined : ['before', o.loadBefore] as const, o.loadAfter === undefined ? undefined : ['after', o.loadAfter] as const]
      .filter((l) => l !== undefined)
      .map(([when, s]) => `<div class="${isIdle(s) ? 'load' : 'load warn'}">${html(describeLoad(when, s))}</div>`)
      .join('');
    const notes = o.notes.map((n) => `<li>${html(n)}</li>`).join('');
    // A benchmark without a peer (boot) has only notes; one whose peer was missing says so.
    const body = o.comparisons.length > 0 ? `${comparisonChart(o.comparisons)}${table(o.comparisons)}` : o.notes.length > 0 ? '' : '<p>No comparison: the peer was not available.</p>';
    return `<section><h2>${html(o.bench)}</h2>${load}${body}${notes === '' ? '' : `<ul class="notes">${notes}</ul>`}</section>`;
  });
  const failed = meta.failures.map((f) => `<li><b>${html(f.bench)}</b>: ${html(f.error)}</li>`).join('');
  const all = outputs.flatMap((o) => o.comparisons);
  const ahead = all.filter((c) => advantage(c) >= 1).length;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>AVP benchmarks: ahead in ${ahead} of ${all.length} cases</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.good{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
.load{color:#555;font-size:13px}.warn{color:#c62828;font-weight:600}.chart text{font-size:12px}.chart .ax{fill:#777;font-size:11px}
.notes{color:#444;font-size:13px}.fail{color:#c62828}
</style></head><body>
<h1>AVP benchmarks</h1>
<p>${html(meta.startedAt)} · node ${html(meta.node)} · AVP ahead in ${ahead} of ${all.length} cases. Bars: how AVP compares with the peer measured in the same run (AVP/peer for rates, peer/AVP for latencies; &gt; 1 is better, the dashed line is parity). Dots: every round, filled for AVP and hollow for the peer, relative to the peer's median.</p>
${failed === '' ? '' : `<ul class="fail">${failed}</ul>`}
${sections.join('\n')}
</body></html>
`;
}
