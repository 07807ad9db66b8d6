// SPDX-License-Identifier: Apache-2.0
/**
 * Starting back-end programs for the front-end: command splitting without a shell, the `{socket}`
 * placeholder, waiting for the socket, seeing a death synchronously, restarting, and cleaning up
 * (no process, socket or directory left behind, pass or fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hasCode } from '../errors.js';
import { closeQuiet, connectUnix } from '../sys/index.js';
import { commandArgv, splitCommand, SpawnedBackend } from './spawn.js';

const AVP = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));
const RNG = `${JSON.stringify(process.execPath)} ${AVP} serve rng --socket-path {socket}`;

test('splitCommand: whitespace, quotes and escapes as a shell splits simple commands', () => {
  assert.deepEqual(splitCommand('a  b\tc'), ['a', 'b', 'c']);
  assert.deepEqual(splitCommand(`qsd --x 'a b' "c d" e\\ f`), ['qsd', '--x', 'a b', 'c d', 'e f']);
  assert.deepEqual(splitCommand(`x "q\\"uote \\\\ \\$ \\n" 'lit\\eral'`), ['x', 'q"uote \\ $ \\n', 'lit\\eral']);
  assert.deepEqual(splitCommand(`x '' "" a'b'"c"`), ['x', '', '', 'abc']);
  assert.deepEqual(splitCommand('p --opt=addr.path={socket},x=1'), ['p', '--opt=addr.path={socket},x=1']);
  for (const bad of [`x 'open`, 'x "open', 'x \\', '   ']) {
    assert.throws(() => splitCommand(bad), (e: unknown) => hasCode(e, 'BACKEND_PROCESS_BAD_COMMAND'), bad);
  }
});

test('commandArgv: every {socket} is replaced; a command without one is refused', () => {
  assert.deepEqual(commandArgv('b --s {socket} --t x{socket}y', '/tmp/s'), ['b', '--s', '/tmp/s', '--t', 'x/tmp/sy']);
  assert.throws(() => commandArgv('b --socket-path /tmp/x', '/tmp/s'), (e: unknown) => hasCode(e, 'BACKEND_PROCESS_BAD_COMMAND'));
});

test('SpawnedBackend: waits until the socket accepts, sees a SIGKILL without the event loop, restarts, stops and cleans up', async (t) => {
  const b = await SpawnedBackend.start(RNG);
  t.after(() => b.stop());
  closeQuiet(connectUnix(b.socketPath));
  assert.equal(b.isAlive(), true);
  assert.equal(b.starts, 1);
  const pid = b.pid;
  assert.ok(pid !== undefined);
  process.kill(pid, 'SIGKILL');
  // No await: the front-end blocks the event loop while it drives a back-end, and must still see the death.
  const deadline = Date.now() + 10_000;
  while (b.isAlive() && Date.now() < deadline);
  assert.equal(b.isAlive(), false, 'death seen synchronously');
  assert.deepEqual(await b.exited, { code: null, signal: 'SIGKILL' });
  await b.restart();
  assert.equal(b.starts, 2);
  assert.equal(b.isAlive(), true);
  closeQuiet(connectUnix(b.socketPath));
  const dir = b.dir;
  const exit = await b.stop();
  // Clean exit, or SIGTERM's default action if it came before the program installed its handler.
  assert.ok(exit?.code === 0 || exit?.signal === 'SIGTERM', `ended by SIGTERM: ${JSON.stringify(exit)}`);
  assert.equal(existsSync(dir), false, 'temporary directory removed');
  assert.equal(await b.stop(), exit, 'stop is idempotent');
});

test('SpawnedBackend: a program that cannot start, or exits before listening, is reported with its output and cleaned up', async () => {
  await assert.rejects(SpawnedBackend.start('/nonexistent/avp-backend --socket {socket}'), (e: unknown) => hasCode(e, 'BACKEND_PROCESS_SPAWN_FAILED'));
  const early = `${JSON.stringify(process.execPath)} -e "console.error('no device here'); process.exit(3)" {socket}`;
  await assert.rejects(SpawnedBackend.start(early), (e: unknown) => {
    assert.ok(hasCode(e, 'BACKEND_PROCESS_EXITED'));
    assert.match((e as Error).message, /exit code 3[\s\S]*no device here/);
    return true;
  });
  await assert.rejects(SpawnedBackend.start(`${JSON.stringify(process.execPath)} -e "setTimeout(() => {}, 60000)" {socket}`, { readyTimeoutMs: 300 }), (e: unknown) => hasCode(e, 'BACKEND_PROCESS_NOT_READY'));
});
