// SPDX-License-Identifier: Apache-2.0
/**
 * `avp validate`, `avp qemu-args` and the argument and manifest errors of `avp run`, as a user
 * runs them: the real program, its stdout, stderr and exit status. Nothing here boots a guest
 * (cli/run.e2e.test.ts does).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AVP_BIN } from '../testing/backend-process.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let dir = '';

function avp(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [AVP_BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, AVP_QEMU: 'qemu-system-x86_64' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'avp-platform-cli-'));
  writeFileSync(join(dir, 'vmlinuz'), '');
  writeFileSync(join(dir, 'initrd'), '');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('avp validate: the examples are valid', () => {
  const minimal = avp('validate', 'examples/minimal.yaml');
  assert.deepEqual(minimal, { status: 0, stdout: 'examples/minimal.yaml: valid (1 VM, 2 devices)\n', stderr: '' });
  const cockpit = avp('validate', 'examples/cockpit.yaml');
  assert.deepEqual(cockpit, { status: 0, stdout: 'examples/cockpit.yaml: valid (2 VMs, 14 devices)\n', stderr: '' });
});

test('avp validate: every error on its own line as FILE:LINE:COL: path: message, status 1, no stack', () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    `name: bad
switches:
  - name: lan
vms:
  - name: a
    memory: 64M
    devices:
      - kind: net
        switch: wan
      - kind: vsock
        cid: 3
  - name: b
    devices:
      - kind: vsock
        cid: 3
      - kind: blk
        image: missing.img
`,
  );
  const r = avp('validate', file);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    [
      `${file}:6:13: vms[0].memory: 64 MiB is too small: the built-in guest image needs at least 128 MiB`,
      `${file}:9:17: vms[0].devices[0].switch: unknown switch 'wan'; switches: lan`,
      `${file}:15:14: vms[1].devices[0].cid: duplicate vsock cid 3 (also vms[0].devices[1].cid); each guest needs its own context ID`,
      `${file}:17:16: vms[1].devices[1].image: file not found: ${join(dir, 'missing.img')} (give size: to create it)`,
      '',
    ].join('\n'),
  );
});

test('avp validate: a YAML syntax error with its position; a missing file in one line', () => {
  const file = join(dir, 'syntax.yaml');
  writeFileSync(file, 'name: x\nvms:\n  - name: a\n   cpus: 2\n');
  const r = avp('validate', file);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^${file}:4:\\d+: \\(syntax\\): .+\\n$`));
  const missing = avp('validate', join(dir, 'nope.yaml'));
  assert.deepEqual(missing, { status: 1, stdout: '', stderr: `avp: cannot read manifest ${join(dir, 'nope.yaml')}: no such file\n` });
});

test('avp qemu-args: each VM, sockets under --run-dir; --vm; --json', () => {
  const file = join(dir, 'two.yaml');
  writeFileSync(file, `name: two\nvms:\n  - name: a\n    boot: {kernel: vmlinuz, initrd: initrd, cmdline: 'x=1 y="a b"'}\n    devices: [{kind: rng}]\n  - name: b\n    boot: {kernel: vmlinuz, initrd: initrd}\n`);
  const base = (name: string, append: string): string =>
    `qemu-system-x86_64 -name ${name} -nodefaults -no-user-config -machine q35,memory-backend=mem -object memory-backend-memfd,id=mem,size=256M,share=on ` +
    `-m 256M -accel tcg -smp 1 -kernel ${dir}/vmlinuz -initrd ${dir}/initrd -append ${append} -display none -serial stdio -no-reboot`;
  const a = `${base('a', `'console=ttyS0 panic=-1 quiet x=1 y="a b"'`)} -chardev socket,id=chr0,path=/r/a/rng.sock -device vhost-user-rng-pci,chardev=chr0,id=dev0`;
  const b = base('b', `'console=ttyS0 panic=-1 quiet'`);
  assert.deepEqual(avp('qemu-args', file, '--run-dir', '/r'), { status: 0, stdout: `# a\n${a}\n\n# b\n${b}\n`, stderr: '' });
  assert.deepEqual(avp('qemu-args', file, '--run-dir', '/r', '--vm', 'b'), { status: 0, stdout: `${b}\n`, stderr: '' });
  const json = JSON.parse(avp('qemu-args', file, '--run-dir', '/r', '--vm', 'a', '--json').stdout) as Record<string, string[]>;
  assert.deepEqual(Object.keys(json), ['a']);
  assert.equal(json['a']?.[0], 'qemu-system-x86_64');
  assert.deepEqual(avp('qemu-args', file, '--vm', 'c'), { status: 1, stdout: '', stderr: "avp: qemu-args: no VM named 'c'; VMs: a, b\n" });
  const defaultDir = avp('qemu-args', file, '--vm', 'a');
  assert.match(defaultDir.stdout, new RegExp(`path=${REPO}\\.avp/runs/two/a/rng\\.sock `));
});

test('avp run: a bad manifest, a bad option, a back-end that cannot start: status 1, one clear message, nothing left running', () => {
  const bad = join(dir, 'bad-run.yaml');
  writeFileSync(bad, 'name: r\nvms:\n  - name: a\n    cpus: 0\n');
  assert.deepEqual(avp('run', bad), { status: 1, stdout: '', stderr: `${bad}:4:11: vms[0].cpus: expected an integer from 1 to 64; got 0\n` });
  const ok = join(dir, 'ok-run.yaml');
  writeFileSync(ok, 'name: r\nvms:\n  - name: a\n    boot: {kernel: vmlinuz, initrd: initrd}\n');
  assert.deepEqual(avp('run', ok, '--timeout', 'soon'), { status: 1, stdout: '', stderr: 'avp: run: --timeout must be a number of seconds above 0, got "soon"\n' });
  assert.deepEqual(avp('run', ok, '--until', 'a('), { status: 1, stdout: '', stderr: 'avp: run: --until must be a regular expression: Invalid regular expression: /a(/: Unterminated group\n' });
  assert.deepEqual(avp('run', ok, '--ui', 'abc'), { status: 1, stdout: '', stderr: 'avp: run: --ui must be a TCP port from 0 to 65535 (0: any free port); got "abc" (without a port, put --ui after the manifest)\n' });
  assert.deepEqual(avp('run', ok, '--ui', '0', '--ui-host', 'example.com'), { status: 1, stdout: '', stderr: 'avp: run: --ui-host must be an IP address (127.0.0.1, ::1, 0.0.0.0) or localhost; got "example.com"\n' });
  // A blk image that is a folder passes validate (it exists) but its back-end cannot open it.
  const folder = join(dir, 'folder.yaml');
  writeFileSync(folder, `name: r\nvms:\n  - name: a\n    boot: {kernel: vmlinuz, initrd: initrd}\n    devices: [{kind: blk, image: ${JSON.stringify(dir)}}]\n`);
  const runDir = join(dir, 'folder-run');
  const r = avp('run', folder, '--run-dir', runDir);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /\navp: back-end a\/blk did not start: .+\n$/);
  assert.doesNotMatch(r.stderr, /VM a started|\n\s+at /, 'no VM started, no stack trace');
  assert.deepEqual(
    readdirSync(runDir, { recursive: true }).map(String).filter((f) => f.endsWith('.sock')),
    [],
    'no socket left',
  );
});

test('avp ui: a bad port, no running platform in the folder: status 1, one clear message', () => {
  assert.deepEqual(avp('ui', dir, '--port', '70000'), { status: 1, stdout: '', stderr: 'avp: ui: --port must be a TCP port from 0 to 65535 (0: any free port); got "70000"\n' });
  const none = join(dir, 'no-run');
  assert.deepEqual(avp('ui', none), { status: 1, stdout: '', stderr: `avp: no running platform answers on ${join(none, 'control.sock')} (ENOENT)\n` });
});
