// SPDX-License-Identifier: Apache-2.0
/** Report formats: the final summary line, JUnit structure and escaping, a self-contained HTML page. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Verdict } from '../device/conformance.js';
import { htmlReport, jsonReport, junitReport, summaryLine, textReport } from './report.js';
import { summarize, type CheckResult, type ConformanceReport } from './runner.js';

function result(id: string, verdict: Verdict, details = ''): CheckResult {
  return { id, title: `title of ${id}`, source: 'VIRTIO 1.3 §2.7 <x> & "y"', level: 'MUST', group: id.startsWith('hostile') ? 'hostile' : 'protocol', devices: 'all', verdict, details, durationMs: 12.5 };
}

function report(results: CheckResult[]): ConformanceReport {
  return { device: 'blk', target: 'qsd --x {socket}', startedAt: '2026-01-01T00:00:00.000Z', durationMs: 1500, offered: { features: '0x1', protocolFeatures: null }, results, ...summarize(results) };
}

const SAMPLE = report([
  result('proto.a', 'PASS', 'fine'),
  result('proto.b', 'SKIP', 'not offered'),
  result('hostile.c', 'REJECT', 'closed <conn> & "left"'),
  result('hostile.d', 'FAIL', 'wrote \u0001 outside'),
  result('hostile.e', 'WEDGED', 'stuck'),
  result('hostile.f', 'CRASH', 'died'),
]);

test('summary: PASS, REJECT and SKIP pass; FAIL, WEDGED and CRASH fail; the text report ends with "N passed, N failed"', () => {
  assert.deepEqual([SAMPLE.passed, SAMPLE.failed], [3, 3]);
  assert.deepEqual(SAMPLE.counts, { PASS: 1, REJECT: 1, SKIP: 1, FAIL: 1, WEDGED: 1, CRASH: 1 });
  const lines = textReport(SAMPLE).trimEnd().split('\n');
  assert.equal(lines[lines.length - 1], '3 passed, 3 failed');
  assert.equal(summaryLine({ passed: 54, failed: 0 }), '54 passed, 0 failed');
  assert.match(lines[0] ?? '', /^PASS\s+proto\.a\s+fine$/);
});

test('JSON: the report round-trips', () => {
  assert.deepEqual(JSON.parse(jsonReport(SAMPLE)), JSON.parse(JSON.stringify(SAMPLE)));
});

test('JUnit: one suite per group, FAIL as failure, WEDGED and CRASH as errors, SKIP as skipped, text escaped', () => {
  const x = junitReport(SAMPLE);
  assert.match(x, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites [^>]*tests="6" failures="1" errors="2" skipped="1"/);
  assert.match(x, /<testsuite name="avp-conformance\.blk\.protocol" tests="2" failures="0" errors="0" skipped="1"/);
  assert.match(x, /<testsuite name="avp-conformance\.blk\.hostile" tests="4" failures="1" errors="2" skipped="0"/);
  assert.match(x, /<testcase classname="blk\.hostile" name="hostile\.d" time="0\.013">[\s\S]*?<failure type="FAIL"/);
  assert.match(x, /name="hostile\.e"[\s\S]*?<error type="WEDGED"/);
  assert.match(x, /name="hostile\.f"[\s\S]*?<error type="CRASH"/);
  assert.match(x, /closed &lt;conn&gt; &amp; &quot;left&quot;/);
  assert.doesNotMatch(x, /\u0001/, 'control characters are dropped (not allowed in XML 1.0)');
  assert.equal((x.match(/<testcase /g) ?? []).length, 6);
  assert.equal((x.match(/<testcase /g) ?? []).length, (x.match(/<\/testcase>/g) ?? []).length);
});

test('HTML: one self-contained page with every check, its verdict colour, requirement, level and the counts', () => {
  const h = htmlReport(SAMPLE);
  assert.match(h, /^<!DOCTYPE html>/);
  assert.doesNotMatch(h, /<script|<link|src="http|url\(/, 'no script and nothing loaded from elsewhere');
  for (const r of SAMPLE.results) {
    assert.ok(h.includes(`id="${r.id}"`), r.id);
    assert.ok(h.includes(`class="pill v-${r.verdict}"`), r.id);
  }
  assert.ok(h.includes('VIRTIO 1.3 §2.7 &lt;x&gt; &amp; &quot;y&quot;'), 'requirement shown, escaped');
  assert.ok(h.includes('3 passed, 3 failed'));
  assert.match(h, /\.v-FAIL\{background:#cf222e/);
});
