// SPDX-License-Identifier: Apache-2.0
/**
 * `avp serve vsock` as a program: capabilities, option errors, and one process serving several VMs
 * (`--vm`), each socket answering with its own guest CID in config space, every socket file
 * removed on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VhostUserFrontend } from '../vhost-user/frontend.js';
import { AVP_BIN, startBackend } from './testing/backend-process.js';

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [AVP_BIN, 'serve', 'vsock', ...args], { encoding: 'utf8' });
}

test('serve vsock: --print-capabilities', () => {
  const r = run(['--print-capabilities']);
  assert.equal(r.status, 0);
  assert.deepEqual(JSON.parse(r.stdout), { type: 'vsock', features: ['guest-cid', 'uds-path'] });
});

test('serve vsock: bad options give one precise line and exit 1, and leave no socket behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  try {
    const s = join(dir, 's.sock');
    const cases: Array<[string[], RegExp]> = [
      [['--socket-path', s], /--guest-cid N is required/],
      [['--socket-path', s, '--guest-cid', '2'], /--guest-cid: expected a context ID from 3/],
      [['--socket-path', s, '--guest-cid', '3', '--allow-peer', 'x'], /--allow-peer\[0\]: expected a context ID from 3 to 4294967294 .*got "x"/],
      [['--guest-cid', '3'], /give exactly one of --socket-path PATH or --fd N/],
      [['--vm', 'cid=4'], /socket=PATH is required/],
      [['--socket-path', s, '--vm', `socket=${join(dir, 'b.sock')},cid=4`], /options are missing/],
      [['--socket-path', s, '--guest-cid', '3', '--vm', `socket=${join(dir, 'b.sock')},cid=3`], /guest CID 3 is used by two vsock devices/],
    ];
    for (const [args, re] of cases) {
      const r = run(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.deepEqual(existsSync(s), false);
    assert.deepEqual(existsSync(join(dir, 'b.sock')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve vsock: one process serves several VMs (--vm); each socket has its CID; SIGTERM removes every socket file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const uds3 = join(dir, 'vm3.vsock');
  const uds4 = join(dir, 'vm4.vsock');
  const sock4 = join(dir, 'vm4.sock');
  const b = await startBackend('vsock', ['--guest-cid', '3', '--uds-path', uds3, '--allow-peer', '4', '--vm', `socket=${sock4},cid=4,uds=${uds4},allow=3`]);
  t.after(() => b.stop());
  for (const p of [b.socket, sock4, uds3, uds4]) assert.equal(statSync(p).mode & 0o777, 0o600, p);
  for (const [path, cid] of [[b.socket, 3], [sock4, 4]] as const) {
    const fe = VhostUserFrontend.connect(path);
    try {
      const features = fe.getU64('GET_FEATURES');
      assert.equal(features & 1n, 1n, 'VIRTIO_VSOCK_F_STREAM offered');
      assert.equal((features >> 30n) & 1n, 1n, 'PROTOCOL_FEATURES offered');
      const protocol = fe.getU64('GET_PROTOCOL_FEATURES');
      assert.equal((protocol >> 9n) & 1n, 1n, 'CONFIG offered: QEMU reads the CID with GET_CONFIG');
      fe.request({ type: 'SET_PROTOCOL_FEATURES', body: protocol, fds: [] });
      assert.equal(fe.getU64('GET_QUEUE_NUM'), 3n);
      const cfg = fe.getConfig(0, 8);
      assert.ok(cfg !== null);
      assert.equal(new DataView(cfg.payload.buffer, cfg.payload.byteOffset, 8).getBigUint64(0, true), BigInt(cid));
    } finally {
      fe.close();
    }
  }
  b.child.kill('SIGTERM');
  assert.equal(await b.exited, 0);
  for (const p of [b.socket, sock4, uds3, uds4]) assert.equal(existsSync(p), false, `${p} removed`);
});
