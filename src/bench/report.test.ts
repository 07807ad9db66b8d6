// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyBetween, cpuTimes, describeLoad, isIdle } from './load.js';
import { benchReportHtml, comparisonChart } from './report-html.js';
import { advantage, emitBenchOutput, median, type Comparison } from './results.js';

const iops: Comparison = { bench: 'blk', case: 'randread-4k-qd32', unit: 'IOPS', higherIsBetter: true, peerName: 'qemu-storage-daemon', avp: [120, 100, 110], peer: [100, 90, 80] };
const p99: Comparison = { bench: 'blk', case: 'randread-4k-qd1', unit: 'p99 us', higherIsBetter: false, peerName: 'qemu-storage-daemon', avp: [300, 400], peer: [100, 100] };

test('median: odd and even counts, unsorted input, NaN for none', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('advantage: AVP/peer for rates, peer/AVP for latencies, NaN without both', () => {
  assert.equal(advantage(iops), 110 / 90);
  assert.equal(advantage(p99), 100 / 350);
  assert.ok(Number.isNaN(advantage({ ...iops, peer: [] })));
  assert.ok(Number.isNaN(advantage({ ...iops, avp: [0] })));
});

test('cpuTimes and busyBetween: busy share from two /proc/stat readings', () => {
  const a = cpuTimes('cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n');
  assert.deepEqual(a, { total: 1000, idle: 800 });
  const b = cpuTimes('cpu  150 0 150 1500 200 0 0 0 0 0\n');
  assert.equal(busyBetween(a, b), 10);
  assert.equal(busyBetween(a, a), 0);
  assert.throws(() => cpuTimes('intr 1 2 3\n'), /no aggregate cpu line/);
});

test('describeLoad: an idle sample is stated, a busy one carries the warning', () => {
  const idle = { load1: 0.05, busyPercent: 2, cores: 2 };
  const busy = { load1: 3.2, busyPercent: 75, cores: 2 };
  assert.ok(isIdle(idle) && !isIdle(busy));
  assert.doesNotMatch(describeLoad('before', idle), /WARNING/);
  assert.match(describeLoad('after', busy), /after: load average 3\.20 on 2 cores, CPU 75\.0% busy -- WARNING: not idle/);
});

test('emitBenchOutput: writes to $AVP_BENCH_JSON only when set', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-bench-test-'));
  try {
    const file = join(dir, 'out.json');
    emitBenchOutput({ bench: 'blk', comparisons: [iops], notes: [] }, {});
    assert.throws(() => readFileSync(file));
    emitBenchOutput({ bench: 'blk', comparisons: [iops], notes: ['n'] }, { AVP_BENCH_JSON: file });
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { bench: 'blk', comparisons: [iops], notes: ['n'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('comparisonChart: one bar per case coloured by who is ahead, a dot per round, labels escaped', () => {
  const svg = comparisonChart([iops, p99, { ...iops, case: '<x>&', peer: [] }]);
  assert.equal((svg.match(/<rect /g) ?? []).length, 2, 'no bar for a case without a peer');
  assert.equal((svg.match(/<circle /g) ?? []).length, 3 + 3 + 2 + 2 + 3, 'every round of both sides');
  assert.match(svg, /fill="#2e7d32" opacity/); // AVP ahead on IOPS
  assert.match(svg, /fill="#c62828" opacity/); // behind on p99
  assert.match(svg, />1\.22x</);
  assert.match(svg, />0\.29x</);
  assert.match(svg, /&lt;x&gt;&amp; \(IOPS\)/);
  assert.doesNotMatch(svg, /<x>/);
});

test('benchReportHtml: a section per benchmark, the load warning, failures and the summary count', () => {
  const page = benchReportHtml(
    [
      { bench: 'blk', comparisons: [iops, p99], loadBefore: { load1: 0.1, busyPercent: 1, cores: 2 }, loadAfter: { load1: 2, busyPercent: 60, cores: 2 }, notes: ['harness ceiling <1M IOPS>'] },
      { bench: 'fs', comparisons: [], notes: [] },
    ],
    { startedAt: '2026-12-07T10:00:00Z', node: 'v20', failures: [{ bench: 'net', error: 'exited with status 1' }] },
  );
  assert.match(page, /<title>AVP benchmarks: ahead in 1 of 2 cases<\/title>/);
  assert.match(page, /<h2>blk<\/h2>/);
  assert.match(page, /<h2>fs<\/h2><p>No comparison/);
  assert.match(page, /class="load warn">machine load after/);
  assert.match(page, /harness ceiling &lt;1M IOPS&gt;/);
  assert.match(page, /<b>net<\/b>: exited with status 1/);
});
