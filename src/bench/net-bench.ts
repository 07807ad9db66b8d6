// SPDX-License-Identifier: Apache-2.0
/**
 * Network benchmark: frames per second and Mbit/s between two vhost-user virtio-net ports, AVP's
 * switch against a peer (dpdk-testpmd, io forwarding between two net_vhost ports) driven by the
 * same front-end in the same run, so the ratio means something on a noisy machine.
 *
 * Owns: the two "guests" (AVP's vhost-user front-end plus driver-side queues: one fills port A's
 * transmit ring, the other drains port B's receive ring, in one thread, waiting on the call
 * eventfds when neither ring moves), starting AVP's switch (a back-end thread in this process)
 * and dpdk-testpmd (a child process), and the measurement.
 * Does not own: printing (the CLI and the npm script), installing dpdk.
 *
 * Both back-ends see the same front-end: VERSION_1 | MRG_RXBUF | EVENT_IDX, 256-entry rings,
 * 2 KiB receive buffers, one frame per transmit descriptor (12-byte header + frame), no
 * checksum or segmentation offloads. Frame sizes are Ethernet frames without the FCS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriverQueue } from '../queue/split-driver.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import { VHOST_USER_F_PROTOCOL_FEATURES, VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1, featureMask } from '../spec/virtio.js';
import { VIRTIO_NET_F_MRG_RXBUF } from '../devices/net/spec.js';
import { closeQuiet, connectUnix, eventfdWrite } from '../sys/index.js';
import { VhostUserFrontend, type FrontendMemory, type VringFds } from '../vhost-user/frontend.js';
import { VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK } from '../vhost-user/protocol.js';
import { BackendThread, listenAt } from '../vhost-user/server.js';
import { BACKEND_WORKER_ENTRY } from '../platform/backends.js';
import { errorText } from '../errors.js';
import { median } from './results.js';

const QUEUE = 256;
const BUF = 2048;
const HDR = 12;
const MEMORY = 8 << 20;
const MAC_A = [0x52, 0x54, 0x00, 0xbe, 0x00, 0x0a];
const MAC_B = [0x52, 0x54, 0x00, 0xbe, 0x00, 0x0b];

export interface NetBenchResult {
  peer: string;
  frameBytes: number;
  seconds: number;
  /** Frames handed to port A / received from port B. */
  sent: number;
  received: number;
  pps: number;
  mbps: number;
}

/** One port's guest: a front-end, its memory, and its two rings. */
class BenchGuest {
  readonly fe: VhostUserFrontend;
  readonly mem: FrontendMemory;
  readonly rx: DriverQueue<number>;
  readonly tx: DriverQueue<number>;
  readonly rxFds: VringFds;
  readonly txFds: VringFds;
  /** Guest addresses of the receive buffers and transmit buffers (one per descriptor). */
  readonly rxBuf: number;
  readonly txBuf: number;
  readonly freeTx: number[] = [];

  constructor(socket: string) {
    this.fe = VhostUserFrontend.connect(socket, { replyTimeoutMs: 20_000 });
    const offered = this.fe.getU64('GET_FEATURES');
    const want = featureMask(VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_F_EVENT_IDX, VHOST_USER_F_PROTOCOL_FEATURES);
    if ((offered & want) !== want) throw new Error(`${socket}: back-end offers 0x${offered.toString(16)}, the benchmark needs 0x${want.toString(16)}`);
    const proto = this.fe.getU64('GET_PROTOCOL_FEATURES');
    this.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: proto & featureMask(VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK), fds: [] });
    this.fe.request({ type: 'SET_OWNER', body: null, fds: [] });
    this.fe.request({ type: 'SET_FEATURES', body: want, fds: [] });
    // SET_MEM_TABLE: dpdk 22.11 does not offer CONFIGURE_MEM_SLOTS.
    this.mem = this.fe.createMemory(MEMORY, { guestBase: 0, addMemReg: false });
    let at = 0;
    const take = (n: number, align: number): number => {
      at = Math.ceil(at / align) * align;
      const a = at;
      at += n;
      return a;
    };
    const rings = () => ({ desc: take(descTableSize(QUEUE), 4096), avail: take(availRingSize(QUEUE), 2), used: take(usedRingSize(QUEUE), 4096) });
    const rxRings = rings();
    const txRings = rings();
    this.rxBuf = take(QUEUE * BUF, 4096);
    this.txBuf = take(QUEUE * BUF, 4096);
    this.rx = new DriverQueue<number>({ memory: this.mem.memory, size: QUEUE, addrs: rxRings, eventIdx: true });
    this.tx = new DriverQueue<number>({ memory: this.mem.memory, size: QUEUE, addrs: txRings, eventIdx: true });
    this.rxFds = this.fe.setupVring(0, QUEUE, rxRings, this.mem);
    this.txFds = this.fe.setupVring(1, QUEUE, txRings, this.mem);
    for (let i = 0; i < QUEUE; i++) this.freeTx.push(i);
  }

  /** Fills the receive ring with 2 KiB buffers. */
  fillRx(): void {
    while (this.rx.numFree > 0) {
      const i = QUEUE - this.rx.numFree;
      this.rx.add([{ addr: this.rxBuf + i * BUF, len: BUF, writable: true }], this.rxBuf + i * BUF);
    }
    if (this.rx.needsKick()) eventfdWrite(this.rxFds.kick);
  }

  /** Writes `frame` (with a zero header) into every transmit buffer. */
  stageTx(frame: Uint8Array): void {
    const bytes = new Uint8Array(HDR + frame.length);
    bytes.set(frame, HDR);
    for (let i = 0; i < QUEUE; i++) this.mem.memory.write(this.txBuf + i * BUF, bytes);
  }

  close(): void {
    this.fe.close();
  }
}

/** An Ethernet frame of `size` bytes from `src` to `dst` (EtherType 0x88b5, local experimental). */
function benchFrame(size: number, dst: number[], src: number[]): Uint8Array {
  const f = new Uint8Array(size);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  for (let i = 14; i < size; i++) f[i] = i & 0xff;
  return f;
}

/**
 * Drives A → B for `seconds` (after a 0.5 s warm-up): keeps A's transmit ring full of `size`-byte
 * frames, recycles B's receive buffers, counts what B receives.
 */
function measure(peer: string, a: BenchGuest, b: BenchGuest, size: number, seconds: number): NetBenchResult {
  a.stageTx(benchFrame(size, MAC_B, MAC_A));
  let sent = 0;
  let received = 0;
  let bytes = 0;
  const step = (): boolean => {
    let moved = false;
    for (let u = a.tx.popUsed(); u !== null; u = a.tx.popUsed()) {
      a.freeTx.push(u.token);
      moved = true;
    }
    for (let i = a.freeTx.pop(); i !== undefined; i = a.freeTx.pop()) {
      a.tx.add([{ addr: a.txBuf + i * BUF, len: HDR + size }], i);
      sent++;
      moved = true;
    }
    if (a.tx.needsKick()) eventfdWrite(a.txFds.kick);
    for (let u = b.rx.popUsed(); u !== null; u = b.rx.popUsed()) {
      received++;
      bytes += u.len - HDR;
      b.rx.add([{ addr: u.token, len: BUF, writable: true }], u.token);
      moved = true;
    }
    if (b.rx.needsKick()) eventfdWrite(b.rxFds.kick);
    // Frames a peer sends back to A (a flood, testpmd's reverse direction) are recycled unread.
    for (let u = a.rx.popUsed(); u !== null; u = a.rx.popUsed()) a.rx.add([{ addr: u.token, len: BUF, writable: true }], u.token);
    if (a.rx.needsKick()) eventfdWrite(a.rxFds.kick);
    return moved;
  };
  const run = (ms: number): number => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      if (!step()) {
        const w = a.fe.waitEvents([a.txFds.call, b.rxFds.call], 5);
        if (w.hangup) throw new Error(`${peer}: the back-end closed the connection`);
      }
    }
    return performance.now();
  };
  run(500);
  sent = 0;
  received = 0;
  bytes = 0;
  const t0 = performance.now();
  const t1 = run(seconds * 1000);
  const elapsed = (t1 - t0) / 1000;
  return { peer, frameBytes: size, seconds: elapsed, sent, received, pps: received / elapsed, mbps: (bytes * 8) / elapsed / 1e6 };
}

/** Connects both guests to `sockets` and runs every frame size. */
function drive(peer: string, sockets: [string, string], sizes: readonly number[], seconds: number): NetBenchResult[] {
  const a = new BenchGuest(sockets[0]);
  const b = new BenchGuest(sockets[1]);
  try {
    a.fillRx();
    b.fillRx();
    // B announces itself so a learning switch knows where it is (testpmd just forwards it to A).
    b.stageTx(benchFrame(60, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], MAC_B));
    b.tx.add([{ addr: b.txBuf, len: HDR + 60 }], 0);
    if (b.tx.needsKick()) eventfdWrite(b.txFds.kick);
    return sizes.map((size) => measure(peer, a, b, size, seconds));
  } finally {
    a.close();
    b.close();
  }
}

/** Runs the AVP switch (a back-end thread of this process) with two ports and measures it. */
export async function benchAvpSwitch(sizes: readonly number[], seconds: number, busyPollUs = 0): Promise<NetBenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-bench-net-'));
  const paths: [string, string] = [join(dir, 'a.sock'), join(dir, 'b.sock')];
  const fds = paths.map((p) => listenAt(p));
  try {
    const thread = await BackendThread.start({
      entry: BACKEND_WORKER_ENTRY,
      // Safe: two paths, two fds.
      ports: paths.map((_, i) => ({ name: `p${i}`, listenFd: fds[i]!, device: { kind: 'net', options: { name: `p${i}` } } })),
      tuning: { busyPollUs },
    });
    try {
      return drive(busyPollUs > 0 ? `avp switch, busy poll ${busyPollUs} us` : 'avp switch', paths, sizes, seconds);
    } finally {
      await thread.stop();
    }
  } finally {
    for (const fd of fds) closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The dpdk-testpmd binary, or undefined when it is not installed. */
export function findTestpmd(): string | undefined {
  for (const p of ['/usr/bin/dpdk-testpmd', '/usr/local/bin/dpdk-testpmd']) if (existsSync(p)) return p;
  return undefined;
}

/**
 * Installs Debian's DPDK with apt-get when testpmd is missing: `dpdk` (the PMDs, the vhost one in
 * librte-net-vhost23) and `dpdk-dev`, which is where Debian 12 puts /usr/bin/dpdk-testpmd.
 * Returns the binary, or a reason it is unavailable.
 */
export function ensureTestpmd(log: (m: string) => void): string | { missing: string } {
  const found = findTestpmd();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) return { missing: 'dpdk-testpmd is not installed and installing it needs root (apt-get install dpdk dpdk-dev)' };
  log('dpdk-testpmd missing: apt-get install -y --no-install-recommends dpdk dpdk-dev');
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'dpdk', 'dpdk-dev'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return findTestpmd() ?? { missing: `apt-get install dpdk dpdk-dev gave status ${r.status} and no dpdk-testpmd` };
}

/** Waits until something listens on `path` (dpdk creates its sockets while it probes the vdevs). */
async function waitListening(path: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dpdk-testpmd exited (${child.exitCode ?? child.signalCode}) before listening on ${path}`);
    try {
      closeQuiet(connectUnix(path));
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`dpdk-testpmd did not listen on ${path} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Runs dpdk-testpmd (no hugepages, vhost PMD, io forwarding between two vhost-user ports; the
 * command line of qemu-7.2-and-node-notes.md §9) and measures it with the same front-end.
 * The probe connection made while waiting for its socket is closed at once; testpmd accepts the
 * next one.
 */
export async function benchTestpmd(binary: string, sizes: readonly number[], seconds: number, log: (m: string) => void = () => {}): Promise<NetBenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-bench-dpdk-'));
  const paths: [string, string] = [join(dir, 'a.sock'), join(dir, 'b.sock')];
  const prefix = `avp-bench-${process.pid}`;
  const args = [
    '-l', '0-1', '--no-pci', '--no-huge', '-m', '1024', `--file-prefix=${prefix}`,
    '--vdev', `net_vhost0,iface=${paths[0]},queues=1`,
    '--vdev', `net_vhost1,iface=${paths[1]},queues=1`,
    '--', '--nb-cores=1', '--total-num-mbufs=8192', '--forward-mode=io', '--auto-start',
  ];
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => out.push(d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => out.push(d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (const p of paths) await waitListening(p, child, 60_000);
    log(`dpdk-testpmd ${args.join(' ')}`);
    return drive('dpdk-testpmd', paths, sizes, seconds);
  } catch (e: unknown) {
    throw new Error(`${errorText(e)}\ntestpmd output:\n${out.join('').slice(-3000)}`, { cause: e });
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
    // EAL keeps its runtime files (tens of MB of fbarrays) under --file-prefix after it exits.
    rmSync(join(dpdkRuntimeDir(), prefix), { recursive: true, force: true });
  }
}

/** Where DPDK's EAL puts runtime files: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk (or /tmp/dpdk). */
function dpdkRuntimeDir(): string {
  return process.getuid?.() === 0 ? '/var/run/dpdk' : join(process.env['XDG_RUNTIME_DIR'] ?? '/tmp', 'dpdk');
}

/** Per peer and frame size: the round with the median packet rate. */
export function medians(results: readonly NetBenchResult[]): NetBenchResult[] {
  const keys = [...new Set(results.map((r) => `${r.peer}\u0000${r.frameBytes}`))];
  return keys.map((k) => {
    const rs = results.filter((r) => `${r.peer}\u0000${r.frameBytes}` === k);
    const m = median(rs.map((r) => r.pps));
    // Safe: rs is non-empty (the key came from it); the closest round to the median represents it.
    return rs.reduce((best, r) => (Math.abs(r.pps - m) < Math.abs(best.pps - m) ? r : best), rs[0]!);
  });
}

/** One line per result, and AVP/testpmd ratios for sizes measured on both. */
export function formatNetBench(results: readonly NetBenchResult[]): string[] {
  const lines = results.map(
    (r) =>
      `${r.peer.padEnd(14)} ${String(r.frameBytes).padStart(5)} B frames  ${(r.pps / 1e3).toFixed(1).padStart(9)} kpps  ${r.mbps.toFixed(1).padStart(9)} Mbit/s  (${r.received}/${r.sent} frames in ${r.seconds.toFixed(2)} s)`,
  );
  for (const avp of results.filter((r) => r.peer === 'avp switch')) {
    const peer = results.find((r) => r.peer === 'dpdk-testpmd' && r.frameBytes === avp.frameBytes);
    if (peer !== undefined && peer.pps > 0) lines.push(`ratio AVP/testpmd at ${avp.frameBytes} B: ${(avp.pps / peer.pps).toFixed(3)} (packets/s)`);
  }
  return lines;
}
