// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-vsock through the in-process harness with fake host sockets (VIRTIO 1.3 §5.10):
 * configuration, connection set-up and teardown both ways, RST cases, credit accounting with exact
 * numbers, back-pressure both ways, and hostile packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { featureMask, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../spec/virtio.js';
import { VsockDevice, VSOCK_QEMU_FEATURES, type VsockOptions } from './model.js';
import { FakeUnixStreams, OP, VsockDriver, hdrBytes, pattern, pump, type FakeSocket, type RxPacket } from './testing.js';

const UDS = '/run/vm3.vsock';
const HOST_PORT_BASE = 0x4000_0000;

interface Rig {
  h: DeviceHarness<VsockDevice>;
  d: VsockDriver<VsockDevice>;
  fake: FakeUnixStreams;
  dev: VsockDevice;
  pump(): void;
  recv(): RxPacket[];
}

function rig(opts: Partial<VsockOptions> = {}, harness: { features?: bigint; rxBuffers?: number; fill?: boolean } = {}): Rig {
  const fake = new FakeUnixStreams();
  const dev = new VsockDevice({ guestCid: 3, udsPath: UDS, host: fake, ...opts });
  const h = new DeviceHarness(dev, { memorySize: 32 << 20, queueSize: 128, ...(harness.features === undefined ? {} : { features: harness.features }) });
  const d = new VsockDriver(h, 3, { rxBuffers: harness.rxBuffers ?? 32, fill: harness.fill ?? true });
  return {
    h,
    d,
    fake,
    dev,
    pump: () => void pump(h.reactor, fake),
    recv: () => d.recv(),
  };
}

/** Opens a guest → host connection from guest port 1234 to host port 5000; returns the host's socket. */
function guestConnect(r: Rig, fields: { buf_alloc?: number; src_port?: number; dst_port?: number } = {}): FakeSocket {
  const dst = fields.dst_port ?? 5000;
  const accepted = r.fake.hostListeners.get(`${UDS}_${dst}`) ?? r.fake.hostListen(`${UDS}_${dst}`);
  r.d.send(r.d.hdr({ op: OP.REQUEST, src_port: fields.src_port ?? 1234, dst_port: dst, buf_alloc: fields.buf_alloc ?? 262144 }));
  const [resp] = r.recv();
  assert.equal(resp?.hdr.op, OP.RESPONSE);
  const s = accepted[accepted.length - 1];
  assert.ok(s !== undefined, 'the host program accepted a connection');
  return s;
}

function ops(pkts: RxPacket[]): string[] {
  const names: Record<number, string> = { 1: 'REQUEST', 2: 'RESPONSE', 3: 'RST', 4: 'SHUTDOWN', 5: 'RW', 6: 'CREDIT_UPDATE', 7: 'CREDIT_REQUEST' };
  return pkts.map((p) => names[p.hdr.op] ?? `op${p.hdr.op}`);
}

test('vsock: config space holds guest_cid as le64; features: VERSION_1, rings, STREAM, NO_IMPLIED_STREAM', () => {
  const r = rig({ guestCid: 0x1234_5678 });
  assert.deepEqual([...r.h.runner.readConfig(0, 8)], [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0]);
  assert.deepEqual([...r.h.runner.readConfig(4, 4)], [0, 0, 0, 0], 'the upper 32 bits are zero');
  r.h.runner.writeConfig(0, new Uint8Array(8).fill(0xff));
  assert.deepEqual([...r.h.runner.readConfig(0, 4)], [0x78, 0x56, 0x34, 0x12], 'guest_cid is read-only');
  assert.equal(r.dev.offeredFeatures, featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, 0, 2));
  assert.deepEqual(r.dev.queueMaxSizes.length, 3, 'rx, tx and event queues');
});

test('vsock: reserved or bad CIDs and options are refused', () => {
  const fake = new FakeUnixStreams();
  for (const cid of [0, 1, 2, 0xffff_ffff, 2 ** 32, 1.5]) assert.throws(() => new VsockDevice({ guestCid: cid }), { code: 'VSOCK_BAD_OPTION' });
  assert.throws(() => new VsockDevice({ guestCid: 3, allowPeers: [2] }), { code: 'VSOCK_BAD_OPTION' });
  assert.throws(() => new VsockDevice({ guestCid: 3, udsPath: UDS }), { code: 'VSOCK_NO_HOST_SOCKETS' });
  const a = new VsockDevice({ guestCid: 3, udsPath: UDS, host: fake });
  assert.throws(() => new VsockDevice({ guestCid: 4, udsPath: UDS, host: fake }), { code: 'VSOCK_LISTEN_FAILED' });
  assert.throws(() => new VsockDevice({ guestCid: 3, fabric: a.fabric }), { code: 'VSOCK_DUPLICATE_CID' });
  a.dispose();
  assert.deepEqual(fake.unlinked, [UDS], 'dispose removes the socket file');
});

test('vsock: guest → host: REQUEST connects to <uds>_<port>; RESPONSE carries our credit; data both ways', () => {
  const r = rig();
  r.fake.hostListen(`${UDS}_5000`);
  r.d.send(r.d.hdr({ op: OP.REQUEST, src_port: 1234, dst_port: 5000, buf_alloc: 262144 }));
  const [resp] = r.recv();
  assert.deepEqual(resp?.hdr, { src_cid: 2n, dst_cid: 3n, src_port: 5000, dst_port: 1234, len: 0, type: 1, op: OP.RESPONSE, flags: 0, buf_alloc: 262144, fwd_cnt: 0 });
  assert.equal(resp?.usedLen, 44);
  const host = r.fake.hostListeners.get(`${UDS}_5000`)?.[0];
  assert.ok(host);
  r.d.send(r.d.hdr({ op: OP.RW, src_port: 1234, dst_port: 5000 }), new TextEncoder().encode('hello'));
  assert.equal(host.text(), 'hello', 'written to the host socket at once');
  host.send('world!');
  r.pump();
  const [rw] = r.recv();
  assert.equal(rw?.hdr.op, OP.RW);
  assert.equal(rw?.hdr.len, 6);
  assert.equal(rw?.hdr.fwd_cnt, 5, 'fwd_cnt counts what reached the host');
  assert.equal(new TextDecoder().decode(rw?.data), 'world!');
  const m = r.dev.metrics();
  assert.deepEqual(m.connections, { open: 1, host: 1, peer: 0, total: 1, hostInitiated: 0, guestInitiated: 1 });
  assert.deepEqual(m.bytes, { guestToHost: 5, hostToGuest: 6, guestToPeer: 0, peerToGuest: 0 });
});

test('vsock: with the features QEMU 7.2 acks (no device bit) stream still works (§5.10.3.2)', () => {
  const r = rig({}, { features: VSOCK_QEMU_FEATURES });
  guestConnect(r);
  assert.equal(r.dev.metrics().connections.open, 1);
});

test('vsock: with NO_IMPLIED_STREAM and without STREAM, stream packets get RST (badType)', () => {
  const r = rig({}, { features: featureMask(VIRTIO_F_VERSION_1, 2) });
  r.fake.hostListen(`${UDS}_5000`);
  r.d.send(r.d.hdr({ op: OP.REQUEST }));
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(r.dev.metrics().malformed.badType, 1);
});

test('vsock: REQUEST to a host port nobody listens on, or without --uds-path, gets RST (noListener)', () => {
  const r = rig();
  r.d.send(r.d.hdr({ op: OP.REQUEST, src_port: 77, dst_port: 9999 }));
  const [rst] = r.recv();
  assert.deepEqual(rst?.hdr, { src_cid: 2n, dst_cid: 3n, src_port: 9999, dst_port: 77, len: 0, type: 1, op: OP.RST, flags: 0, buf_alloc: 0, fwd_cnt: 0 });
  r.fake.connectFailures.set(`${UDS}_5000`, 'EAGAIN');
  r.d.send(r.d.hdr({ op: OP.REQUEST, dst_port: 5000 }));
  assert.deepEqual(ops(r.recv()), ['RST'], 'a full backlog is refused the same way');
  const bare = rig({ udsPath: undefined as unknown as string });
  bare.d.send(bare.d.hdr({ op: OP.REQUEST }));
  assert.deepEqual(ops(bare.recv()), ['RST']);
  assert.equal(r.dev.metrics().resets.noListener, 2);
  assert.equal(bare.dev.metrics().resets.noListener, 1);
});

test('vsock: packets for no connection get RST (unknownConnection); an RST for none is ignored', () => {
  const r = rig();
  for (const op of [OP.RW, OP.RESPONSE, OP.SHUTDOWN, OP.CREDIT_UPDATE, OP.CREDIT_REQUEST]) r.d.send(r.d.hdr({ op }), op === OP.RW ? pattern(10) : undefined);
  r.d.send(r.d.hdr({ op: OP.RST }));
  assert.deepEqual(ops(r.recv()), ['RST', 'RST', 'RST', 'RST', 'RST']);
  const m = r.dev.metrics();
  assert.equal(m.resets.unknownConnection, 5);
  assert.equal(m.resets.fromGuest, 1);
});

test('vsock: host → guest: CONNECT line, REQUEST to the guest, RESPONSE, "OK <hostport>", early data, stream', () => {
  const r = rig();
  const client = r.fake.clientConnect(UDS);
  r.pump();
  client.send('CONNECT 1234\nearly');
  r.pump();
  const [req] = r.recv();
  assert.deepEqual(req?.hdr, { src_cid: 2n, dst_cid: 3n, src_port: HOST_PORT_BASE, dst_port: 1234, len: 0, type: 1, op: OP.REQUEST, flags: 0, buf_alloc: 262144, fwd_cnt: 0 });
  assert.equal(client.text(), '', 'no reply before the guest accepts');
  r.d.send(r.d.hdr({ op: OP.RESPONSE, src_port: 1234, dst_port: HOST_PORT_BASE, buf_alloc: 65536 }));
  assert.equal(client.text(), `OK ${HOST_PORT_BASE}\n`);
  const [early] = r.recv();
  assert.equal(new TextDecoder().decode(early?.data), 'early');
  r.d.send(r.d.hdr({ op: OP.RW, src_port: 1234, dst_port: HOST_PORT_BASE }), new TextEncoder().encode('pong'));
  assert.equal(client.text(), `OK ${HOST_PORT_BASE}\npong`);
  assert.equal(r.dev.metrics().connections.hostInitiated, 1);
  // A second client gets the next host port.
  const c2 = r.fake.clientConnect(UDS);
  c2.send('CONNECT 1234\n');
  r.pump();
  assert.equal(r.recv()[0]?.hdr.src_port, HOST_PORT_BASE + 1);
});

test('vsock: host → guest refused: the guest RSTs, the host socket is closed without a reply', () => {
  const r = rig();
  const client = r.fake.clientConnect(UDS);
  client.send('CONNECT 4444\n');
  r.pump();
  assert.deepEqual(ops(r.recv()), ['REQUEST']);
  r.d.send(r.d.hdr({ op: OP.RST, src_port: 4444, dst_port: HOST_PORT_BASE }));
  assert.equal(client.closed, true);
  assert.equal(client.text(), '');
  assert.equal(r.dev.metrics().connections.open, 0);
});

test('vsock: host → guest the guest never answers: RST after the timeout, host socket closed', () => {
  const r = rig({ timeoutMs: 5000 });
  const client = r.fake.clientConnect(UDS);
  client.send('CONNECT 4444\n');
  r.pump();
  r.recv();
  r.h.reactor.advance(4999);
  assert.equal(client.closed, false);
  r.h.reactor.advance(1);
  assert.equal(client.closed, true);
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(r.dev.metrics().resets.timeout, 1);
});

test('vsock: bad handshakes are dropped and counted: garbage, a port past u32, no line in time, EOF', () => {
  const r = rig({ timeoutMs: 1000 });
  const bad = ['GET / HTTP/1.0\n', 'CONNECT 4294967296\n', 'CONNECT -1\n', 'CONNECT\n', 'x'.repeat(80)];
  const socks = bad.map((line) => {
    const s = r.fake.clientConnect(UDS);
    s.send(line);
    return s;
  });
  const silent = r.fake.clientConnect(UDS);
  const eof = r.fake.clientConnect(UDS);
  eof.peerEnded = true;
  r.pump();
  assert.ok(socks.every((s) => s.closed), 'every bad client is closed');
  assert.equal(eof.closed, true);
  assert.equal(silent.closed, false);
  r.h.reactor.advance(1000);
  assert.equal(silent.closed, true, 'a silent client is closed after the timeout');
  assert.equal(r.dev.metrics().handshakeErrors, bad.length + 2);
  assert.deepEqual(r.recv(), [], 'the guest saw nothing');
});

test('vsock: a CONNECT line split over several reads works', () => {
  const r = rig();
  const client = r.fake.clientConnect(UDS);
  for (const part of ['CON', 'NECT 12', '34\r', '\n']) {
    client.send(part);
    r.pump();
  }
  assert.deepEqual(ops(r.recv()), ['REQUEST']);
});

test('vsock: guest → host credit: buf_alloc bounds the buffer; exact fwd_cnt; CREDIT_UPDATE when the guest view falls below half', () => {
  const r = rig({ connBufferBytes: 8192 });
  const host = guestConnect(r);
  host.capacity = 0; // the host program does not read
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(4096, 1));
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(4096, 2));
  assert.deepEqual(r.recv(), [], 'nothing to say yet');
  assert.deepEqual(r.h.reactor.interest(host.fd), { readable: true, writable: true }, 'waiting for the host to take bytes');
  host.capacity = 3000;
  r.pump();
  assert.deepEqual(r.recv().map((p) => [p.hdr.op, p.hdr.fwd_cnt, p.hdr.buf_alloc]), [[OP.CREDIT_UPDATE, 3000, 8192]], 'guest view was 0 free (< 4096): update with fwd_cnt 3000');
  host.capacity = 1000;
  r.pump();
  assert.deepEqual(r.recv().map((p) => [p.hdr.op, p.hdr.fwd_cnt]), [[OP.CREDIT_UPDATE, 4000]], 'view 3000 free is still below half');
  // The guest may now send 4000 bytes (8192 - (8192 - 4000)); one more is a violation.
  r.d.send(r.d.hdr({ op: OP.RW, fwd_cnt: 0 }), pattern(4000, 3));
  assert.deepEqual(r.recv(), []);
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(1, 4));
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(host.closed, true);
  assert.equal(r.dev.metrics().resets.creditViolation, 1);
  assert.deepEqual(Uint8Array.from(host.written), Uint8Array.from([...pattern(4096, 1), ...pattern(4096, 2)].slice(0, 4000)));
});

test('vsock: CREDIT_REQUEST is answered with CREDIT_UPDATE carrying exact counters', () => {
  const r = rig({ connBufferBytes: 16384 });
  const host = guestConnect(r);
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(1500));
  r.d.send(r.d.hdr({ op: OP.CREDIT_REQUEST }));
  const [u] = r.recv();
  assert.deepEqual([u?.hdr.op, u?.hdr.buf_alloc, u?.hdr.fwd_cnt], [OP.CREDIT_UPDATE, 16384, 1500]);
  assert.equal(host.written.length, 1500);
  assert.equal(r.dev.metrics().creditUpdatesSent, 1);
});

test('vsock: host → guest credit: reads stop at the guest\'s free space, stall counted, CREDIT_REQUEST once, resume on update', () => {
  const r = rig();
  const host = guestConnect(r, { buf_alloc: 1000 });
  host.send(pattern(3000));
  r.pump();
  const first = r.recv();
  assert.deepEqual(first.map((p) => [p.hdr.op, p.hdr.len]), [[OP.RW, 1000], [OP.CREDIT_REQUEST, 0]], 'exactly the guest\'s 1000 bytes of credit, then a request');
  assert.deepEqual(r.h.reactor.interest(host.fd), undefined, 'not watching: nothing to read or write until the guest acts');
  assert.equal(r.dev.metrics().creditStalls, 1);
  r.pump();
  assert.deepEqual(r.recv(), [], 'no busy loop, no second request');
  r.d.send(r.d.hdr({ op: OP.CREDIT_UPDATE, buf_alloc: 1000, fwd_cnt: 600 }));
  r.pump();
  assert.deepEqual(r.recv().map((p) => [p.hdr.op, p.hdr.len]), [[OP.RW, 600], [OP.CREDIT_REQUEST, 0]], 'the 600 bytes the guest freed');
  r.d.send(r.d.hdr({ op: OP.CREDIT_UPDATE, buf_alloc: 4096, fwd_cnt: 1600 }));
  r.pump();
  const rest = r.recv();
  assert.deepEqual(rest.map((p) => p.hdr.len), [1400]);
  assert.equal(r.dev.metrics().creditStalls, 2);
  assert.equal(r.dev.metrics().bytes.hostToGuest, 3000);
});

test('vsock: a hostile fwd_cnt claiming more credit than exists does not make the device read unbounded', () => {
  const r = rig({ connBufferBytes: 8192 }, { rxBuffers: 1 });
  const host = guestConnect(r, { buf_alloc: 0xffff_ffff });
  r.d.send(r.d.hdr({ op: OP.CREDIT_UPDATE, buf_alloc: 0xffff_ffff, fwd_cnt: 0x8000_0000 }));
  host.send(pattern(100_000));
  r.pump();
  const m = r.dev.metrics();
  assert.ok(m.pendingBytes <= 8192, `at most one connection buffer queued (${m.pendingBytes})`);
  assert.ok(m.bytes.hostToGuest <= 8192 + 4096, `read only what the buffer and the one rx buffer hold (${m.bytes.hostToGuest})`);
});

test('vsock: host data larger than an rx buffer is split into several RW packets', () => {
  const r = rig();
  const host = guestConnect(r);
  const data = pattern(10_000, 9);
  host.send(data);
  r.pump();
  const pkts = r.recv();
  assert.deepEqual(pkts.map((p) => p.hdr.len), [4096, 4096, 1808]);
  assert.deepEqual(Uint8Array.from(pkts.flatMap((p) => [...p.data])), data);
});

test('vsock: back-pressure: without rx buffers the host is read only up to the backlog; tx pauses when replies cannot be queued', () => {
  const r = rig({ maxPendingBytes: 65536, maxPendingPackets: 128 }, { rxBuffers: 64, fill: false });
  const accepted = r.fake.hostListen(`${UDS}_5000`);
  r.d.fillRx(1);
  r.d.send(r.d.hdr({ op: OP.REQUEST }));
  assert.deepEqual(ops(r.d.recv(false)), ['RESPONSE']);
  const host = accepted[0]!;
  host.send(pattern(200_000));
  r.pump();
  const before = r.dev.metrics();
  assert.equal(before.pendingBytes, 65536, 'backlog capped at maxPendingBytes');
  assert.ok(host.inbound.length > 0, 'the rest stays in the host socket: its writer blocks');
  assert.deepEqual(r.h.reactor.interest(host.fd), undefined, 'not read while the backlog is full');
  // Fill the backlog with replies: REQUESTs to a closed port each need an RST.
  for (let i = 0; i < 150; i++) r.d.send(r.d.hdr({ op: OP.REQUEST, src_port: 10_000 + i, dst_port: 9 }));
  const m = r.dev.metrics();
  assert.equal(m.pendingPackets, 128, 'backlog packets capped');
  assert.ok(r.h.queue(1).inFlight > 0, 'tx chains wait in the ring: the device stopped taking them');
  // Giving rx buffers back lets everything through, in order.
  const data: number[] = [];
  let rst = 0;
  for (let i = 0; i < 1000 && (data.length < 200_000 || rst < 150); i++) {
    r.d.fillRx();
    r.pump();
    for (const p of r.d.recv(false)) {
      if (p.hdr.op === OP.RW) data.push(...p.data);
      if (p.hdr.op === OP.RST) rst++;
    }
    r.d.send(r.d.hdr({ op: OP.CREDIT_UPDATE, fwd_cnt: data.length }));
  }
  assert.equal(rst, 150);
  assert.deepEqual(Uint8Array.from(data), pattern(200_000));
});

test('vsock: host write back-pressure: bytes wait in the connection buffer, the watch asks for writability', () => {
  const r = rig();
  const host = guestConnect(r);
  host.capacity = 10;
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(100));
  assert.equal(host.written.length, 10);
  assert.equal(r.h.reactor.interest(host.fd)?.writable, true);
  host.capacity = Infinity;
  r.pump();
  assert.equal(host.written.length, 100);
  assert.equal(r.h.reactor.interest(host.fd)?.writable, false);
});

test('vsock: clean close from the guest: SHUTDOWN(SEND) shuts the host write side; SHUTDOWN(both) → RST, socket closed', () => {
  const r = rig();
  const host = guestConnect(r);
  r.d.send(r.d.hdr({ op: OP.SHUTDOWN, flags: 2 }));
  assert.equal(host.deviceEnded, true);
  assert.equal(host.closed, false);
  r.d.send(r.d.hdr({ op: OP.SHUTDOWN, flags: 1 }));
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(host.closed, true);
  const m = r.dev.metrics();
  assert.equal(m.connections.open, 0);
  assert.deepEqual(Object.values(m.resets).reduce((a, b) => a + b, 0), 0, 'a clean close counts no reset');
});

test('vsock: the guest closes with data still buffered: it reaches the host first, then RST', () => {
  const r = rig();
  const host = guestConnect(r);
  host.capacity = 0;
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(500));
  r.d.send(r.d.hdr({ op: OP.SHUTDOWN, flags: 3 }));
  assert.deepEqual(r.recv(), []);
  host.capacity = Infinity;
  r.pump();
  assert.equal(host.written.length, 500);
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(host.closed, true);
});

test('vsock: host EOF → SHUTDOWN(SEND) to the guest; with the guest done sending too → RST and close', () => {
  const r = rig();
  const host = guestConnect(r);
  host.send('bye');
  host.peerEnded = true;
  r.pump();
  const pkts = r.recv();
  assert.deepEqual(pkts.map((p) => [p.hdr.op, p.hdr.flags]), [[OP.RW, 0], [OP.SHUTDOWN, 2]]);
  assert.equal(host.closed, false, 'the guest may still send');
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(7));
  assert.equal(host.written.length, 7);
  r.d.send(r.d.hdr({ op: OP.SHUTDOWN, flags: 2 }));
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(host.closed, true);
});

test('vsock: a host socket that fails resets its connection (hostError)', () => {
  const r = rig();
  const host = guestConnect(r);
  host.failNext = 'ECONNRESET';
  host.send('x');
  r.pump();
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(host.closed, true);
  assert.equal(r.dev.metrics().resets.hostError, 1);
  const h2 = guestConnect(r, { src_port: 99 });
  h2.peerClosed = true;
  r.d.send(r.d.hdr({ op: OP.RW, src_port: 99 }), pattern(3));
  assert.deepEqual(ops(r.recv()), ['RST'], 'EPIPE on write');
  assert.equal(r.dev.metrics().resets.hostError, 2);
});

test('vsock: protocol errors on a live connection reset it: a second REQUEST, RW after SHUTDOWN(SEND)', () => {
  const r = rig();
  guestConnect(r);
  r.d.send(r.d.hdr({ op: OP.REQUEST }));
  assert.deepEqual(ops(r.recv()), ['RST']);
  guestConnect(r);
  r.d.send(r.d.hdr({ op: OP.SHUTDOWN, flags: 2 }));
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(5));
  assert.deepEqual(ops(r.recv()), ['RST']);
  assert.equal(r.dev.metrics().resets.protocol, 2);
});

test('vsock: hostile tx packets: each is counted, answered with RST where there is a flow, and the device goes on', () => {
  const r = rig();
  const base = r.d.hdr({ op: OP.REQUEST, src_port: 1, dst_port: 5000 });
  r.d.send(new Uint8Array(10)); // truncated header
  r.d.send(hdrBytes({ ...base, op: OP.RW, len: 100 }), pattern(50)); // len beyond the buffer
  r.d.send(hdrBytes({ ...base, op: OP.RW, len: 70_000 }), pattern(70_000)); // len above 64 KiB
  r.d.send({ ...base, src_cid: 4n }); // spoofed source
  r.d.send({ ...base, src_cid: 3n | (1n << 40n) }); // reserved upper CID bits
  r.d.send({ ...base, type: 2 }); // seqpacket, not offered
  r.d.send({ ...base, type: 77 });
  r.d.send({ ...base, op: 0 });
  r.d.send({ ...base, op: 8 });
  r.d.send({ ...base, op: 0xffff });
  r.d.send({ ...base, dst_cid: 2n | (1n << 33n) }); // no such CID
  r.d.send({ ...base, dst_cid: 3n }); // itself
  r.d.send({ ...base, dst_cid: 77n }); // nobody
  const pkts = r.recv();
  assert.equal(pkts.length, 12, 'an RST for every one but the truncated header');
  assert.ok(pkts.every((p) => p.hdr.op === OP.RST && p.hdr.dst_cid === 3n && p.hdr.dst_port === 1));
  const m = r.dev.metrics();
  assert.deepEqual(m.malformed, { shortHeader: 1, badLength: 1, tooLong: 1, badSrcCid: 2, badType: 2, badOp: 3, rxBufferTooSmall: 0 });
  assert.equal(m.resets.malformed, 9);
  assert.equal(m.resets.noRoute, 3);
  // Still serving.
  guestConnect(r);
});

test('vsock: random tx bytes never throw and leave the device serving (1000 packets)', () => {
  const r = rig();
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 1000; i++) {
    const len = rnd(120);
    const bytes = pattern(len, i + 1);
    if (len >= 44 && rnd(2) === 0) {
      // Plausible headers with random fields, so that validation gets past the first checks.
      const v = new DataView(bytes.buffer);
      v.setBigUint64(0, 3n, true);
      v.setBigUint64(8, BigInt(rnd(6)), true);
      v.setUint16(28, 1, true);
      v.setUint16(30, rnd(9), true);
      v.setUint32(24, rnd(2) === 0 ? len - 44 : rnd(1 << 20), true);
    }
    r.d.send(bytes.length === 0 ? new Uint8Array(1) : bytes);
    r.recv();
  }
  const m = r.dev.metrics();
  assert.equal(m.packets.tx, 1000);
  guestConnect(r, { src_port: 4242 });
});

test('vsock: rx buffers too small for a header are returned empty and counted', () => {
  const r = rig({}, { rxBuffers: 0 });
  const q = r.h.queue(0);
  const tiny = r.h.alloc.alloc(16);
  q.add([{ addr: tiny, len: 16, writable: true }], tiny);
  r.d.send(r.d.hdr({ op: OP.REQUEST, dst_port: 9 }));
  r.h.runner.kick(0);
  assert.deepEqual(q.popUsed(), { head: 0, len: 0, token: tiny });
  assert.equal(r.dev.metrics().malformed.rxBufferTooSmall, 1);
  assert.equal(r.dev.metrics().pendingPackets, 1, 'the RST still waits for a real buffer');
});

test('vsock: reset closes every host socket and handshake; dispose closes the listener and removes its file', () => {
  const r = rig();
  const a = guestConnect(r);
  const client = r.fake.clientConnect(UDS);
  r.pump();
  r.h.runner.reset();
  assert.equal(a.closed, true);
  assert.equal(client.closed, true);
  assert.equal(r.dev.metrics().connections.open, 0);
  assert.deepEqual(r.h.reactor.watchedFds(), [], 'nothing watched while the driver is gone');
  r.dev.dispose();
  assert.deepEqual(r.fake.unlinked, [UDS]);
  assert.equal(r.fake.open().length, 0);
});

test('vsock: TRANSPORT_RESET: connections end and the event queue gets id 0 (now, or when a buffer comes)', () => {
  const r = rig();
  const host = guestConnect(r);
  r.dev.transportReset();
  assert.equal(host.closed, true);
  const evq = r.h.queue(2);
  const buf = r.h.alloc.alloc(8);
  r.h.memory.write(buf, new Uint8Array(8).fill(0xee));
  evq.add([{ addr: buf, len: 8, writable: true }], buf);
  r.h.runner.kick(2);
  assert.deepEqual(evq.popUsed(), { head: 0, len: 4, token: buf });
  assert.deepEqual([...r.h.memory.read(buf, 8)], [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
  assert.equal(r.dev.metrics().events, 1);
});

test('vsock: connections are capped per guest (tooManyConnections)', () => {
  const r = rig({ maxConnections: 2 });
  r.fake.hostListen(`${UDS}_5000`);
  for (let p = 1; p <= 3; p++) r.d.send(r.d.hdr({ op: OP.REQUEST, src_port: p }));
  assert.deepEqual(ops(r.recv()), ['RESPONSE', 'RESPONSE', 'RST']);
  assert.equal(r.dev.metrics().resets.tooManyConnections, 1);
});

test('vsock: header and payload in separate descriptors work like one buffer', () => {
  const r = rig();
  const host = guestConnect(r);
  r.d.send(r.d.hdr({ op: OP.RW }), pattern(300, 5), { split: true });
  assert.deepEqual(Uint8Array.from(host.written), pattern(300, 5));
});
