// SPDX-License-Identifier: Apache-2.0
/**
 * The fs conformance catalog against both back-ends on the same kind of share (a folder holding
 * hello.txt, 4096 bytes of 0x3c): virtiofsd, the C one of Debian 12's qemu-system-common 7.2
 * that scripts/setup.sh installs (conformance/virtiofsd.ts says why that one), and AVP's
 * `avp serve fs`. Each must give exactly the verdicts of its checked-in file:
 * conformance/expected/virtiofsd-fs.txt and devices/fs/conformance.expected.txt. The fs checks of
 * both are printed side by side.
 *
 * virtiofsd serves one connection per process and several of the hostile checks kill it
 * (assertions, SIGBUS); which check the runner charges a crash to then depends on timing. So each
 * check gets its own respawner (conformance/virtiofsd.ts), and a virtiofsd killed by a signal during
 * the check makes it CRASH whatever the runner saw of it: verdicts do not move between runs.
 * Skipped when virtiofsd is not installed, except under CI, where setup.sh must have installed it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogFor, fullCatalog } from './catalog.js';
import { conformanceFor } from './devices.js';
import { compareExpected, parseExpected } from './expected.js';
import { runConformance, spawnedTarget, type CheckResult } from './runner.js';
import { expectedFile, kindExpectedFile, runAgainstExpected } from './testing.js';
import { SpawnedBackend } from '../vhost-user/spawn.js';
import { CRASHED_STATUS, VIRTIOFSD_RESPAWNER, findVirtiofsd } from './virtiofsd.js';

const virtiofsd = findVirtiofsd();
const isRoot = process.getuid?.() === 0;
const skip = virtiofsd === undefined ? 'virtiofsd is not installed (scripts/setup.sh installs it)' : !isRoot ? 'virtiofsd -o sandbox=chroot needs root' : false;
const AVP = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));
const HELLO = Buffer.alloc(4096, 0x3c);

function share(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'avp-fs-conf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hello.txt'), HELLO);
  return dir;
}

const results = new Map<string, { virtiofsd?: CheckResult; avp?: CheckResult }>();

test('CI installs virtiofsd', { skip: process.env['CI'] === undefined && 'only under CI' }, () => {
  assert.notEqual(virtiofsd, undefined, 'scripts/setup.sh installs /usr/local/libexec/avp/virtiofsd');
});

test('conformance: virtiofsd 7.2 (Debian 12), each check on a fresh virtiofsd', { skip }, async (t) => {
  const dir = share(t);
  const conf = conformanceFor('fs');
  const command = `${process.execPath} ${VIRTIOFSD_RESPAWNER} --socket-path {socket} --shared-dir ${dir} --binary ${virtiofsd ?? ''}`;
  const got: CheckResult[] = [];
  for (const check of catalogFor(conf)) {
    const backend = await SpawnedBackend.start(command);
    let result: CheckResult | undefined;
    let tail = '';
    try {
      const report = await runConformance({ device: conf, checks: [check], target: spawnedTarget(backend), timeoutMs: 2000 });
      result = report.results[0];
      tail = backend.logTail(600);
    } finally {
      const exit = await backend.stop();
      const crashed = exit !== undefined && (exit.code === CRASHED_STATUS || (exit.signal !== null && exit.signal !== 'SIGTERM' && exit.signal !== 'SIGKILL'));
      if (result !== undefined && crashed && result.verdict !== 'CRASH') result = { ...result, verdict: 'CRASH', details: `virtiofsd was killed by a signal during this check (the runner saw ${result.verdict}: ${result.details}); ${tail.replaceAll('\n', ' | ')}` };
    }
    assert.ok(result !== undefined, `${check.id}: no result`);
    got.push(result);
    results.set(check.id, { ...results.get(check.id), virtiofsd: result });
  }
  const want = parseExpected(readFileSync(expectedFile('virtiofsd-fs.txt'), 'utf8'));
  const problems = compareExpected(got, want, fullCatalog().map((c) => c.id));
  assert.deepEqual(problems, []);
  assert.ok(readFileSync(join(dir, 'hello.txt')).equals(HELLO), 'the checks left hello.txt as it was');
});

test('conformance: avp serve fs on the same share, and the fs checks of both side by side', { skip }, async (t) => {
  const dir = share(t);
  const { report, problems } = await runAgainstExpected('fs', `${process.execPath} ${AVP} serve fs --socket-path {socket} --shared-dir ${dir} --tag conf`, kindExpectedFile('fs', 'conformance.expected.txt'));
  for (const r of report.results) results.set(r.id, { ...results.get(r.id), avp: r });
  const rows = [...results].filter(([id]) => id.startsWith('fs.')).map(([id, r]) => `${id.padEnd(28)} avp ${(r.avp?.verdict ?? '-').padEnd(7)} virtiofsd ${r.virtiofsd?.verdict ?? '-'}`);
  t.diagnostic(`fs checks, AVP vs virtiofsd:\n${rows.join('\n')}`);
  assert.deepEqual(problems, []);
  assert.ok(readFileSync(join(dir, 'hello.txt')).equals(HELLO));
});
