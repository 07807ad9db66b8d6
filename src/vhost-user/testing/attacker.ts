// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: a hostile front-end (issue #18). A raw vhost-user client on AVP's front-end codec
 * that can lie about memory (a region larger than its memfd, a memfd it shrinks later), send half
 * messages with fds attached, saturate its eventfds, and name rings that do not exist, plus the
 * leak probes the tests judge with: fds whose closing by the back-end shows as a hang-up on our
 * end of a socket pair, and memfd mappings looked up in /proc/self/maps.
 * Owns: test behaviour only.
 */
import { readFileSync } from 'node:fs';
import { RegionGuestMemory } from '../../memory/guest-memory.js';
import { DriverQueue } from '../../queue/split-driver.js';
import { POLLHUP, POLLIN, closeQuiet, eventfdCreate, memfdCreate, mmapShared, munmap, poll, socketPair, type Mapping } from '../../sys/index.js';
import { VhostUserFrontend, type VringFds } from '../frontend.js';
import type { BackendReply, FrontendRequestInit, MemoryRegion } from '../messages.js';

export const USER_BASE = 0x7f00_0000_0000;
export const RING_ADDRS = { desc: 0x1000, avail: 0x2000, used: 0x3000 };
const PROTOCOL_FEATURES = 1n << 30n;
const VERSION_1 = 1n << 32n;
/** REPLY_ACK | CONFIGURE_MEM_SLOTS | MQ. */
const PROTOCOL = (1n << 3n) | (1n << 15n) | (1n << 0n);

let serial = 0;
/** A memfd name unique in this process, to find its mapping in /proc/<pid>/maps. */
export function uniqueName(what: string): string {
  return `avp-attack-${what}-${process.pid}-${serial++}`;
}

/** Lines of /proc/<pid>/maps that map memfd `name`. */
export function mappingsOf(name: string, pid: number | 'self' = 'self'): number {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes(`/memfd:${name} `)).length;
}

/**
 * A socket pair whose `sent` end goes to the back-end; `closedRemotely(ms)` is true once every
 * copy of it is closed (the back-end closed the one it received, and we closed ours).
 */
export function leakProbe(): { sent: number; closedRemotely: (ms: number) => boolean; dispose: () => void } {
  const [sent, watch] = socketPair();
  let sentOpen = true;
  return {
    sent,
    closedRemotely(ms) {
      if (sentOpen) {
        closeQuiet(sent);
        sentOpen = false;
      }
      return ((poll([{ fd: watch, events: POLLIN }], ms)[0] ?? 0) & POLLHUP) !== 0;
    },
    dispose() {
      if (sentOpen) closeQuiet(sent);
      closeQuiet(watch);
    },
  };
}

export interface AttackMemory {
  readonly fd: number;
  readonly name: string;
  /** Our own view of the file's first `fileSize` bytes (rings live there). */
  readonly memory: RegionGuestMemory;
  readonly mapping: Mapping;
  readonly region: MemoryRegion;
}

export class Attacker {
  readonly fe: VhostUserFrontend;
  readonly #memories: AttackMemory[] = [];

  constructor(path: string, timeoutMs = 2000) {
    this.fe = VhostUserFrontend.connect(path, { replyTimeoutMs: timeoutMs });
  }

  /** SET_PROTOCOL_FEATURES (REPLY_ACK, CONFIGURE_MEM_SLOTS, MQ), SET_OWNER, SET_FEATURES. */
  handshake(): this {
    this.fe.getU64('GET_FEATURES');
    this.fe.getU64('GET_PROTOCOL_FEATURES');
    this.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: PROTOCOL, fds: [] });
    this.fe.requestAcked({ type: 'SET_OWNER', body: null, fds: [] });
    this.fe.requestAcked({ type: 'SET_FEATURES', body: VERSION_1 | PROTOCOL_FEATURES, fds: [] });
    return this;
  }

  /** Sends a request with NEED_REPLY and returns the ack value (0 = success). */
  ack(init: FrontendRequestInit): bigint {
    const r: BackendReply | null = this.fe.request({ ...init, needReply: true } as FrontendRequestInit);
    if (r?.type !== 'ACK') throw new Error(`${init.type}: no ack`);
    return r.body;
  }

  /**
   * A memfd of `fileSize` bytes announced as a region of `regionSize` bytes (a lie when larger) at
   * guest address `guestAddr`, by SET_MEM_TABLE or ADD_MEM_REG. Returns the ack.
   */
  memory(opts: { fileSize: number; regionSize?: number; guestAddr?: number; sealable?: boolean; how?: 'set' | 'add' }): { ack: bigint; mem: AttackMemory } {
    const name = uniqueName('mem');
    const fd = memfdCreate(name, opts.fileSize, { allowSealing: opts.sealable === true });
    const mapping = mmapShared(fd, opts.fileSize);
    const guestAddr = opts.guestAddr ?? 0;
    const region: MemoryRegion = { guestAddr, size: opts.regionSize ?? opts.fileSize, userAddr: USER_BASE + guestAddr, mmapOffset: 0 };
    const mem: AttackMemory = { fd, name, mapping, region, memory: new RegionGuestMemory([{ guestBase: guestAddr, bytes: new Uint8Array(mapping.buffer) }]) };
    this.#memories.push(mem);
    const ack = opts.how === 'add' ? this.ack({ type: 'ADD_MEM_REG', body: region, fds: [fd] }) : this.ack({ type: 'SET_MEM_TABLE', body: { regions: [region] }, fds: [fd] });
    return { ack, mem };
  }

  /** Ring 0 in `mem` at RING_ADDRS (relative to the region), set up and enabled. */
  ring(mem: AttackMemory, opts: { call?: number } = {}): { dq: DriverQueue<number>; fds: VringFds } {
    const base = mem.region.guestAddr;
    const addrs = { desc: base + RING_ADDRS.desc, avail: base + RING_ADDRS.avail, used: base + RING_ADDRS.used };
    const dq = new DriverQueue<number>({ memory: mem.memory, size: 8, addrs, eventIdx: false });
    const fds = this.fe.setupVring(0, 8, addrs, { memory: mem.memory, region: mem.region, fd: mem.fd, mapping: mem.mapping });
    if (opts.call !== undefined) this.fe.request({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [opts.call] });
    return { dq, fds };
  }

  close(): void {
    this.fe.close();
    for (const m of this.#memories.splice(0)) {
      munmap(m.mapping);
      closeQuiet(m.fd);
    }
  }
}

/** Waits up to `ms` for the used element of `token` on `dq`. */
export function waitUsed(dq: DriverQueue<number>, token: number, ms = 2000): { len: number } | null {
  const end = Date.now() + ms;
  for (;;) {
    const u = dq.popUsed();
    if (u !== null && u.token === token) return u;
    if (Date.now() > end) return null;
    poll([{ fd: eventfdCreateOnce(), events: POLLIN }], 5);
  }
}

/** An eventfd nobody writes, to sleep on with poll (made at load, so fd counts do not see it appear). */
const sleeper = eventfdCreate();
function eventfdCreateOnce(): number {
  return sleeper;
}

/** Sleeps `ms` milliseconds synchronously. */
export function sleepSync(ms: number): void {
  poll([{ fd: sleeper, events: POLLIN }], ms);
}

/**
 * Waits until `count()` equals `want` (the back-end tears a session down asynchronously, in its
 * own thread), at most `ms`; returns the last value seen.
 */
export function settle(count: () => number, want: number, ms = 3000): number {
  const end = Date.now() + ms;
  let n = count();
  while (n !== want && Date.now() < end) {
    sleepSync(10);
    n = count();
  }
  return n;
}
