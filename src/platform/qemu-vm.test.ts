// SPDX-License-Identifier: Apache-2.0
/**
 * QemuVm, withVm and runGuest driven against a stand-in QEMU: a small Node program that prints
 * console lines, exits, hangs or ignores SIGTERM as told. Checks the line cursor, timeouts and
 * exits carrying the console tail, SIGTERM → SIGKILL escalation, and that no VM outlives its
 * test or its Node process. The real QEMU is exercised by image.e2e.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '../errors.js';
import { QemuVm, liveVmCount, runGuest, withVm, type QemuVmOptions, type VmSpec } from './qemu.js';

let dir = '';
let fake = '';
const SPEC: VmSpec = { kernel: '/nonexistent/vmlinuz', initrd: '/nonexistent/initrd' };

const FAKE_QEMU = `
const mode = process.env.FAKE_MODE;
const out = (s) => process.stdout.write(s);
if (mode === 'lines') {
  out('boot 1\\r\\nAVP-GUEST: READY\\nsecond');
  setTimeout(() => { out(' half\\nthird\\nno newline at the end'); process.exit(0); }, 50);
} else if (mode === 'hang') {
  out('hello\\n');
  setInterval(() => {}, 1000);
} else if (mode === 'stubborn') {
  process.on('SIGTERM', () => out('ignoring SIGTERM\\n'));
  out('stubborn\\n');
  setInterval(() => {}, 1000);
} else if (mode === 'guest') {
  out('AVP-GUEST: READY\\nAVP-GUEST: KV answer=42\\nAVP-GUEST: KV msg=a b\\nAVP-GUEST: EXIT 3\\n');
  setTimeout(() => process.exit(0), 20);
} else if (mode === 'fail') {
  process.stderr.write('qemu-system-x86_64: -device foo: Device not found\\n');
  process.exit(1);
} else if (mode === 'many') {
  for (let i = 0; i < 50; i++) out('line ' + i + '\\n');
  setTimeout(() => process.exit(0), 20);
}
`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'avp-qemu-vm-test-'));
  fake = join(dir, 'stand-in-vm'); // not named *qemu*, so that `pgrep qemu` finds only real ones
  await writeFile(fake, `#!${process.execPath}\n${FAKE_QEMU}`);
  await chmod(fake, 0o755);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function opts(mode: string, extra: QemuVmOptions = {}): QemuVmOptions {
  return { binary: fake, env: { ...process.env, FAKE_MODE: mode }, ...extra };
}

async function start(mode: string, extra: QemuVmOptions = {}): Promise<QemuVm> {
  return QemuVm.spawn(fake, [], opts(mode, extra));
}

test('waitForLine: finds lines that came before the call, in order, across chunk borders', async () => {
  const vm = await start('lines');
  try {
    await vm.exited; // every line is in before the first wait
    assert.deepEqual((await vm.waitForLine(/READY/)).index, 11);
    assert.equal((await vm.waitForLine(/^second (\w+)$/))[1], 'half');
    // The cursor is past 'second half': a pattern that only matched earlier lines is not found again.
    await assert.rejects(vm.waitForLine(/READY/, 1000), (e: unknown) => hasCode(e, 'QEMU_EXITED'));
    assert.deepEqual(vm.lines, ['boot 1', 'AVP-GUEST: READY', 'second half', 'third', 'no newline at the end']);
    assert.deepEqual(await vm.exited, { code: 0, signal: null });
  } finally {
    await vm.kill();
  }
});

test('waitForLine: a global regex behaves like a plain one', async () => {
  const vm = await start('lines');
  try {
    const g = /third/g;
    assert.equal((await vm.waitForLine(g))[0], 'third');
    assert.equal(g.lastIndex, 0);
  } finally {
    await vm.kill();
  }
});

test('waitForLine: timeout rejects with the console tail and QEMU keeps running', async () => {
  const vm = await start('hang');
  try {
    await vm.waitForLine(/hello/);
    await assert.rejects(vm.waitForLine(/never/, 200), (e: unknown) => {
      assert.ok(hasCode(e, 'QEMU_CONSOLE_TIMEOUT'));
      assert.match((e as Error).message, /within 200 ms[\s\S]*\| hello/);
      return true;
    });
    assert.equal(vm.exitStatus, undefined);
  } finally {
    const exit = await vm.kill();
    assert.equal(exit.signal, 'SIGTERM');
  }
});

test('waitForLine: QEMU exiting first rejects with its status, stderr and the tail', async () => {
  const vm = await start('fail');
  try {
    await assert.rejects(vm.waitForLine(/READY/), (e: unknown) => {
      assert.ok(hasCode(e, 'QEMU_EXITED'));
      assert.equal((e as { exitCode?: number }).exitCode, 1);
      assert.match((e as Error).message, /status 1[\s\S]*\[qemu stderr\] qemu-system-x86_64: -device foo: Device not found/);
      return true;
    });
  } finally {
    await vm.kill();
  }
});

test('error tail holds the last 30 lines only', async () => {
  const vm = await start('many');
  try {
    const e = await vm.waitForLine(/never/).catch((x: unknown) => x);
    const tail = (e as { consoleTail: string[] }).consoleTail;
    assert.equal(tail.length, 30);
    assert.equal(tail[0], 'line 20');
    assert.equal(tail[29], 'line 49');
  } finally {
    await vm.kill();
  }
});

test('kill: SIGKILL after the grace period when SIGTERM is ignored; kill is idempotent', async () => {
  const vm = await start('stubborn', { killGraceMs: 300 });
  await vm.waitForLine(/stubborn/);
  const exit = await vm.kill();
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(await vm.kill(), exit);
  assert.ok(vm.lines.includes('ignoring SIGTERM'));
});

test('withVm: kills QEMU when the body throws', async () => {
  let seen: QemuVm | undefined;
  await assert.rejects(
    withVm(
      SPEC,
      async (vm) => {
        seen = vm;
        await vm.waitForLine(/hello/);
        throw new Error('test body failed');
      },
      opts('hang'),
    ),
    /test body failed/,
  );
  assert.ok(seen);
  assert.equal(seen.exitStatus?.signal, 'SIGTERM');
  assert.equal(liveVmCount(), 0);
});

test('runGuest: status, kv results and timings', async () => {
  const run = await runGuest(SPEC, opts('guest'));
  assert.equal(run.status, 3);
  assert.equal(run.kv.get('answer'), '42');
  assert.equal(run.kv.get('msg'), 'a b');
  assert.deepEqual(run.exit, { code: 0, signal: null });
  assert.ok(run.readyMs <= run.totalMs);
});

test('runGuest: expectStatus mismatch is GUEST_SCRIPT_FAILED with the tail', async () => {
  await assert.rejects(runGuest(SPEC, { ...opts('guest'), expectStatus: 0 }), (e: unknown) => {
    assert.ok(hasCode(e, 'GUEST_SCRIPT_FAILED'));
    assert.match((e as Error).message, /status 3[\s\S]*EXIT 3/);
    return true;
  });
  assert.equal(liveVmCount(), 0);
});

test('runGuest: overall timeout kills a hung guest', async () => {
  await assert.rejects(runGuest(SPEC, { ...opts('hang'), timeoutMs: 300 }), (e: unknown) => hasCode(e, 'QEMU_CONSOLE_TIMEOUT'));
  assert.equal(liveVmCount(), 0);
});

test('startVm: a missing QEMU binary is QEMU_NOT_INSTALLED and names scripts/setup.sh', async () => {
  await assert.rejects(
    withVm(SPEC, async () => undefined, { binary: join(dir, 'no-such-qemu') }),
    (e: unknown) => hasCode(e, 'QEMU_NOT_INSTALLED') && /bash scripts\/setup\.sh/.test((e as Error).message),
  );
});

/** Runs a Node child that starts a stand-in VM and then ends as `how` says; returns the VM's pid. */
async function orphanCheck(how: 'exit' | 'SIGTERM'): Promise<{ vmPid: number; childSignal: NodeJS.Signals | null }> {
  const moduleUrl = new URL('./qemu.js', import.meta.url).href;
  const program = `
    const { QemuVm } = await import(${JSON.stringify(moduleUrl)});
    const vm = await QemuVm.spawn(${JSON.stringify(fake)}, [], { env: { ...process.env, FAKE_MODE: 'hang' } });
    await vm.waitForLine(/hello/);
    process.stdout.write(vm.pid + '\\n');
    if (${JSON.stringify(how)} === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const vmPid = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', () => reject(new Error('child exited before starting its VM')));
  });
  if (how === 'SIGTERM') child.kill('SIGTERM');
  const childSignal = await new Promise<NodeJS.Signals | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode);
    else child.once('exit', (_code, signal) => resolve(signal));
  });
  return { vmPid, childSignal };
}

/** Polls until `pid` is gone or a zombie (dead, waiting to be reaped by init), for at most 10 s. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    // The state letter follows the parenthesised command name.
    if (stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('a VM left running is killed when its Node process exits', async () => {
  const { vmPid } = await orphanCheck('exit');
  assert.ok(await gone(vmPid), `stand-in VM ${vmPid} outlived its parent`);
});

test('a VM left running is killed on SIGTERM, and the process still dies of SIGTERM', async () => {
  const { vmPid, childSignal } = await orphanCheck('SIGTERM');
  assert.equal(childSignal, 'SIGTERM');
  assert.ok(await gone(vmPid), `stand-in VM ${vmPid} outlived its parent`);
});
