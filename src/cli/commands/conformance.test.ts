// SPDX-License-Identifier: Apache-2.0
/**
 * `avp conformance` as a program: progress on stderr, the text report on stdout ending with
 * `N passed, N failed`, report files, `--expected`, `--list`, exit codes, and usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AVP_BIN } from '../testing/backend-process.js';

const RNG = `${JSON.stringify(process.execPath)} ${AVP_BIN} serve rng --socket-path {socket}`;

/** Runs the CLI to completion (asynchronously: the test's event loop stays free). */
function avp(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AVP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function avpBackendDirs(parent: string): string[] {
  return readdirSync(parent).filter((n) => n.startsWith('avp-backend-'));
}

test('conformance CLI: --exec, --only, a JUnit report, progress on stderr, "N passed, N failed" last, exit 0, nothing left behind', async (t) => {
  const dir = tmp(t);
  // The CLI makes its back-end's folder under TMPDIR: a private one, so that other tests running
  // at the same time cannot make a folder of theirs look like ours.
  const own = join(dir, 'tmp');
  mkdirSync(own);
  const out = join(dir, 'report.xml');
  // The back-end command notes each socket it is given, to show where the CLI made them.
  const sockets = join(dir, 'sockets.txt');
  const recording = `sh -c 'echo "$0" >> ${sockets}; exec ${RNG.replace('{socket}', '"$0"')}' {socket}`;
  const r = await avp(['conformance', '--device', 'rng', '--exec', recording, '--only', 'proto.handshake,rng.', '--skip', 'rng.randomness', '--report', 'junit', '--output', out], { ...process.env, TMPDIR: own });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[lines.length - 1], '6 passed, 0 failed');
  assert.match(r.stdout, /^PASS\s+proto\.handshake\.version1\s/m);
  assert.doesNotMatch(r.stdout, /rng\.randomness/);
  assert.match(r.stderr, /^\[1\/6\] PASS proto\.handshake$/m, 'one progress line per check when stderr is not a terminal');
  assert.match(readFileSync(out, 'utf8'), /<testsuites [^>]*tests="6" failures="0" errors="0"/);
  const used = readFileSync(sockets, 'utf8').trim().split('\n');
  assert.ok(used.length > 0 && used.every((p) => p.startsWith(join(own, 'avp-backend-'))), `the back-ends' sockets were made under TMPDIR: ${used.join(', ')}`);
  assert.deepEqual(avpBackendDirs(own), [], 'the spawned back-end and its directory are gone');
});

test('conformance CLI: --expected turns any verdict change into exit 1; HTML and JSON reports are written', async (t) => {
  const dir = tmp(t);
  const wrong = join(dir, 'expected.txt');
  writeFileSync(wrong, 'rng.bytes FAIL # pretend it was broken\n');
  const html = join(dir, 'r.html');
  const r = await avp(['conformance', '--device', 'rng', '--exec', RNG, '--only', 'rng.bytes', '--expected', wrong, '--report', 'html', '--output', html]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /expected-verdict mismatch: rng\.bytes: expected FAIL, got PASS/);
  assert.equal(r.stdout.trimEnd().split('\n').pop(), '1 passed, 0 failed');
  assert.match(readFileSync(html, 'utf8'), /<!DOCTYPE html>[\s\S]*id="rng\.bytes"/);
  const json = join(dir, 'r.json');
  const ok = await avp(['conformance', '--device', 'rng', '--exec', RNG, '--only', 'rng.bytes', '--report', 'json', '--output', json]);
  assert.equal(ok.code, 0);
  assert.equal((JSON.parse(readFileSync(json, 'utf8')) as { passed: number }).passed, 1);
});

test('conformance CLI: a failing check makes the exit code 1', async (t) => {
  const dir = tmp(t);
  const sock = join(dir, 'gone.sock');
  // Nothing listens: every check is CRASH.
  const r = await avp(['conformance', '--device', 'rng', '--socket-path', sock, '--only', 'proto.handshake.version1', '--timeout', '500']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^CRASH\s+proto\.handshake\.version1/m);
  assert.equal(r.stdout.trimEnd().split('\n').pop(), '0 passed, 1 failed');
  assert.equal(existsSync(sock), false);
});

test('conformance CLI: --list, and usage errors in one line without a stack trace', async () => {
  const list = await avp(['conformance', '--device', 'blk', '--list', '--only', 'blk.flush']);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^blk\.flush\s+device\s+MUST\s+VIRTIO 1\.3/);
  const both = await avp(['conformance', '--device', 'rng', '--socket-path', '/tmp/x', '--exec', 'x {socket}']);
  assert.equal(both.code, 1);
  assert.equal(both.stderr, 'avp: conformance: give exactly one of --socket-path PATH or --exec COMMAND\n');
  const typo = await avp(['conformance', '--device', 'rng', '--exec', RNG, '--only', 'hostile.nope']);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /^avp: 'hostile\.nope' matches no check ID, ID prefix or group/);
  const noPlaceholder = await avp(['conformance', '--device', 'rng', '--exec', 'avp serve rng']);
  assert.equal(noPlaceholder.code, 1);
  assert.match(noPlaceholder.stderr, /has no \{socket\} placeholder/);
  assert.doesNotMatch(noPlaceholder.stderr, /\n\s+at /);
});
