// SPDX-License-Identifier: Apache-2.0
/**
 * `avp serve` as a program: the real back-end process driven over its socket by AVP's vhost-user
 * front-end. Covers the backend-program conventions, the handshake values, both memory-table
 * styles, data through a ring, reconnects, and a hostile front-end that must not take the
 * back-end down.
 */
import { test } from 'node:test';
import { DEVICE_KINDS } from '../devices/registry.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VhostUserFrontend, type FrontendMemory } from '../vhost-user/frontend.js';
import { encodeFrame } from '../vhost-user/messages.js';
import { DriverQueue } from '../queue/split-driver.js';
import { eventfdWrite, closeQuiet, socketPair } from '../sys/index.js';
import { AVP_BIN, startBackend, type BackendProcess } from './testing/backend-process.js';

const RING = { desc: 0x1000, avail: 0x2000, used: 0x3000 };
const FEATURES = (1n << 32n) | (1n << 30n) | (1n << 29n) | (1n << 28n);

interface RngClient {
  fe: VhostUserFrontend;
  mem: FrontendMemory;
  dq: DriverQueue<number>;
  kick: number;
  call: number;
}

/** Handshake as QEMU 7.2 does for vhost-user-rng, then one ring of 8 with EVENT_IDX. */
function connectRng(b: BackendProcess, opts: { addMemReg?: boolean; protocol?: bigint } = {}): RngClient {
  const fe = VhostUserFrontend.connect(b.socket);
  fe.getU64('GET_FEATURES');
  fe.request({ type: 'SET_PROTOCOL_FEATURES', body: opts.protocol ?? 0x8009n, fds: [] });
  fe.request({ type: 'SET_OWNER', body: null, fds: [] });
  fe.request({ type: 'SET_FEATURES', body: FEATURES, fds: [] });
  const mem = fe.createMemory(1 << 20, { addMemReg: opts.addMemReg ?? true, guestBase: 0 });
  const dq = new DriverQueue<number>({ memory: mem.memory, size: 8, addrs: RING, eventIdx: true });
  const { kick, call } = fe.setupVring(0, 8, RING, mem);
  return { fe, mem, dq, kick, call };
}

/** Asks for `len` random bytes at `addr` and returns them. */
function entropy(c: RngClient, addr: number, len: number): Uint8Array {
  c.dq.add([{ addr, len, writable: true }], addr);
  if (c.dq.needsKick()) eventfdWrite(c.kick);
  assert.ok(c.fe.waitCall(c.call, 20_000), 'back-end signalled the call eventfd');
  const used = c.dq.popUsed();
  assert.deepEqual(used, { head: used?.head, len, token: addr });
  return c.mem.memory.read(addr, len);
}

test('serve: --print-capabilities prints the vhost-user JSON and ignores other arguments', () => {
  const r = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--print-capabilities', '--fd', 'nonsense'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.deepEqual(JSON.parse(r.stdout), { type: 'rng', features: ['max-bytes'] });
});

test('serve: bad arguments give one precise line and exit 1; a file in the way is left alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  try {
    const none = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng'], { encoding: 'utf8' });
    assert.equal(none.status, 1);
    assert.equal(none.stderr, 'avp: serve rng: give exactly one of --socket-path PATH or --fd N\n');
    const file = join(dir, 'precious');
    writeFileSync(file, 'keep me');
    const clash = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--socket-path', file], { encoding: 'utf8' });
    assert.equal(clash.status, 1);
    assert.match(clash.stderr, /precious exists and is not a socket; refusing to replace it/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    const badFd = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--fd', '99'], { encoding: 'utf8' });
    assert.equal(badFd.status, 1);
    assert.match(badFd.stderr, /--fd 99 is not an open socket/);
    const badOpt = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--socket-path', join(dir, 's'), '--max-bytes', '0'], { encoding: 'utf8' });
    assert.equal(badOpt.status, 1);
    assert.match(badOpt.stderr, /--max-bytes: expected an integer from 1/);
    assert.doesNotMatch(badOpt.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve: socket is mode 0600, in-use sockets are refused, SIGTERM exits 0 and removes it', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  assert.equal(statSync(b.socket).mode & 0o777, 0o600);
  const second = spawnSync(process.execPath, [AVP_BIN, 'serve', 'rng', '--socket-path', b.socket], { encoding: 'utf8' });
  assert.equal(second.status, 1);
  assert.match(second.stderr, /is in use by another process/);
  b.child.kill('SIGTERM');
  assert.equal(await b.exited, 0);
  assert.throws(() => statSync(b.socket), { code: 'ENOENT' });
});

test('serve rng: handshake values, entropy through a ring, GET_VRING_BASE', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  const c = connectRng(b);
  t.after(() => c.fe.close());
  assert.equal(c.fe.getU64('GET_FEATURES'), FEATURES | (1n << 34n), 'VERSION_1, PROTOCOL_FEATURES, EVENT_IDX, INDIRECT_DESC, RING_PACKED');
  assert.equal(c.fe.getU64('GET_PROTOCOL_FEATURES'), 0xa009n, 'MQ, REPLY_ACK, RESET_DEVICE, CONFIGURE_MEM_SLOTS; no CONFIG for a device without config space');
  assert.equal(c.fe.getU64('GET_QUEUE_NUM'), 1n);
  assert.equal(c.fe.getU64('GET_MAX_MEM_SLOTS'), 32n);
  const a = entropy(c, 0x10000, 64);
  const bb = entropy(c, 0x20000, 4096);
  assert.ok(new Set(bb).size > 200, 'random bytes');
  assert.notDeepEqual(a, bb.subarray(0, 64));
  assert.equal(c.fe.getVringBase(0), 2, 'next avail index after two requests');
});

test('serve rng: SET_MEM_TABLE without REPLY_ACK works like ADD_MEM_REG', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  const c = connectRng(b, { addMemReg: false, protocol: 0n });
  t.after(() => c.fe.close());
  assert.equal(entropy(c, 0x40000, 32).length, 32);
});

test('serve rng: reconnects: a second front-end after the first leaves, and after one killed mid-ring', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  const first = connectRng(b);
  entropy(first, 0x10000, 16);
  first.fe.close();
  const second = connectRng(b);
  entropy(second, 0x10000, 16);
  // Leave a request in flight and vanish without a word.
  second.dq.add([{ addr: 0x30000, len: 16, writable: true }], 1);
  second.fe.close();
  const third = connectRng(b);
  t.after(() => third.fe.close());
  entropy(third, 0x10000, 16);
  await b.waitLog(/front-end disconnected: end of stream/, 30_000, 2);
  await b.waitLog(/front-end connected/, 30_000, 3);
});

test('serve rng: a hostile front-end gets failures, never takes the back-end down', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  const c = connectRng(b);
  // A kick "eventfd" that is really a socket: refused, connection kept.
  const [s1, s2] = socketPair();
  t.after(() => {
    closeQuiet(s1);
    closeQuiet(s2);
  });
  assert.throws(() => c.fe.requestAcked({ type: 'SET_VRING_KICK', body: { index: 0, noFd: false }, fds: [s1] }), { code: 'VHOST_USER_FRONTEND_NACK' });
  // A ring that does not exist, and one outside guest memory: refused.
  assert.throws(() => c.fe.requestAcked({ type: 'SET_VRING_NUM', body: { index: 5, num: 8 }, fds: [] }), { code: 'VHOST_USER_FRONTEND_NACK' });
  assert.throws(
    () => c.fe.requestAcked({ type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: 0x7f00_1000_0000, used: 0x7f00_1000_2000, avail: 0x7f00_1000_1000, log: 0 }, fds: [] }),
    { code: 'VHOST_USER_FRONTEND_NACK' },
  );
  // An unknown request code with NEED_REPLY: a failure ack, and the connection goes on.
  c.fe.sendRaw(encodeFrame(200, 0x9, new Uint8Array(8)).bytes);
  const nack = c.fe.readReply('SET_OWNER');
  assert.deepEqual([nack.type, nack.body], ['ACK', 1n]);
  // After all that the ring still serves (the refused SET_VRING_ADDR left the old addresses).
  c.fe.requestAcked({ type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: RING.desc + 0x7f00_0000_0000, used: RING.used + 0x7f00_0000_0000, avail: RING.avail + 0x7f00_0000_0000, log: 0 }, fds: [] });
  assert.equal(entropy(c, 0x10000, 8).length, 8);
  // A header claiming a 1 GiB payload: the framing is lost, so the connection is dropped ...
  const evil = new Uint8Array(12);
  new DataView(evil.buffer).setUint32(0, 1, true);
  new DataView(evil.buffer).setUint32(4, 1, true);
  new DataView(evil.buffer).setUint32(8, 1 << 30, true);
  c.fe.sendRaw(evil);
  await b.waitLog(/disconnected: protocol error/);
  c.fe.close();
  // ... and the back-end serves the next front-end.
  const next = connectRng(b);
  t.after(() => next.fe.close());
  assert.equal(entropy(next, 0x10000, 8).length, 8);
  assert.equal(b.child.exitCode, null, 'still running');
});

test('serve rng: SIGUSR1 logs metrics', async (t) => {
  const b = await startBackend('rng');
  t.after(() => b.stop());
  const c = connectRng(b);
  t.after(() => c.fe.close());
  entropy(c, 0x10000, 100);
  b.child.kill('SIGUSR1');
  const line = await b.waitLog(/"msg":"metrics"/);
  const m = JSON.parse(line) as { metrics: { device: string; bytes: number; requests: number; session: { requests: number } } };
  assert.equal(m.metrics.device, 'rng');
  assert.equal(m.metrics.bytes, 100);
  assert.equal(m.metrics.requests, 1);
  assert.ok(m.metrics.session.requests > 5);
});

test('serve: each shipped vhost-user JSON descriptor names a program whose capabilities match it', () => {
  const root = new URL('../../', import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { bin: Record<string, string> };
  for (const kind of DEVICE_KINDS.map((k) => k.name)) {
    const desc = JSON.parse(readFileSync(new URL(`share/qemu/vhost-user/50-avp-${kind}.json`, root), 'utf8')) as { description: string; type: string; binary: string };
    const program = desc.binary.split('/').pop() ?? '';
    assert.equal(program, `avp-vhost-user-${kind}`);
    const script = pkg.bin[program];
    assert.ok(script, `package.json installs ${program}`);
    const r = spawnSync(process.execPath, [new URL(script, root).pathname, '--print-capabilities'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { type: string }).type, desc.type, `${kind}: descriptor type matches the program`);
    assert.ok(desc.description.length > 0);
  }
});

test('regression: SIGTERM while the back-end worker is starting still exits 0 and removes the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  const socket = join(dir, 'rng.sock');
  try {
    const { spawn } = await import('node:child_process');
    const { watch } = await import('node:fs');
    // Signal the moment the socket file appears: the listening socket exists, the worker may not.
    const appeared = new Promise<void>((resolve) => {
      const w = watch(dir, () => {
        w.close();
        resolve();
      });
    });
    const child = spawn(process.execPath, [AVP_BIN, 'serve', 'rng', '--socket-path', socket], { stdio: 'ignore' });
    const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    await appeared;
    child.kill('SIGTERM');
    assert.deepEqual(await exited, [0, null], 'a clean exit, not death by signal');
    assert.throws(() => statSync(socket), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
