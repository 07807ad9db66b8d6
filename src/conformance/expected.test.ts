// SPDX-License-Identifier: Apache-2.0
/** Expected-verdict files: strict parsing, and comparison with results. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../errors.js';
import { compareExpected, parseExpected } from './expected.js';
import type { CheckResult } from './runner.js';

const r = (id: string, verdict: CheckResult['verdict']): CheckResult => ({ id, title: 't', source: 's', level: 'MUST', group: 'queue', devices: 'all', verdict, details: 'why', durationMs: 1 });

test('parseExpected: ID, verdict and reason; comments and blank lines ignored', () => {
  const e = parseExpected('# header\n\nqueue.a FAIL   # known bug: ignores X\nqueue.b REJECT # closes the connection\n  queue.c PASS\n');
  assert.deepEqual([...e.keys()], ['queue.a', 'queue.b', 'queue.c']);
  assert.deepEqual(e.get('queue.a'), { verdict: 'FAIL', reason: 'known bug: ignores X', line: 3 });
});

test('parseExpected: unknown verdicts, missing reasons, duplicates and junk are errors naming the line', () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parseExpected(text, 'f.txt'), (e: unknown) => hasCode(e, 'CONFORMANCE_BAD_EXPECTED') && re.test((e as Error).message));
  bad('queue.a BROKEN # x', /f\.txt:1: unknown verdict 'BROKEN'/);
  bad('\nqueue.a FAIL', /f\.txt:2: queue\.a FAIL needs a reason/);
  bad('queue.a SKIP # x\nqueue.a SKIP # y', /f\.txt:2: queue\.a is listed twice/);
  bad('queue.a FAIL extra # x', /expected `CHECK_ID VERDICT # reason`/);
});

test('compareExpected: unlisted checks must PASS, listed ones match, stale IDs are reported', () => {
  const e = parseExpected('queue.a FAIL # bug\nqueue.gone SKIP # removed check\n');
  const catalog = ['queue.a', 'queue.b', 'queue.c'];
  assert.deepEqual(compareExpected([r('queue.a', 'FAIL'), r('queue.b', 'PASS')], parseExpected('queue.a FAIL # bug'), catalog), []);
  assert.deepEqual(compareExpected([r('queue.a', 'PASS'), r('queue.b', 'REJECT')], e, catalog), [
    'queue.a: expected FAIL, got PASS: why',
    'queue.b: expected PASS, got REJECT: why',
    'queue.gone (line 2): no such check in the catalog (stale entry?)',
  ]);
});
