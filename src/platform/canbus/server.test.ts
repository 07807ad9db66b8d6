// SPDX-License-Identifier: Apache-2.0
/**
 * The CAN bus server over real Unix sockets (slcan peers are plain socket clients here, as QEMU's
 * chardev is for a guest), on the real clock: frames between nodes, the candump log, the replay
 * starting once every node joined, the host socket, hostile input, back-pressure without loss,
 * bus-off reports, the SocketCAN bridge (with a fake raw socket; this host may have no CAN), and
 * clean stop. Tests wait for data, never for time.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCanFilter } from '../../can/index.js';
import type { CanRawSocket, RawCanFrame } from '../../sys/index.js';
import type { CanBusConfig } from './config.js';
import { CanBusServer, MAX_HOST_CONNECTIONS } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'avp-canbus-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

interface Peer {
  socket: Socket;
  text(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  send(s: string): void;
}

function connect(path: string): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    let got = '';
    const waiters: Array<{ re: RegExp; resolve: (s: string) => void }> = [];
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      got += d;
      for (const w of [...waiters]) {
        if (w.re.test(got)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(got);
        }
      }
    });
    socket.on('error', reject);
    socket.on('connect', () =>
      resolve({
        socket,
        text: () => got,
        send: (s) => socket.write(s),
        waitFor: (re, timeoutMs = 20_000) =>
          re.test(got)
            ? Promise.resolve(got)
            : new Promise((res, rej) => {
                const t = setTimeout(() => rej(new Error(`no ${re} within ${timeoutMs} ms; got ${JSON.stringify(got.slice(-300))}`)), timeoutMs);
                waiters.push({ re, resolve: (s) => (clearTimeout(t), res(s)) });
              }),
      }),
    );
  });
}

function config(nodes: string[], extra: Partial<CanBusConfig> = {}): CanBusConfig {
  const n = ++seq;
  return { name: `bus${n}`, bitrate: 500_000, nodes: nodes.map((name) => ({ name, socket: join(dir, `${n}-${name}.sock`) })), ...extra };
}

async function withServer(cfg: CanBusConfig, fn: (s: CanBusServer, peers: Map<string, Peer>) => Promise<void>, opts: Partial<ConstructorParameters<typeof CanBusServer>[1]> = {}): Promise<void> {
  const server = new CanBusServer(cfg, { log: quiet, ...opts });
  await server.start();
  const peers = new Map<string, Peer>();
  try {
    for (const n of cfg.nodes) peers.set(n.name, await connect(n.socket));
    await fn(server, peers);
  } finally {
    for (const p of peers.values()) p.socket.destroy();
    await server.stop();
  }
  for (const n of cfg.nodes) assert.ok(!existsSync(n.socket), `${n.socket} removed`);
}

// Safe: every test names peers it configured.
const peer = (m: Map<string, Peer>, n: string): Peer => m.get(n)!;

test('two slcan peers exchange frames after O; the bus writes a candump log', async () => {
  const log = join(dir, 'bus.log');
  const cfg = config(['a', 'b'], { log });
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'a').send('C\rS6\rO\r');
    peer(peers, 'b').send('O\r');
    await peer(peers, 'a').waitFor(/^\r\r\r$/);
    await peer(peers, 'b').waitFor(/^\r$/);
    await waitUntil(() => server.node('b')?.isOpen === true);
    peer(peers, 'a').send('t1232AABB\rT1ABCDEF00\r');
    await peer(peers, 'b').waitFor(/t1232AABB\rT1ABCDEF00\r$/);
    peer(peers, 'b').send('r7FF4\r');
    await peer(peers, 'a').waitFor(/r7FF4\r$/);
    const m = server.metrics() as { bus: { frames: number }; nodes: Record<string, { txFrames: number; rxFrames: number; requestedBitrate?: number }> };
    assert.equal(m.bus.frames, 3);
    assert.equal(m.nodes['a']?.txFrames, 2);
    assert.equal(m.nodes['a']?.requestedBitrate, 500_000);
  });
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0] ?? '', new RegExp(`^\\(\\d+\\.\\d{6}\\) ${cfg.name} 123#AABB$`));
  assert.match(lines[1] ?? '', / 1ABCDEF0#$/);
  assert.match(lines[2] ?? '', / 7FF#R4$/);
});

test('hostile input: bad lines get BEL and are counted; a second connection to a node socket is refused', async () => {
  const cfg = config(['a', 'b']);
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'a').send(`O\rt12\rxyz\rsa000000\rT${'F'.repeat(500)}\r`);
    await peer(peers, 'a').waitFor(/^\r\x07\x07\x07\x07$/);
    const second = await connect(cfg.nodes[0]!.socket);
    await new Promise<void>((resolve) => second.socket.on('close', () => resolve()));
    const m = server.metrics() as { nodes: Record<string, { invalid: number; connections: number }> };
    assert.equal(m.nodes['a']?.invalid, 4);
    assert.equal(m.nodes['a']?.connections, 1);
    // A frame before O is refused (the channel is closed): BEL.
    peer(peers, 'b').send('t1230\r');
    await peer(peers, 'b').waitFor(/^\x07$/);
  });
});

test('the replay starts when every node has joined and reaches all of them, in order', async () => {
  const trace = join(dir, 'speed.log');
  writeFileSync(trace, ['(100.000000) vcan0 123#0058', '(100.010000) vcan0 20000080#0000000000000000', '(100.020000) vcan0 123#0059', '(100.030000) other 456#00', '(100.040000) vcan0 123#005A', ''].join('\n'));
  const cfg = config(['a', 'b'], { replay: { file: trace, loop: false, start: 'all-open', ifname: 'vcan0' } });
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'a').send('O\r');
    await peer(peers, 'a').waitFor(/\r/);
    assert.equal((server.metrics() as { replay: { started: boolean } }).replay.started, false, 'not before b joined');
    peer(peers, 'b').send('O\r');
    for (const p of ['a', 'b']) await peer(peers, p).waitFor(/t12320058\rt12320059\rt1232005A\r$/);
    const m = server.metrics() as { replay: { sent: number; skipped: number } };
    assert.deepEqual([m.replay.sent, m.replay.skipped], [3, 1]);
  });
});

test('a bad replay log fails the start naming the line, before any socket exists', async () => {
  const trace = join(dir, 'bad.log');
  writeFileSync(trace, '(1.0) can0 123#00\n(2.0) can0 12#00\n');
  const cfg = config(['a'], { replay: { file: trace, loop: false, start: 'now' } });
  const server = new CanBusServer(cfg, { log: quiet });
  await assert.rejects(server.start(), { code: 'CAN_BAD_FRAME', message: /bad\.log line 2/ });
  assert.ok(!existsSync(cfg.nodes[0]!.socket));
});

test('host socket: each connection is a node, open at once; receive filters apply', async () => {
  const host = join(dir, `${++seq}-host.sock`);
  const cfg = config(['ecu'], { hostSocket: host });
  cfg.nodes[0] = { ...cfg.nodes[0]!, receive: [parseCanFilter('100:700')] };
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'ecu').send('O\r');
    const h1 = await connect(host);
    const h2 = await connect(host);
    await waitUntil(() => server.node('host2')?.isOpen === true && server.node('ecu')?.isOpen === true);
    h1.send('t2001FF\rt1001EE\r');
    await h2.waitFor(/t2001FF\rt1001EE\r$/);
    await peer(peers, 'ecu').waitFor(/t1001EE\r$/);
    assert.doesNotMatch(peer(peers, 'ecu').text(), /t200/);
    h1.socket.destroy();
    h2.socket.destroy();
    await waitUntil(() => server.node('host1') === undefined && server.node('host2') === undefined);
  });
  assert.ok(!existsSync(host));
});

test('host socket: at most MAX_HOST_CONNECTIONS host programs; one more is turned away', async () => {
  const host = join(dir, `${++seq}-host.sock`);
  const cfg = config([], { hostSocket: host });
  const server = new CanBusServer(cfg, { log: quiet });
  await server.start();
  const peers: Peer[] = [];
  try {
    for (let i = 0; i < MAX_HOST_CONNECTIONS; i++) peers.push(await connect(host));
    await waitUntil(() => server.node(`host${MAX_HOST_CONNECTIONS}`) !== undefined);
    const extra = await connect(host);
    peers.push(extra);
    await new Promise<void>((resolve) => extra.socket.on('close', () => resolve()));
    assert.equal(server.bus.nodes.length, MAX_HOST_CONNECTIONS);
  } finally {
    for (const p of peers) p.socket.destroy();
    await server.stop();
  }
});

test('back-pressure: 3000 frames from one peer all arrive, in order, though the transmit buffer holds 64', async () => {
  const cfg = config(['src', 'dst'], { bitrate: 1_000_000 });
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'src').send('O\r');
    peer(peers, 'dst').send('O\r');
    await waitUntil(() => server.node('src')?.isOpen === true && server.node('dst')?.isOpen === true);
    let burst = '';
    for (let i = 0; i < 3000; i++) burst += `t1002${(i & 0xffff).toString(16).toUpperCase().padStart(4, '0')}\r`;
    peer(peers, 'src').send(burst);
    await peer(peers, 'dst').waitFor(/t1002(0BB7)\r$/, 60_000);
    const got = peer(peers, 'dst').text().split('\r').filter((l) => l.startsWith('t'));
    assert.equal(got.length, 3000);
    got.forEach((l, i) => assert.equal(l, `t1002${i.toString(16).toUpperCase().padStart(4, '0')}`));
    const m = server.metrics() as { nodes: Record<string, { txFull: number; txFrames: number }> };
    assert.equal(m.nodes['src']?.txFrames, 3000);
    assert.ok((m.nodes['src']?.txFull ?? 0) > 0, 'the buffer filled and the peer was paused');
  });
});

test('bus-off is reported to the peer as an slcan state line; reopening restarts it', async () => {
  const cfg = config(['a', 'b']);
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'a').send('O\r');
    await waitUntil(() => server.node('a')?.isOpen === true);
    server.node('a')?.injectErrors(300);
    await peer(peers, 'a').waitFor(/sb000255\r$/);
    peer(peers, 'a').send('t1230\r');
    await peer(peers, 'a').waitFor(/sb000255\r\x07$/);
    peer(peers, 'a').send('C\rO\r');
    await peer(peers, 'a').waitFor(/sa000000\r\r$/);
  });
});

test('a lone sender gets ACK errors (e1a) and goes error passive', async () => {
  const cfg = config(['a', 'b']);
  await withServer(cfg, async (server, peers) => {
    peer(peers, 'a').send('O\r');
    await waitUntil(() => server.node('a')?.isOpen === true);
    for (let i = 0; i < 16; i++) peer(peers, 'a').send('t1230\r');
    await peer(peers, 'a').waitFor(/sp000128\r/);
    assert.equal(server.node('a')?.counters.ackErrors, 16);
  });
});

class FakeRaw implements CanRawSocket {
  readonly ifname = 'vcan9';
  readonly fd = 99;
  readonly written: RawCanFrame[] = [];
  readonly queue: RawCanFrame[] = [];
  #wake: ((v: boolean) => void) | undefined;
  closed = false;
  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.queue.length > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.#wake = (v) => (clearTimeout(t), resolve(v));
    });
  }
  read(): RawCanFrame | null {
    return this.queue.shift() ?? null;
  }
  write(f: RawCanFrame): boolean {
    this.written.push(f);
    return true;
  }
  push(f: RawCanFrame): void {
    this.queue.push(f);
    this.#wake?.(true);
  }
  close(): void {
    this.closed = true;
  }
}

test('SocketCAN bridge: host frames reach the nodes, bus frames reach the host; error frames are dropped', async () => {
  const raw = new FakeRaw();
  const cfg = config(['a'], { socketcan: 'vcan9' });
  await withServer(
    cfg,
    async (server, peers) => {
      peer(peers, 'a').send('O\r');
      await waitUntil(() => server.node('a')?.isOpen === true);
      raw.push({ canId: 0x20000004, fd: false, flags: 0, data: new Uint8Array(8), rtrLength: 0 });
      raw.push({ canId: 0x80001234, fd: false, flags: 0, data: Uint8Array.of(1, 2), rtrLength: 0 });
      raw.push({ canId: 0x42, fd: true, flags: 1, data: new Uint8Array(12), rtrLength: 0 });
      await peer(peers, 'a').waitFor(/T0000123420102\rb0429[0]{24}\r$/);
      peer(peers, 'a').send('t7FF0\r');
      await waitUntil(() => raw.written.length === 1);
      assert.deepEqual(raw.written[0], { canId: 0x7ff, fd: false, flags: 0, data: new Uint8Array(0), rtrLength: 0 });
      const m = server.metrics() as { socketcan: { fromHost: number; toHost: number; dropped: number } };
      assert.deepEqual([m.socketcan.fromHost, m.socketcan.toHost, m.socketcan.dropped], [2, 1, 1]);
    },
    { openCanRaw: () => raw },
  );
  assert.ok(raw.closed);
});

test('SocketCAN bridge: a host without the interface is skipped with the reason; the bus still runs', async () => {
  const cfg = config(['a', 'b'], { socketcan: 'vcan0' });
  const warnings: string[] = [];
  const server = new CanBusServer(cfg, {
    log: { ...quiet, warn: (m) => warnings.push(m) },
    openCanRaw: () => {
      throw new Error('socket(PF_CAN, SOCK_RAW, CAN_RAW) failed: EAFNOSUPPORT');
    },
  });
  await server.start();
  try {
    assert.match(warnings.join('\n'), /SocketCAN bridge to vcan0 skipped: .*EAFNOSUPPORT/);
    assert.deepEqual((server.metrics() as { socketcan: unknown }).socketcan, { ifname: 'vcan0', skipped: 'socket(PF_CAN, SOCK_RAW, CAN_RAW) failed: EAFNOSUPPORT' });
  } finally {
    await server.stop();
  }
});

async function waitUntil(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
