// SPDX-License-Identifier: Apache-2.0
/**
 * Conformance reports: plain text for a terminal, JSON, JUnit XML (for CI), and one
 * self-contained HTML page for people.
 *
 * Owns: the formats. The text report ends with the line `N passed, N failed` (PASS, REJECT and
 * SKIP count as passed; FAIL, WEDGED and CRASH as failed). In JUnit, FAIL is a <failure>, WEDGED
 * and CRASH are <error>s, SKIP is <skipped>, and every test case carries its verdict, level and
 * requirement as properties. The HTML page has a matrix of every check coloured by verdict, summary
 * counts, and a table per group with the requirement, level and details of each check; it needs no
 * network and no script.
 * Does not own: running checks (runner.ts).
 */
import { CHECK_GROUPS, VERDICTS, type Verdict } from '../device/conformance.js';
import type { CheckResult, ConformanceReport } from './runner.js';

export type ReportFormat = 'json' | 'junit' | 'html';
export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'junit', 'html'];

/** `N passed, N failed`: the last line of `avp conformance`'s output. */
export function summaryLine(report: Pick<ConformanceReport, 'passed' | 'failed'>): string {
  return `${report.passed} passed, ${report.failed} failed`;
}

/** `PASS 48, REJECT 2, ...` */
export function countsLine(report: ConformanceReport): string {
  return VERDICTS.map((v) => `${v} ${report.counts[v]}`).join(', ');
}

/** The terminal report: one line per check, the counts, then `N passed, N failed`. */
export function textReport(report: ConformanceReport): string {
  const width = Math.max(...report.results.map((r) => r.id.length), 10);
  const lines = report.results.map((r) => `${r.verdict.padEnd(6)}  ${r.id.padEnd(width)}  ${r.details}`.trimEnd());
  lines.push('');
  lines.push(`${report.device} on ${report.target}: ${countsLine(report)} (${report.results.length} checks in ${(report.durationMs / 1000).toFixed(1)} s)`);
  lines.push(summaryLine(report));
  return `${lines.join('\n')}\n`;
}

export function jsonReport(report: ConformanceReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');
}

function junitCase(device: string, r: CheckResult): string {
  const props = [
    ['verdict', r.verdict],
    ['level', r.level],
    ['source', r.source],
  ]
    .map(([k, v]) => `        <property name="${k}" value="${xml(v ?? '')}"/>`)
    .join('\n');
  let body = `      <properties>\n${props}\n      </properties>\n`;
  if (r.verdict === 'FAIL') body += `      <failure type="FAIL" message="${xml(r.details)}">${xml(r.details)}</failure>\n`;
  else if (r.verdict === 'WEDGED' || r.verdict === 'CRASH') body += `      <error type="${r.verdict}" message="${xml(r.details)}">${xml(r.details)}</error>\n`;
  else if (r.verdict === 'SKIP') body += `      <skipped message="${xml(r.details)}"/>\n`;
  body += `      <system-out>${xml(`${r.verdict}: ${r.details}`)}</system-out>\n`;
  return `    <testcase classname="${xml(`${device}.${r.group}`)}" name="${xml(r.id)}" time="${(r.durationMs / 1000).toFixed(3)}">\n${body}    </testcase>`;
}

export function junitReport(report: ConformanceReport): string {
  const suites = CHECK_GROUPS.map((group) => {
    const rs = report.results.filter((r) => r.group === group);
    if (rs.length === 0) return '';
    const n = (vs: Verdict[]) => rs.filter((r) => vs.includes(r.verdict)).length;
    const time = rs.reduce((t, r) => t + r.durationMs, 0) / 1000;
    return (
      `  <testsuite name="avp-conformance.${xml(report.device)}.${group}" tests="${rs.length}" failures="${n(['FAIL'])}" errors="${n(['WEDGED', 'CRASH'])}" skipped="${n(['SKIP'])}" time="${time.toFixed(3)}" timestamp="${xml(report.startedAt)}">\n` +
      `${rs.map((r) => junitCase(report.device, r)).join('\n')}\n  </testsuite>`
    );
  }).filter((s) => s !== '');
  const total = report.results.length;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="avp-conformance ${xml(report.device)} (${xml(report.target)})" tests="${total}" failures="${report.counts.FAIL}" errors="${report.counts.WEDGED + report.counts.CRASH}" skipped="${report.counts.SKIP}" time="${(report.durationMs / 1000).toFixed(3)}">\n` +
    `${suites.join('\n')}\n</testsuites>\n`
  );
}

/** Verdict colours: background, text. */
const COLOURS: Readonly<Record<Verdict, readonly [string, string]>> = {
  PASS: ['#1a7f37', '#ffffff'],
  REJECT: ['#0969da', '#ffffff'],
  SKIP: ['#8c959f', '#ffffff'],
  FAIL: ['#cf222e', '#ffffff'],
  WEDGED: ['#bc4c00', '#ffffff'],
  CRASH: ['#6e2b8f', '#ffffff'],
};

const MEANING: Readonly<Record<Verdict, string>> = {
  PASS: 'handled as the requirement says',
  REJECT: 'refused the input, kept serving (acceptable)',
  SKIP: 'not applicable',
  FAIL: 'wrong behaviour',
  WEDGED: 'stopped serving valid requests',
  CRASH: 'the back-end died',
};

const GROUP_TITLES: Readonly<Record<string, string>> = {
  protocol: 'vhost-user protocol',
  queue: 'Virtqueue mechanics',
  hostile: 'Hostile driver',
  device: 'Device semantics',
};

/** Text made safe for HTML content and attribute values. */
export function html(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}

function pill(v: Verdict): string {
  return `<span class="pill v-${v}">${v}</span>`;
}

export function htmlReport(report: ConformanceReport): string {
  const css = [
    'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}',
    'main{max-width:1280px;margin:0 auto;padding:24px}',
    'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}',
    '.meta{color:#59636e;margin-bottom:16px}.meta code{background:#eaeef2;padding:1px 5px;border-radius:4px}',
    '.cards{display:flex;gap:10px;flex-wrap:wrap;margin:16px 0}',
    '.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:10px 16px;min-width:110px}',
    '.card .n{font-size:26px;font-weight:600}.card .l{font-size:12px;color:#59636e}',
    '.card.total{border-width:2px}.ok{color:#1a7f37}.bad{color:#cf222e}',
    '.matrix{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:12px 16px}',
    '.mrow{display:flex;align-items:center;gap:10px;margin:4px 0}.mrow .g{width:150px;font-size:12px;color:#59636e}',
    '.cells{display:flex;flex-wrap:wrap;gap:3px}.cell{width:18px;height:18px;border-radius:3px;display:inline-block}',
    '.legend{display:flex;gap:14px;flex-wrap:wrap;margin-top:10px;font-size:12px;color:#59636e}',
    '.legend span{display:inline-flex;align-items:center;gap:5px}',
    'table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d1d9e0;border-radius:8px;overflow:hidden}',
    'th{text-align:left;font-size:12px;color:#59636e;background:#f6f8fa;padding:7px 10px;border-bottom:1px solid #d1d9e0}',
    'td{padding:7px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}',
    'tr:last-child td{border-bottom:0}',
    'td.id code{font-size:13px;font-weight:600}td.id .t{color:#59636e;font-size:12.5px}',
    'td.src{font-size:12px;color:#59636e;max-width:330px}td.det{font-size:12.5px;max-width:420px;overflow-wrap:anywhere}',
    'td.lvl{font-size:12px;font-weight:600}td.ms{font-size:12px;color:#59636e;text-align:right;white-space:nowrap}',
    '.pill{display:inline-block;min-width:62px;text-align:center;border-radius:12px;padding:2px 8px;font-size:12px;font-weight:700;letter-spacing:.3px}',
    ...VERDICTS.map((v) => `.v-${v}{background:${COLOURS[v][0]};color:${COLOURS[v][1]}}`),
    ...(['FAIL', 'WEDGED', 'CRASH'] as const).map((v) => `tr.r-${v} td{background:#fff5f5}`),
  ].join('\n');
  const cards = VERDICTS.map((v) => `<div class="card"><div class="n" style="color:${COLOURS[v][0]}">${report.counts[v]}</div><div class="l">${v} · ${html(MEANING[v])}</div></div>`).join('');
  const totals = `<div class="card total"><div class="n ok">${report.passed}</div><div class="l">passed</div></div><div class="card total"><div class="n ${report.failed > 0 ? 'bad' : 'ok'}">${report.failed}</div><div class="l">failed</div></div>`;
  const groups = CHECK_GROUPS.filter((g) => report.results.some((r) => r.group === g));
  const matrix = groups
    .map((g) => {
      const cells = report.results
        .filter((r) => r.group === g)
        .map((r) => `<a href="#${html(r.id)}" title="${html(`${r.id}: ${r.verdict}`)}"><span class="cell v-${r.verdict}"></span></a>`)
        .join('');
      return `<div class="mrow"><div class="g">${html(GROUP_TITLES[g] ?? g)}</div><div class="cells">${cells}</div></div>`;
    })
    .join('');
  const legend = VERDICTS.map((v) => `<span><span class="cell v-${v}"></span>${v}</span>`).join('');
  const tables = groups
    .map((g) => {
      const rows = report.results
        .filter((r) => r.group === g)
        .map(
          (r) =>
            `<tr id="${html(r.id)}" class="r-${r.verdict}"><td>${pill(r.verdict)}</td><td class="id"><code>${html(r.id)}</code><div class="t">${html(r.title)}</div></td>` +
            `<td class="lvl">${r.level}</td><td class="src">${html(r.source)}</td><td class="det">${html(r.details)}</td><td class="ms">${r.durationMs.toFixed(0)} ms</td></tr>`,
        )
        .join('\n');
      return `<h2>${html(GROUP_TITLES[g] ?? g)}</h2>\n<table><thead><tr><th>Verdict</th><th>Check</th><th>Level</th><th>Requirement</th><th>Details</th><th>Time</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
    })
    .join('\n');
  const offered = report.offered === null ? 'offer unknown' : `features <code>${report.offered.features}</code>, protocol features <code>${report.offered.protocolFeatures ?? 'none'}</code>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>AVP conformance: ${html(report.device)} — ${summaryLine(report)}</title>
<style>
${css}
</style></head>
<body><main>
<h1>AVP conformance report: ${html(report.device)}</h1>
<div class="meta">Back-end <code>${html(report.target)}</code> · ${offered} · ${html(report.startedAt)} · ${report.results.length} checks in ${(report.durationMs / 1000).toFixed(1)} s</div>
<div class="cards">${totals}${cards}</div>
<div class="matrix">${matrix}<div class="legend">${legend}</div></div>
${tables}
</main></body></html>
`;
}

/** The report in `format`. */
export function renderReport(report: ConformanceReport, format: ReportFormat): string {
  switch (format) {
    case 'json':
      return jsonReport(report);
    case 'junit':
      return junitReport(report);
    case 'html':
      return htmlReport(report);
  }
}
