// SPDX-License-Identifier: Apache-2.0
/**
 * The guest scripts, run by the host's busybox (the same busybox-static the image carries):
 * syntax of /init and every helper, `avp-arg` parsing of kernel command lines (with the
 * encoders of cmdline.ts on the other side), and the marker lines matching the host's patterns.
 * /init itself runs only in a guest (image.e2e.test.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmdParam, kernelCmdline, scriptParam } from './cmdline.js';
import { renderHelpers, renderInit, renderModulesOrder } from './init.js';
import { EXIT_LINE, READY_LINE, parseGuestKv } from './markers.js';

const BUSYBOX = '/bin/busybox';
let dir = '';
let bin = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'avp-init-test-'));
  bin = join(dir, 'bin');
  await mkdir(bin);
  for (const [path, body] of renderHelpers()) {
    const file = join(dir, path);
    // In the guest /bin/sh is busybox; on the host it is dash. Pointing the shebang at busybox
    // keeps the helpers, and the helpers they call, on the guest's shell.
    await writeFile(file, body.replace(/^#!\/bin\/sh\n/, `#!${BUSYBOX} sh\n`));
    await chmod(file, 0o755);
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `busybox sh -c script` with the helpers on PATH; returns status and output. */
function sh(script: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(BUSYBOX, ['sh', '-c', script], {
    encoding: 'utf8',
    env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
  });
  if (r.error) throw new Error(`cannot run ${BUSYBOX} (busybox-static; run bash scripts/setup.sh): ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function withCmdline(cmdline: string): Promise<Record<string, string>> {
  const file = join(dir, 'cmdline');
  await writeFile(file, `${cmdline}\n`); // /proc/cmdline ends with a newline
  return { AVP_CMDLINE_FILE: file };
}

function arg(name: string, env: Record<string, string>): { status: number | null; value: string } {
  const r = sh(`avp-arg ${name}`, env);
  return { status: r.status, value: r.stdout.replace(/\n$/, '') };
}

test('/init and every helper parse with busybox sh -n', () => {
  const scripts = [['init', renderInit()], ...renderHelpers()];
  for (const [name, body] of scripts) {
    const r = spawnSync(BUSYBOX, ['sh', '-n', '-c', body as string], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name as string}: ${r.stderr}`);
  }
});

test('/init reads the module order file and prints the markers the host waits for', () => {
  const init = renderInit();
  assert.match(init, /done < \/etc\/modules-order/);
  assert.match(init, /insmod "\/lib\/modules\/\$m\.ko" \|\| echo "AVP-GUEST: insmod \$m failed"/);
  assert.ok(READY_LINE.test(/echo "(AVP-GUEST: READY)"/.exec(init)?.[1] ?? ''));
  assert.ok(EXIT_LINE.test('AVP-GUEST: EXIT 0'));
  assert.match(init, /poweroff -f/);
  assert.equal(renderModulesOrder(['virtio_ring', 'virtio']), 'virtio_ring\nvirtio\n');
});

test('avp-arg: plain, quoted, absent, last-word and look-alike parameters', async () => {
  const env = await withCmdline('console=ttyS0 xavp.cmd=no avp.script=YWJj+/== panic=-1 avp.cmd="echo a  b" tail=end');
  assert.deepEqual(arg('avp.script', env), { status: 0, value: 'YWJj+/==' });
  assert.deepEqual(arg('avp.cmd', env), { status: 0, value: 'echo a  b' });
  assert.deepEqual(arg('tail', env), { status: 0, value: 'end' });
  assert.deepEqual(arg('console', env), { status: 0, value: 'ttyS0' });
  assert.equal(arg('missing', env).status, 1);
  assert.equal(arg('avp', env).status, 1);
});

test('scriptParam → avp-arg → base64 -d gives the script back', async () => {
  const script = 'set -e\necho "quotes \' and \\" and $HOME"\nprintf "%s\\n" ünïcode\nexit 7\n';
  const env = await withCmdline(kernelCmdline([scriptParam(script), 'x=1']));
  const r = sh(`avp-arg avp.script | base64 -d`, env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, script);
});

test('cmdParam → avp-arg gives the command back', async () => {
  const env = await withCmdline(kernelCmdline([cmdParam("cat /proc/uptime; echo 'done'")]));
  assert.equal(arg('avp.cmd', env).value, "cat /proc/uptime; echo 'done'");
});

test('avp-say and avp-kv print lines the host parses', () => {
  const r = sh('avp-say hello world; avp-kv size 2048; avp-kv msg a b  c');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'AVP-GUEST: hello world');
  assert.deepEqual([...parseGuestKv(lines)], [
    ['size', '2048'],
    ['msg', 'a b c'],
  ]);
});

test('avp-wait and avp-wait-match: present at once, absent times out with a marker', async () => {
  const file = join(dir, 'state');
  await writeFile(file, 'none\nvirtio_rng.0\n');
  assert.equal(sh(`avp-wait ${file} 1`).status, 0);
  assert.equal(sh(`avp-wait-match ${file} '^virtio_rng' 1`).status, 0);
  const missing = sh(`avp-wait ${join(dir, 'nope')} 0`);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /AVP-GUEST: timed out waiting for/);
  assert.equal(sh(`avp-wait-match ${file} '^virtio_blk' 0`).status, 1);
});
