// SPDX-License-Identifier: Apache-2.0
/**
 * The resolution memo: a memo is found again under the same apt state and query, and is lost as
 * soon as a list file or dpkg's status changes (an apt-get update or an install), or the query does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aptStateFingerprint, readMemo, writeMemo } from './resolve-memo.js';

test('resolve memo: same apt state and query hit; a changed list, status or query misses', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-memo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lists = join(dir, 'lists');
  const status = join(dir, 'status');
  const cache = join(dir, 'cache');
  mkdirSync(lists);
  writeFileSync(join(lists, 'deb.debian.org_Packages'), 'Package: a\n');
  writeFileSync(join(lists, 'lock'), '');
  writeFileSync(status, 'Package: b\n');
  const fp = await aptStateFingerprint(lists, status);
  assert.ok(fp !== undefined);
  const query = { kernelName: 'linux-image-6.12-amd64', tools: ['socat'] };
  await writeMemo(cache, fp, query, { v: 1 });
  assert.deepEqual(await readMemo(cache, await aptStateFingerprint(lists, status), query), { v: 1 });
  assert.equal(await readMemo(cache, fp, { ...query, tools: ['socat', 'fio'] }), undefined, 'another query');
  // The lock file is not part of the state.
  utimesSync(join(lists, 'lock'), new Date(1000), new Date(1000));
  assert.equal(await aptStateFingerprint(lists, status), fp);
  utimesSync(join(lists, 'deb.debian.org_Packages'), new Date(2000), new Date(2000));
  const afterUpdate = await aptStateFingerprint(lists, status);
  assert.notEqual(afterUpdate, fp, 'apt-get update changes the fingerprint');
  assert.equal(await readMemo(cache, afterUpdate, query), undefined);
  writeFileSync(status, 'Package: b\nPackage: c\n');
  assert.notEqual(await aptStateFingerprint(lists, status), afterUpdate, 'an install changes the fingerprint');
  assert.equal(await aptStateFingerprint(join(dir, 'missing'), status), undefined, 'no lists: no memo');
});
