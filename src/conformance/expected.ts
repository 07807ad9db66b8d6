// SPDX-License-Identifier: Apache-2.0
/**
 * Expected-verdict files: what a back-end nobody here controls is known to answer, checked in so
 * that a test fails when anything changes (after protobuf-es' failing-test lists,
 * code-style-lessons.md §1 item 14).
 *
 * Format, one check per line: `CHECK_ID VERDICT # reason`. Every check not listed is expected to
 * PASS, so the file lists exactly the non-PASS verdicts, each with the reason it is not a PASS.
 * Blank lines and lines starting with `#` are comments.
 * Owns: parsing (strict: unknown verdicts, duplicates and missing reasons are errors) and
 * comparing results with the file. Does not own: running checks.
 */
import { VERDICTS, type Verdict } from '../device/conformance.js';
import { ConformanceError } from './errors.js';
import type { CheckResult } from './runner.js';

export interface ExpectedEntry {
  readonly verdict: Verdict;
  readonly reason: string;
  readonly line: number;
}

function isVerdict(s: string): s is Verdict {
  return (VERDICTS as readonly string[]).includes(s);
}

/** @throws ConformanceError CONFORMANCE_BAD_EXPECTED naming the line. */
export function parseExpected(text: string, name = 'expected-verdict file'): Map<string, ExpectedEntry> {
  const out = new Map<string, ExpectedEntry>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const hash = trimmed.indexOf('#');
    const head = (hash < 0 ? trimmed : trimmed.slice(0, hash)).trim().split(/\s+/);
    const reason = hash < 0 ? '' : trimmed.slice(hash + 1).trim();
    const bad = (why: string) => new ConformanceError('CONFORMANCE_BAD_EXPECTED', `${name}:${line}: ${why}`);
    const [id, verdict, extra] = head;
    if (id === undefined || verdict === undefined || extra !== undefined) throw bad('expected `CHECK_ID VERDICT # reason`');
    if (!isVerdict(verdict)) throw bad(`unknown verdict '${verdict}' (one of ${VERDICTS.join(', ')})`);
    if (verdict !== 'PASS' && reason === '') throw bad(`${id} ${verdict} needs a reason after '#'`);
    if (out.has(id)) throw bad(`${id} is listed twice`);
    out.set(id, { verdict, reason, line });
  });
  return out;
}

/**
 * Differences between results and expectations: a check whose verdict is not the expected one
 * (PASS when unlisted), and listed IDs that are no check of `catalogIds` (stale entries).
 */
export function compareExpected(results: readonly CheckResult[], expected: ReadonlyMap<string, ExpectedEntry>, catalogIds: readonly string[]): string[] {
  const problems: string[] = [];
  for (const r of results) {
    const want = expected.get(r.id)?.verdict ?? 'PASS';
    if (r.verdict !== want) problems.push(`${r.id}: expected ${want}, got ${r.verdict}: ${r.details}`);
  }
  for (const [id, e] of expected) {
    if (!catalogIds.includes(id)) problems.push(`${id} (line ${e.line}): no such check in the catalog (stale entry?)`);
  }
  return problems;
}
