// SPDX-License-Identifier: Apache-2.0
/** The dashboard's view of metrics: flattening (arrays, depth, caps, odd values) and the kinds' series. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_COUNTERS, flatten, pagePort, seriesOf } from './view.js';

test('flatten: every finite number by dotted path, arrays by index, nothing else', () => {
  assert.deepEqual(flatten({ a: 1, b: { c: 2, d: 'x', e: null, f: true, g: Number.NaN, h: Infinity }, streams: [{ xruns: 3 }, { xruns: 4 }] }), [
    ['a', 1],
    ['b.c', 2],
    ['streams.0.xruns', 3],
    ['streams.1.xruns', 4],
  ]);
  assert.deepEqual(flatten(5), [], 'a bare number has no path');
  assert.deepEqual(flatten(null), []);
});

test('flatten: capped in depth and count (metrics are not trusted)', () => {
  let deep: Record<string, unknown> = { v: 1 };
  for (let i = 0; i < 20; i++) deep = { n: deep };
  assert.deepEqual(flatten(deep), []);
  const wide = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i]));
  assert.equal(flatten(wide).length, MAX_COUNTERS);
});

test('seriesOf: the kind’s series; none for an unknown kind or empty metrics', () => {
  assert.deepEqual(
    seriesOf({ device: 'net', tx: { frames: 5 }, rx: { frames: 7 }, drops: { oversize: 1, noRxBuffers: 2 } }).map((s) => [s.key, s.value, s.type]),
    [
      ['txFrames', 5, 'counter'],
      ['rxFrames', 7, 'counter'],
      ['drops', 3, 'counter'],
    ],
  );
  assert.deepEqual(seriesOf({ device: 'vsock', connections: { open: 2, total: 9 } }).slice(0, 2).map((s) => [s.key, s.value, s.type]), [
    ['open', 2, 'gauge'],
    ['connections', 9, 'counter'],
  ]);
  assert.deepEqual(seriesOf({ device: 'no-such-kind', x: 1 }), []);
  assert.deepEqual(seriesOf({}), []);
});

test('pagePort: a port without metrics yet has a summary, no series, no counters', () => {
  assert.deepEqual(pagePort('a/rng', false, {}), { name: 'a/rng', connected: false, summary: '', series: [], counters: [] });
});
