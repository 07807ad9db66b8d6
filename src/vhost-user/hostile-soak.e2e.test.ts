// SPDX-License-Identifier: Apache-2.0
/**
 * Soak test of issue #18: `avp serve rng` as a real process takes `AVP_SOAK_SESSIONS` (default
 * 1000; the figure is 10,000) hostile sessions in a row, cycling through the cases of the
 * issue (truncated messages with fds, rings that do not exist, a region larger than its memfd, an
 * unsealed memfd shrunk under a live ring, memory removed under a live ring, a saturated call
 * eventfd). Afterwards, idle again, its fd count (/proc/<pid>/fd) must be back at the starting
 * value, no memfd of ours may be mapped (/proc/<pid>/maps), and an honest session is served.
 * Prints the figures (fds, memfd mappings, all mappings) before and after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { closeQuiet, connectUnix, eventfdCreate, eventfdWrite, ftruncate, sendMsg } from '../sys/index.js';
import { Attacker, leakProbe, settle, sleepSync, waitUsed } from './testing/attacker.js';
import { ByteBuilder, frameBytes } from './testing/byte-builder.js';
import { startServe } from './testing/serve-process.js';

const SESSIONS = Number(process.env['AVP_SOAK_SESSIONS'] ?? 1000);
const KIB = 1024;

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const maps = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l !== '');
const ourMemfds = (pid: number) => maps(pid).filter((l) => l.includes('/memfd:avp-attack-')).length;

/** Mappings by what backs them (pathname, or 'anonymous'), to tell heap growth from a leak. */
function kinds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of maps(pid)) {
    const name = l.split(/\s+/).slice(5).join(' ') || 'anonymous';
    const key = name.startsWith('/memfd:') ? name.replace(/-\d+ \(deleted\)$/, '-N (deleted)') : name;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

function grown(before: Map<string, number>, after: Map<string, number>): string {
  const parts: string[] = [];
  for (const [k, n] of after) if (n !== (before.get(k) ?? 0)) parts.push(`${k} ${before.get(k) ?? 0}->${n}`);
  for (const [k, n] of before) if (!after.has(k)) parts.push(`${k} ${n}->0`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** One hostile session of kind `i % 7`; every fd and mapping it makes is its own to close. */
function hostileSession(path: string, i: number): void {
  const kind = i % 7;
  if (kind === 0 || kind === 1) {
    const probe = leakProbe();
    const fd = connectUnix(path);
    try {
      const cut = kind === 0 ? new ByteBuilder().u32(13).u16(1).build() : new ByteBuilder().u32(13).u32(1).u32(8).u32(0).build();
      sendMsg(fd, cut, [probe.sent]);
    } finally {
      closeQuiet(fd);
      probe.dispose();
    }
    return;
  }
  const a = new Attacker(path, 5000).handshake();
  try {
    if (kind === 2) {
      a.fe.sendRaw(frameBytes(13, 1, new ByteBuilder().u64(200).build()), [eventfdOnce(a)]);
    } else if (kind === 3) {
      a.memory({ fileSize: 64 * KIB, regionSize: 1024 * KIB, how: i % 2 === 0 ? 'set' : 'add' });
    } else if (kind === 4) {
      const { mem } = a.memory({ fileSize: 256 * KIB });
      const { dq, fds } = a.ring(mem);
      // A round trip first: the back-end has set the ring up (and looked at it once) before the
      // file shrinks. Shrinking during that turn would hit the residual window of unsealed memory
      // (docs/reliability.md, "Policy: memory the front-end can shrink"), which this soak of
      // leaks is not about; a loaded machine hit it (SIGBUS in the back-end).
      a.fe.getU64('GET_FEATURES');
      ftruncate(mem.fd, 16 * KIB);
      dq.add([{ addr: 128 * KIB, len: 64, writable: true }], 1);
      eventfdWrite(fds.kick);
    } else if (kind === 5) {
      const { mem } = a.memory({ fileSize: 64 * KIB, how: 'add' });
      a.ring(mem);
      a.ack({ type: 'REM_MEM_REG', body: mem.region, fds: [] });
    } else {
      const call = eventfdOnce(a);
      eventfdWrite(call, 0xffff_ffff_ffff_fffen);
      const { mem } = a.memory({ fileSize: 64 * KIB, sealable: true });
      const { dq, fds } = a.ring(mem, { call });
      dq.add([{ addr: 32 * KIB, len: 64, writable: true }], 1);
      eventfdWrite(fds.kick);
      waitUsed(dq, 1, 1000);
    }
    a.fe.getU64('GET_FEATURES');
  } catch {
    // The back-end may drop a hostile connection; that is allowed.
  } finally {
    a.close();
  }
}

/** An eventfd closed with the attacker's connection. */
function eventfdOnce(a: Attacker): number {
  const fd = eventfdCreate();
  const close = a.close.bind(a);
  a.close = () => {
    close();
    closeQuiet(fd);
  };
  return fd;
}

function honest(path: string): void {
  const a = new Attacker(path, 5000).handshake();
  try {
    const { mem } = a.memory({ fileSize: 64 * KIB, sealable: true });
    const { dq, fds } = a.ring(mem);
    dq.add([{ addr: 32 * KIB, len: 64, writable: true }], 9);
    eventfdWrite(fds.kick);
    assert.equal(waitUsed(dq, 9, 5000)?.len, 64);
  } finally {
    a.close();
  }
}

test(`soak: avp serve rng after ${SESSIONS} hostile sessions has the fds and mappings it started with (#18)`, { timeout: 30 * 60_000 }, async (t) => {
  const { sock, child } = await startServe(t, 'rng');
  const pid = child.pid!;
  // One honest session first, so lazily created state (native blocks, worker pools) is in place.
  honest(sock);
  sleepSync(200);
  const start = { fds: fdCount(pid), memfds: ourMemfds(pid), maps: maps(pid).length };
  const startKinds = kinds(pid);
  for (let i = 0; i < SESSIONS; i++) hostileSession(sock, i);
  honest(sock);
  const fds = settle(() => fdCount(pid), start.fds, 5000);
  const end = { fds, memfds: settle(() => ourMemfds(pid), 0, 5000), maps: maps(pid).length };
  t.diagnostic(`after ${SESSIONS} hostile sessions: fds ${start.fds} -> ${end.fds}, our memfd mappings ${start.memfds} -> ${end.memfds}, all mappings ${start.maps} -> ${end.maps}`);
  t.diagnostic(`mappings that changed, by backing: ${grown(startKinds, kinds(pid))}`);
  assert.equal(child.exitCode, null, 'the back-end is still running');
  assert.equal(end.fds, start.fds);
  assert.equal(end.memfds, 0);
});
