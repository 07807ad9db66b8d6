// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const FIXTURE = new URL('./backend-process.js', import.meta.url).href;

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a test process killed with SIGTERM takes its avp back-end and socket folder with it', async () => {
  const script = `const m = await import(${JSON.stringify(FIXTURE)});
const b = await m.startBackend('rng');
console.log(JSON.stringify({ pid: b.child.pid, dir: b.dir }));
setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => parent.once('exit', (code, signal) => resolve(signal ?? code)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: parent.stdout }).once('line', resolve);
      void exited.then((c) => reject(new Error(`the fixture process ended (${String(c)}) before starting its back-end`)));
    });
    const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
    assert.ok(alive(pid) && existsSync(dir), 'the back-end runs in its folder');
    parent.kill('SIGTERM');
    assert.equal(await exited, 'SIGTERM', 'the test process still ends by the signal');
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(pid), false, 'the back-end process is gone');
    assert.equal(existsSync(dir), false, 'its socket folder is removed');
  } finally {
    parent.kill('SIGKILL');
  }
});
