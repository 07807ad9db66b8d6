// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp serve fs` sharing a host folder with the Linux 6.12 guest under QEMU 10.0
 * (vhost-user-fs-pci, software emulation), the guest's own virtiofs driver mounting it with
 * `mount -t virtiofs TAG /mnt/share`.
 *
 * Boot A: the guest lists the share, reads a 64 MiB file and prints its sha256 (the host's must
 * match), writes a text file and 1 MiB of random bytes (the host must find them, byte for byte),
 * makes a folder, renames into it, deletes a file, and tries the ways out of the share: `..`, an
 * absolute and a relative symlink the host planted towards a folder beside the share, a symlink it
 * makes itself, a device node, a hard link out, `find` over everything reachable. The secret beside
 * the share must never show up and nothing outside the share may change. The back-end runs with
 * --trace; marker LOOKUPs (`stat /mnt/share/.MARK-x`) cut its trace into the FUSE requests of each
 * guest command, which are checked (INIT first; READDIRPLUS for ls; CREATE and WRITE for echo >).
 * Boot B: a --read-only back-end; reads work, every write fails, the share does not change.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { runGuest, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const BOOT_MS = 480_000;
const TAG = 'avpe2e';
const BIG = 64 << 20;
/** What must never be read by the guest: the secret beside the share. */
const MARKER = 'AVPSECRET';

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-fs-e2e-'));
});

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function vm(socket: string, script: string): VmSpec {
  return { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices: [vhostUserDevice('fs', socket, { tag: TAG })], append: [scriptParam(script)] };
}

/** The message of a back-end log line when it is a --trace line (`fuse LOOKUP node 1 "x" -> error -2`). */
function traceLine(line: string): string | undefined {
  try {
    const msg: unknown = (JSON.parse(line) as { msg?: unknown }).msg;
    return typeof msg === 'string' && msg.startsWith('fuse ') ? msg : undefined;
  } catch {
    return undefined;
  }
}

/** The FUSE requests the trace shows between the LOOKUPs of `.MARK-<from>` and `.MARK-<to>`. */
function between(trace: readonly string[], from: string, to: string): string[] {
  const at = (m: string): number => trace.findIndex((l) => l.includes(`LOOKUP node 1 ".MARK-${m}"`));
  const a = at(from);
  const b = at(to);
  assert.ok(a >= 0 && b > a, `markers ${from} and ${to} in the trace`);
  return trace.slice(a + 1, b);
}

test('e2e: a Linux 6.12 guest mounts an avp serve fs share, reads, writes, renames, deletes, and cannot get out', async () => {
  const root = join(dir, 'a');
  const share = join(root, 'share');
  const outside = join(root, 'outside');
  mkdirSync(share, { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), `${MARKER}\n`);
  const big = randomBytes(BIG);
  writeFileSync(join(share, 'big.bin'), big);
  writeFileSync(join(share, 'hello.txt'), 'hello from the host\n');
  writeFileSync(join(share, 'todelete.txt'), 'bye\n');
  symlinkSync(outside, join(share, 'abs'));
  symlinkSync('../outside', join(share, 'rel'));
  symlinkSync(join(outside, 'secret'), join(share, 'abs-file'));
  const outsideBefore = readdirSync(outside).join(',');

  const fs = await startBackend('fs', ['--shared-dir', share, '--tag', TAG, '--trace']);
  backends.push(fs);
  // Compact (the script travels base64 on a 2047-byte kernel command line): the share is /s,
  // M marks a phase with a LOOKUP the trace shows, L prints how often the secret shows in a file.
  const script = `k() { avp-kv "$@"; }; M() { [ -e /s/.MARK-$1 ]; }
L() { cat "$1" 2>/dev/null | grep -c ${MARKER}; }
mkdir -p /s; mount -t virtiofs ${TAG} /s && k mount ok
k fstype "$(grep ' /s ' /proc/mounts | cut -d' ' -f3)"
M ls; k ls "$(ls /s | tr '\\n' ,)"
M cat; k hello "$(cat /s/hello.txt)"
M echo; echo "written by the guest" > /s/guest.txt
M echo-again; echo "written again" > /s/guest.txt
M end; k big "$(sha256sum /s/big.bin | cut -c1-64)"
dd if=/dev/urandom of=/tmp/r bs=65536 count=16 2>/dev/null; cp /tmp/r /s/guest.bin
k guestbin "$(sha256sum /tmp/r | cut -c1-64)"
mkdir /s/newdir && echo moved > /s/tomove.txt && mv /s/tomove.txt /s/newdir/moved.txt && k rename ok
rm /s/todelete.txt && k delete ok
sync
k leak_dotdot "$(L /s/../outside/secret)"
k leak_abs "$(L /s/abs/secret)"
k leak_rel "$(L /s/rel/secret)"
k leak_absfile "$(L /s/abs-file)"
ln -s ../../../../../../outside /s/mine && k leak_mine "$(L /s/mine/secret)"
mknod /s/null c 1 3 2>/dev/null && k mknod allowed || k mknod refused
ln /s/hello.txt /s/../hardout 2>/dev/null; k hardlink_out $?
k leak_find "$(find /s -type f ! -name big.bin | while read f; do cat "$f"; done | grep -c ${MARKER})"
k leak_readlink "$(readlink /s/abs)"
umount /s && k umount ok
`;
  const run = await runGuest(vm(fs.socket, script), { timeoutMs: BOOT_MS, expectStatus: 0 });
  const kv = run.kv;
  assert.equal(kv.get('mount'), 'ok');
  assert.equal(kv.get('fstype'), 'virtiofs');
  assert.equal(kv.get('ls'), 'abs,abs-file,big.bin,hello.txt,rel,todelete.txt,');
  assert.equal(kv.get('hello'), 'hello from the host');
  assert.equal(kv.get('big'), sha256(big), 'the guest read the 64 MiB file intact');
  assert.equal(readFileSync(join(share, 'guest.txt'), 'utf8'), 'written again\n', 'the host sees what the guest wrote');
  assert.equal(sha256(readFileSync(join(share, 'guest.bin'))), kv.get('guestbin'), 'the host has the guest\'s 1 MiB, byte for byte');
  assert.equal(kv.get('rename'), 'ok');
  assert.equal(readFileSync(join(share, 'newdir', 'moved.txt'), 'utf8'), 'moved\n');
  assert.equal(existsSync(join(share, 'tomove.txt')), false);
  assert.equal(kv.get('delete'), 'ok');
  assert.equal(existsSync(join(share, 'todelete.txt')), false);
  for (const route of ['dotdot', 'abs', 'rel', 'absfile', 'mine', 'find']) assert.equal(kv.get(`leak_${route}`), '0', `no secret through ${route}`);
  assert.equal(kv.get('leak_readlink'), outside, 'a symlink is text the guest resolves in its own tree');
  assert.equal(kv.get('mknod'), 'refused', 'no device node');
  assert.equal(existsSync(join(share, 'null')), false);
  assert.ok(lstatSync(join(share, 'mine')).isSymbolicLink(), 'the guest\'s symlink is stored as text');
  assert.equal(readdirSync(outside).join(','), outsideBefore, 'nothing outside the share changed');
  assert.deepEqual(readdirSync(root).sort(), ['outside', 'share']);
  assert.equal(kv.get('umount'), 'ok');

  // What Linux 6.12 sends (docs: the opcode sequences), from the back-end's trace.
  const trace = fs.logs.map(traceLine).filter((l): l is string => l !== undefined);
  assert.match(trace[0] ?? '', /^fuse INIT node 0 -> ok 80$/, 'INIT is the first request');
  const ops = (from: string, to: string): string[] => between(trace, from, to).map((l) => l.split(' ')[1] ?? '');
  const ls = ops('ls', 'cat');
  assert.ok(ls.includes('OPENDIR') && ls.includes('READDIRPLUS') && ls.includes('RELEASEDIR'), `ls: ${ls.join(' ')}`);
  const cat = ops('cat', 'echo');
  assert.ok(cat.includes('OPEN') && cat.includes('READ') && cat.includes('RELEASE'), `cat: ${cat.join(' ')}`);
  const echo = between(trace, 'echo', 'echo-again');
  assert.ok(echo.some((l) => /LOOKUP node 1 "guest.txt" -> error -2/.test(l)) && echo.some((l) => /CREATE node 1 "guest.txt"/.test(l)) && echo.some((l) => l.startsWith('fuse WRITE')), `echo >: ${echo.join(' | ')}`);
  const again = ops('echo-again', 'end');
  assert.ok(again.includes('OPEN') && again.includes('WRITE') && !again.includes('SETATTR'), `echo > existing: O_TRUNC in OPEN (ATOMIC_O_TRUNC), no SETATTR: ${again.join(' ')}`);
  assert.ok(trace.some((l) => l.startsWith('fuse DESTROY')), 'umount ends with DESTROY');
  process.stderr.write(`fuse trace (ls): ${ls.join(' ')}\nfuse trace (cat): ${cat.join(' ')}\nfuse trace (echo >): ${echo.join(' | ')}\nfuse trace (echo > existing): ${again.join(' ')}\n`);
});

test('e2e: a read-only share: the guest reads, every write fails, the share does not change', async () => {
  const share = join(dir, 'ro');
  mkdirSync(share);
  writeFileSync(join(share, 'hello.txt'), 'read only\n');
  mkdirSync(join(share, 'sub'));
  const snapshot = (): string => JSON.stringify(readdirSync(share, { recursive: true }).sort().map((n) => [n, lstatSync(join(share, String(n))).mtimeMs, lstatSync(join(share, String(n))).mode]));
  const before = snapshot();
  const ro = await startBackend('fs', ['--shared-dir', share, '--tag', TAG, '--read-only']);
  backends.push(ro);
  const tryWrite = (name: string, cmd: string): string => `if ${cmd} 2>/dev/null; then avp-kv ${name} allowed; else avp-kv ${name} refused; fi`;
  const run = await runGuest(
    vm(
      ro.socket,
      `mkdir -p /mnt/share && mount -t virtiofs ${TAG} /mnt/share && avp-kv mount ok
avp-kv read "$(cat /mnt/share/hello.txt)"
${tryWrite('create', 'touch /mnt/share/new')}
${tryWrite('append', "sh -c 'echo x >> /mnt/share/hello.txt'")}
${tryWrite('mkdir', 'mkdir /mnt/share/d')}
${tryWrite('rm', 'rm /mnt/share/hello.txt')}
${tryWrite('rmdir', 'rmdir /mnt/share/sub')}
${tryWrite('mv', 'mv /mnt/share/hello.txt /mnt/share/moved')}
${tryWrite('chmod', 'chmod 777 /mnt/share/hello.txt')}
${tryWrite('symlink', 'ln -s hello.txt /mnt/share/l')}
${tryWrite('truncate', "sh -c ': > /mnt/share/hello.txt'")}
`,
    ),
    { timeoutMs: BOOT_MS, expectStatus: 0 },
  );
  assert.equal(run.kv.get('mount'), 'ok');
  assert.equal(run.kv.get('read'), 'read only');
  for (const op of ['create', 'append', 'mkdir', 'rm', 'rmdir', 'mv', 'chmod', 'symlink', 'truncate']) assert.equal(run.kv.get(op), 'refused', op);
  assert.equal(snapshot(), before, 'the share is unchanged');
});
