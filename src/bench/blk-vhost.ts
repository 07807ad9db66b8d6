// SPDX-License-Identifier: Apache-2.0
/**
 * vhost-user-blk benchmark over AVP's front-end: AVP plays QEMU and a Linux-like guest driver
 * against any vhost-user-blk back-end socket and measures what the back-end sustains, with no VM
 * and no guest kernel in the way.
 *
 * Owns: the cases (4 KiB random read and write at queue depth 1 and 32, 128 KiB sequential read
 * at queue depth 8), one connection per case set up as QEMU 7.2 does (VERSION_1, EVENT_IDX, the
 * device's own features, ADD_MEM_REG), a closed-loop driver that keeps `queueDepth` requests in
 * flight for the case's duration (notify as avail_event asks, sleep on the call eventfd, reap
 * every used element, resubmit at once, like virtio_blk with EVENT_IDX), and per-request latency
 * from submission to reaping; IOPS, MB/s, p50 and p99.
 * Does not own: starting back-ends (vhost-user/spawn.ts), comparing back-ends (blk-compare.ts),
 * or output formatting (the CLI).
 *
 * The front-end runs on the calling thread and blocks it: call it from a CLI or a script, never
 * from a process that also hosts the back-end.
 */
import { randomFillSync } from 'node:crypto';
import { GuestAllocator } from '../memory/allocator.js';
import { DriverQueue } from '../queue/split-driver.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import { VHOST_USER_F_PROTOCOL_FEATURES, VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1, featureBit, hasFeature } from '../spec/virtio.js';
import { POLLIN, eventfdRead, eventfdWrite, poll } from '../sys/index.js';
import { VhostUserFrontend } from '../vhost-user/frontend.js';
import { VHOST_USER_PROTOCOL_F_CONFIG, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK } from '../vhost-user/protocol.js';

/** One benchmark case. */
export interface BlkBenchCase {
  readonly name: string;
  readonly op: 'read' | 'write';
  readonly pattern: 'random' | 'sequential';
  readonly blockSize: number;
  readonly queueDepth: number;
}

export const BLK_BENCH_CASES: readonly BlkBenchCase[] = [
  { name: 'randread-4k-qd1', op: 'read', pattern: 'random', blockSize: 4096, queueDepth: 1 },
  { name: 'randread-4k-qd32', op: 'read', pattern: 'random', blockSize: 4096, queueDepth: 32 },
  { name: 'randwrite-4k-qd1', op: 'write', pattern: 'random', blockSize: 4096, queueDepth: 1 },
  { name: 'randwrite-4k-qd32', op: 'write', pattern: 'random', blockSize: 4096, queueDepth: 32 },
  { name: 'seqread-128k-qd8', op: 'read', pattern: 'sequential', blockSize: 128 << 10, queueDepth: 8 },
];

export interface BlkBenchResult {
  readonly name: string;
  readonly ios: number;
  readonly seconds: number;
  readonly iops: number;
  /** Megabytes (10^6 bytes) per second. */
  readonly mbps: number;
  /** Latency percentiles in microseconds, submission to reaping. */
  readonly p50us: number;
  readonly p99us: number;
  /** Requests answered with a status other than OK (should be 0). */
  readonly errors: number;
  /** Used-buffer notifications (call eventfd signals) per request. */
  readonly callsPerIo: number;
  /** Available-buffer notifications (kicks) per request. */
  readonly kicksPerIo: number;
}

export interface BlkBenchOptions {
  /** Measured seconds per case (after a short warm-up). */
  readonly seconds: number;
  /** Warm-up seconds per case, not measured (default 0.5). */
  readonly warmupSeconds?: number;
  /** Deadline for one reply or a completion (default 10 s). */
  readonly timeoutMs?: number;
}

const QUEUE_SIZE = 128;
const GUEST_BASE = 0x1_0000_0000;
const VIRTIO_BLK_T_IN = 0;
const VIRTIO_BLK_T_OUT = 1;
const STATUS_PENDING = 0xff;

/** A QEMU 7.2-like connection with one ring of 128, ready for `depth` requests of `blockSize`. */
class BenchConnection {
  readonly fe: VhostUserFrontend;
  readonly dq: DriverQueue<number>;
  readonly kick: number;
  readonly call: number;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  readonly hdr: number[] = [];
  readonly data: number[] = [];
  readonly status: number[] = [];
  readonly #view: DataView;
  readonly #bytes: Uint8Array;

  constructor(socketPath: string, depth: number, blockSize: number, timeoutMs: number) {
    this.fe = VhostUserFrontend.connect(socketPath, { replyTimeoutMs: timeoutMs });
    try {
      const offered = this.fe.getU64('GET_FEATURES');
      const wantProto = featureBit(VHOST_USER_PROTOCOL_F_MQ) | featureBit(VHOST_USER_PROTOCOL_F_REPLY_ACK) | featureBit(VHOST_USER_PROTOCOL_F_CONFIG) | featureBit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
      const proto = this.fe.getU64('GET_PROTOCOL_FEATURES') & wantProto;
      this.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: proto, fds: [] });
      this.fe.request({ type: 'SET_OWNER', body: null, fds: [] });
      const cfg = this.fe.getConfig(0, 8);
      if (cfg === null || cfg.payload.length !== 8) throw new Error('GET_CONFIG of the capacity failed');
      this.capacity = Number(new DataView(cfg.payload.buffer, cfg.payload.byteOffset, 8).getBigUint64(0, true));
      // What a Linux guest takes: VERSION_1, EVENT_IDX and the device's own bits (no INDIRECT: every
      // request here has three descriptors and the ring has room for them).
      const features = (offered & (0xff_ffffn | featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_EVENT_IDX))) | featureBit(VHOST_USER_F_PROTOCOL_FEATURES);
      this.fe.request({ type: 'SET_FEATURES', body: features, fds: [] });
      const memSize = 64 * 1024 + depth * (blockSize + 4096);
      const mem = this.fe.createMemory(Math.ceil(memSize / 4096) * 4096 + (1 << 20), { guestBase: GUEST_BASE, addMemReg: hasFeature(proto, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) });
      // Data buffers hold random bytes (what writes carry); the rings are zeroed by DriverQueue.
      randomFillSync(mem.memory.view(GUEST_BASE, mem.region.size));
      const alloc = new GuestAllocator(GUEST_BASE, mem.region.size);
      const addrs = { desc: alloc.alloc(descTableSize(QUEUE_SIZE), 4096), avail: alloc.alloc(availRingSize(QUEUE_SIZE), 4096), used: alloc.alloc(usedRingSize(QUEUE_SIZE), 4096) };
      this.dq = new DriverQueue<number>({ memory: mem.memory, size: QUEUE_SIZE, addrs, eventIdx: hasFeature(features, VIRTIO_F_EVENT_IDX) });
      for (let i = 0; i < depth; i++) {
        this.data.push(alloc.alloc(blockSize, 4096));
        this.hdr.push(alloc.alloc(16, 16));
        this.status.push(alloc.alloc(1, 1));
      }
      const { kick, call } = this.fe.setupVring(0, QUEUE_SIZE, addrs, mem);
      this.kick = kick;
      this.call = call;
      this.#bytes = mem.memory.view(GUEST_BASE, mem.region.size);
      this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.byteLength);
    } catch (e: unknown) {
      this.fe.close();
      throw e;
    }
  }

  /** Writes the request header of slot `i` and makes its chain available. */
  submit(i: number, type: number, sector: number, blockSize: number): void {
    // Safe: slot indexes are < depth, which sized the arrays.
    const hdr = this.hdr[i]! - GUEST_BASE;
    this.#view.setUint32(hdr, type, true);
    this.#view.setUint32(hdr + 4, 0, true);
    this.#view.setBigUint64(hdr + 8, BigInt(sector), true);
    const status = this.status[i]!;
    this.#bytes[status - GUEST_BASE] = STATUS_PENDING;
    this.dq.add(
      [
        { addr: this.hdr[i]!, len: 16 },
        { addr: this.data[i]!, len: blockSize, writable: type === VIRTIO_BLK_T_IN },
        { addr: status, len: 1, writable: true },
      ],
      i,
    );
  }

  statusOf(i: number): number {
    // Safe: as in submit.
    return this.#bytes[this.status[i]! - GUEST_BASE] ?? STATUS_PENDING;
  }

  /** Kicks sent and call signals received. */
  kicks = 0;
  calls = 0;

  notifyIfAsked(): void {
    if (this.dq.needsKick()) {
      eventfdWrite(this.kick);
      this.kicks++;
    }
  }

  /** Sleeps until the call eventfd fires or `ms` pass; true when it fired. */
  waitCall(ms: number): boolean {
    if (!((poll([{ fd: this.call, events: POLLIN }], ms)[0] ?? 0) & POLLIN)) return false;
    this.calls += Number(eventfdRead(this.call));
    return true;
  }

  close(): void {
    this.fe.close();
  }
}

/** Percentile `p` (0..1) of sorted samples. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

/** Runs one case on a fresh connection. @throws Error when the back-end stops completing requests. */
export function runBlkCase(socketPath: string, c: BlkBenchCase, opts: BlkBenchOptions): BlkBenchResult {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const conn = new BenchConnection(socketPath, c.queueDepth, c.blockSize, timeoutMs);
  try {
    const sectors = c.blockSize / 512;
    const blocks = Math.floor(conn.capacity / sectors);
    if (blocks < 1) throw new Error(`the device is smaller than one ${c.blockSize}-byte block`);
    const type = c.op === 'read' ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
    let seq = 0;
    const nextSector = (): number => {
      if (c.pattern === 'sequential') return (seq++ % blocks) * sectors;
      return Math.floor(Math.random() * blocks) * sectors;
    };
    const started = new Float64Array(c.queueDepth);
    let samples = new Float64Array(1 << 16);
    let n = 0;
    let errors = 0;
    const warmEnd = performance.now() + (opts.warmupSeconds ?? 0.5) * 1000;
    let measureFrom = Number.POSITIVE_INFINITY;
    let end = Number.POSITIVE_INFINITY;
    let inFlight = 0;
    const issue = (i: number, now: number) => {
      started[i] = now;
      conn.submit(i, type, nextSector(), c.blockSize);
      inFlight++;
    };
    let now = performance.now();
    for (let i = 0; i < c.queueDepth; i++) issue(i, now);
    conn.notifyIfAsked();
    for (;;) {
      // Sleep only when nothing is pending: the device may have completed while we reaped.
      while (conn.dq.usedPending() === 0) {
        if (!conn.waitCall(timeoutMs) && conn.dq.usedPending() === 0) throw new Error(`${c.name}: no completion within ${timeoutMs} ms (${inFlight} in flight)`);
      }
      now = performance.now();
      if (measureFrom === Number.POSITIVE_INFINITY && now >= warmEnd) {
        measureFrom = now;
        end = now + opts.seconds * 1000;
        n = 0;
        errors = 0;
        conn.kicks = 0;
        conn.calls = 0;
      }
      const stopping = now >= end;
      for (let u = conn.dq.popUsed(); u !== null; u = conn.dq.popUsed()) {
        const i = u.token;
        inFlight--;
        if (conn.statusOf(i) !== 0) errors++;
        if (n === samples.length) {
          const bigger = new Float64Array(samples.length * 2);
          bigger.set(samples);
          samples = bigger;
        }
        // Safe: i < depth.
        samples[n++] = now - started[i]!;
        if (!stopping) issue(i, now);
      }
      if (stopping && inFlight === 0) break;
      conn.notifyIfAsked();
    }
    const seconds = (now - measureFrom) / 1000;
    const sorted = samples.slice(0, n).sort();
    return {
      name: c.name,
      ios: n,
      seconds,
      iops: n / seconds,
      mbps: (n * c.blockSize) / seconds / 1e6,
      p50us: percentile(sorted, 0.5) * 1000,
      p99us: percentile(sorted, 0.99) * 1000,
      errors,
      callsPerIo: conn.calls / Math.max(1, n),
      kicksPerIo: conn.kicks / Math.max(1, n),
    };
  } finally {
    conn.close();
  }
}

/** Runs `cases` one after the other against the back-end at `socketPath`. */
export function runBlkBench(socketPath: string, cases: readonly BlkBenchCase[], opts: BlkBenchOptions, onCase?: (r: BlkBenchResult) => void): BlkBenchResult[] {
  return cases.map((c) => {
    const r = runBlkCase(socketPath, c, opts);
    onCase?.(r);
    return r;
  });
}

/** One line per result: name, IOPS, MB/s, p50 and p99 latency. */
export function formatBlkResult(r: BlkBenchResult): string {
  const us = (v: number) => `${v.toFixed(0)} us`;
  return `${r.name.padEnd(18)} ${r.iops.toFixed(0).padStart(8)} IOPS ${r.mbps.toFixed(1).padStart(8)} MB/s   p50 ${us(r.p50us).padStart(9)}   p99 ${us(r.p99us).padStart(9)}   calls/IO ${r.callsPerIo.toFixed(2)} kicks/IO ${r.kicksPerIo.toFixed(2)}${r.errors > 0 ? `   ${r.errors} errors` : ''}`;
}
