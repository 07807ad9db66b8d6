// SPDX-License-Identifier: Apache-2.0
/**
 * Property test of a back-end connection against a hostile front-end (issue #18). fast-check
 * drives one `BackendConnection` (the session, parser and socket of the real loop, pumped here in
 * the test's thread the way loop.ts pumps it) with random sequences of requests: memory tables
 * that lie about their size, memfds sealed or not and shrunk afterwards, rings that do not exist,
 * kick/call/err fds of every kind (eventfd, socket, memfd), kicks, unknown codes, raw bytes, and
 * any message cut short with its fds attached; then the front-end disconnects.
 * Asserted after each case: the process's fd table is back to its size before the case, no
 * mapping of any memfd the case sent is left in /proc/self/maps, nothing is held by the parser,
 * and a fresh, honest session on a new connection to the same device is served correctly.
 * `AVP_PROPERTY_RUNS` sets the number of cases (default 100).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RegionGuestMemory } from '../memory/guest-memory.js';
import { DriverQueue } from '../queue/split-driver.js';
import { POLLIN, closeQuiet, eventfdCreate, eventfdWrite, ftruncate, listOpenFds, memfdCreate, mmapShared, munmap, poll, sendMsg, socketPair } from '../sys/index.js';
import { BackendConnection } from './connection.js';
import { encodeRequest, type FrontendRequestInit } from './messages.js';
import { BackendSession } from './session.js';
import { mappingsOf, uniqueName } from './testing/attacker.js';
import { ECHO_FILL, EchoDevice } from './testing/echo-device.js';

const RUNS = Number(process.env['AVP_PROPERTY_RUNS'] ?? 100);
const USER = 0x7f00_0000_0000;
const KIB = 1024;
const FEATURES = (1n << 32n) | (1n << 30n);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

type FdKind = 'eventfd' | 'socket' | 'memfd';
type Act =
  | { k: 'msg'; type: (typeof TYPES)[number]; index: number; fd: FdKind; memSize: number; lie: boolean; sealable: boolean; needReply: boolean; cut: number | null }
  | { k: 'raw'; bytes: Uint8Array; fds: number }
  | { k: 'shrink' }
  | { k: 'kick' };

const TYPES = ['SET_MEM_TABLE', 'ADD_MEM_REG', 'REM_MEM_REG', 'SET_VRING_NUM', 'SET_VRING_ADDR', 'SET_VRING_BASE', 'SET_VRING_KICK', 'SET_VRING_CALL', 'SET_VRING_ERR', 'SET_VRING_ENABLE', 'GET_VRING_BASE', 'SET_FEATURES', 'SET_PROTOCOL_FEATURES', 'GET_FEATURES', 'RESET_DEVICE'] as const;

const act: fc.Arbitrary<Act> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('msg' as const), type: fc.constantFrom(...TYPES), index: fc.integer({ min: 0, max: 3 }), fd: fc.constantFrom<FdKind>('eventfd', 'socket', 'memfd'), memSize: fc.constantFrom(4 * KIB, 64 * KIB, 256 * KIB), lie: fc.boolean(), sealable: fc.boolean(), needReply: fc.boolean(), cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { freq: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('raw' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }), fds: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'shrink' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'kick' as const }) },
);

/** The front-end side of one case: every fd it made, closed at the end. */
class Hostile {
  readonly own: number[] = [];
  readonly memfds: Array<{ fd: number; name: string; size: number }> = [];
  readonly names: string[] = [];
  kicks: number[] = [];

  fdOf(kind: FdKind): number {
    if (kind === 'eventfd') return this.keep(eventfdCreate());
    if (kind === 'socket') {
      const [a, b] = socketPair();
      this.keep(b);
      return this.keep(a);
    }
    return this.memfd(4 * KIB, false).fd;
  }

  memfd(size: number, sealable: boolean): { fd: number; name: string; size: number } {
    const name = uniqueName('prop');
    const m = { fd: this.keep(memfdCreate(name, size, { allowSealing: sealable })), name, size };
    this.memfds.push(m);
    this.names.push(name);
    return m;
  }

  keep(fd: number): number {
    this.own.push(fd);
    return fd;
  }

  message(a: Extract<Act, { k: 'msg' }>): { bytes: Uint8Array; fds: number[] } {
    const idx = a.index;
    const needReply = a.needReply;
    let init: FrontendRequestInit;
    switch (a.type) {
      case 'SET_MEM_TABLE':
      case 'ADD_MEM_REG': {
        const m = this.memfd(a.memSize, a.sealable);
        const region = { guestAddr: 0, size: a.lie ? a.memSize * 4 : a.memSize, userAddr: USER, mmapOffset: 0 };
        init = a.type === 'ADD_MEM_REG' ? { type: 'ADD_MEM_REG', body: region, fds: [m.fd], needReply } : { type: 'SET_MEM_TABLE', body: { regions: [region] }, fds: [m.fd], needReply };
        break;
      }
      case 'REM_MEM_REG': {
        const m = this.memfds[this.memfds.length - 1];
        init = { type: 'REM_MEM_REG', body: { guestAddr: 0, size: m?.size ?? a.memSize, userAddr: USER, mmapOffset: 0 }, fds: [], needReply };
        break;
      }
      case 'SET_VRING_NUM':
        init = { type: a.type, body: { index: idx, num: 8 }, fds: [], needReply };
        break;
      case 'SET_VRING_ADDR':
        init = { type: a.type, body: { index: idx, flags: 0, desc: USER + 0x1000, avail: USER + 0x2000, used: USER + 0x3000, log: 0 }, fds: [], needReply };
        break;
      case 'SET_VRING_BASE':
      case 'SET_VRING_ENABLE':
      case 'GET_VRING_BASE':
        init = { type: a.type, body: { index: idx, num: a.type === 'SET_VRING_ENABLE' ? 1 : 0 }, fds: [], needReply };
        break;
      case 'SET_VRING_KICK':
      case 'SET_VRING_CALL':
      case 'SET_VRING_ERR': {
        const fd = this.fdOf(a.fd);
        if (a.type === 'SET_VRING_KICK' && a.fd === 'eventfd') this.kicks.push(fd);
        init = { type: a.type, body: { index: idx, noFd: false }, fds: [fd], needReply };
        break;
      }
      case 'SET_FEATURES':
        init = { type: a.type, body: FEATURES, fds: [], needReply };
        break;
      case 'SET_PROTOCOL_FEATURES':
        init = { type: a.type, body: 0x8009n, fds: [], needReply };
        break;
      case 'GET_FEATURES':
      case 'RESET_DEVICE':
        init = { type: a.type, body: null, fds: [], needReply };
        break;
    }
    const msg = encodeRequest(init);
    const bytes = a.cut === null ? msg.bytes : msg.bytes.subarray(0, Math.max(1, Math.floor(a.cut * msg.bytes.length)));
    return { bytes, fds: [...msg.fds] };
  }

  close(): void {
    for (const fd of this.own.splice(0)) closeQuiet(fd);
  }
}

/** Pumps the connection as the loop does: memory check, then reads while readable; false once it ended. */
function pump(conn: BackendConnection): boolean {
  for (;;) {
    try {
      if (conn.session.hasUnsealedMemory) conn.session.checkMemory();
      if (!((poll([{ fd: conn.fd, events: POLLIN }], 0)[0] ?? 0) & POLLIN)) return true;
      if (conn.onReadable() !== null) return false;
    } catch {
      return false;
    }
  }
}

function kickAll(conn: BackendConnection): boolean {
  try {
    if (conn.session.hasUnsealedMemory) conn.session.checkMemory();
    for (const k of conn.session.kickFds()) conn.session.kick(k.index);
    return true;
  } catch {
    return false;
  }
}

/** An honest session on a fresh connection to `device`: one request must be served with ECHO_FILL. */
function honest(device: EchoDevice): void {
  const [fe, be] = socketPair();
  const conn = new BackendConnection(be, new BackendSession({ device, log: silent }));
  const memfd = memfdCreate('avp-prop-honest', 64 * KIB);
  const mapping = mmapShared(memfd, 64 * KIB);
  const kick = eventfdCreate();
  const call = eventfdCreate();
  try {
    const send = (init: FrontendRequestInit) => {
      const m = encodeRequest(init);
      sendMsg(fe, m.bytes, m.fds);
      assert.equal(pump(conn), true, `${init.type} ended the honest connection`);
    };
    send({ type: 'SET_FEATURES', body: FEATURES & ~(1n << 30n), fds: [] });
    send({ type: 'SET_MEM_TABLE', body: { regions: [{ guestAddr: 0, size: 64 * KIB, userAddr: USER, mmapOffset: 0 }] }, fds: [memfd] });
    const memory = new RegionGuestMemory([{ guestBase: 0, bytes: new Uint8Array(mapping.buffer) }]);
    const dq = new DriverQueue<number>({ memory, size: 8, addrs: { desc: 0x1000, avail: 0x2000, used: 0x3000 }, eventIdx: false });
    send({ type: 'SET_VRING_NUM', body: { index: 0, num: 8 }, fds: [] });
    send({ type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: USER + 0x1000, avail: USER + 0x2000, used: USER + 0x3000, log: 0 }, fds: [] });
    send({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [call] });
    send({ type: 'SET_VRING_KICK', body: { index: 0, noFd: false }, fds: [kick] });
    dq.add([{ addr: 0x8000, len: 32, writable: true }], 1);
    eventfdWrite(kick);
    assert.equal(kickAll(conn), true);
    assert.deepEqual(dq.popUsed(), { head: 0, len: 32, token: 1 });
    assert.equal(memory.view(0x8000, 1)[0], ECHO_FILL);
  } finally {
    conn.close();
    closeQuiet(fe);
    munmap(mapping);
    for (const fd of [memfd, kick, call]) closeQuiet(fd);
  }
}

/** Runs one hostile case to its disconnect; returns the memfd names it sent. */
export function hostileCase(device: EchoDevice, acts: readonly Act[]): string[] {
  const [fe, be] = socketPair();
  const conn = new BackendConnection(be, new BackendSession({ device, log: silent }));
  const h = new Hostile();
  try {
    let open = true;
    for (const a of acts) {
      if (!open) break;
      if (a.k === 'shrink') {
        const m = h.memfds[h.memfds.length - 1];
        if (m !== undefined) {
          try {
            ftruncate(m.fd, 0);
          } catch {
            // sealed against shrinking by the back-end: that is the point
          }
        }
        continue;
      }
      if (a.k === 'kick') {
        for (const k of h.kicks) eventfdWrite(k);
        open = kickAll(conn);
        continue;
      }
      const { bytes, fds } = a.k === 'raw' ? { bytes: a.bytes, fds: Array.from({ length: a.fds }, () => h.fdOf('eventfd')) } : h.message(a);
      try {
        sendMsg(fe, bytes, fds);
      } catch {
        open = false; // the back-end already closed the connection
        break;
      }
      open = pump(conn);
      if (a.k === 'msg' && a.cut !== null) break; // the framing is gone: this front-end is done
    }
  } finally {
    closeQuiet(fe);
    pump(conn);
    conn.close();
    assert.equal(conn.heldFdCount, 0);
    h.close();
  }
  return h.names;
}

test('property: random hostile message sequences leave no fd or mapping behind and the next session is served', () => {
  const device = new EchoDevice();
  // Warm-up: lazily created native blocks and module state must not count as leaks.
  honest(device);
  const before = listOpenFds().length;
  fc.assert(
    fc.property(fc.array(act, { minLength: 1, maxLength: 25 }), (acts) => {
      const names = hostileCase(device, acts);
      assert.equal(listOpenFds().length, before, 'fd count back to its value before the case');
      for (const n of names) assert.equal(mappingsOf(n), 0, `memfd ${n} is still mapped`);
      honest(device);
      assert.equal(listOpenFds().length, before);
    }),
    { numRuns: RUNS },
  );
});

test('regression: a front-end that never reads its replies is dropped, the loop never waits on it (#18 case 5)', () => {
  const [fe, be] = socketPair();
  const conn = new BackendConnection(be, new BackendSession({ device: new EchoDevice(), log: silent }));
  try {
    const one = encodeRequest({ type: 'GET_FEATURES', body: null, fds: [] }).bytes;
    const batch = new Uint8Array(one.length * 100);
    for (let i = 0; i < 100; i++) batch.set(one, i * one.length);
    let reason: string | null = null;
    for (let i = 0; i < 10_000 && reason === null; i++) {
      sendMsg(fe, batch);
      while (reason === null && (poll([{ fd: be, events: POLLIN }], 0)[0] ?? 0) & POLLIN) reason = conn.onReadable();
    }
    assert.match(reason ?? 'never dropped', /unread/);
  } finally {
    conn.close();
    closeQuiet(fe);
  }
});
