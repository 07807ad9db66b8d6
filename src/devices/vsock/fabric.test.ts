// SPDX-License-Identifier: Apache-2.0
/**
 * Guest-to-guest forwarding inside one vsock group (`fabric.ts`): allow-lists enforced both ways,
 * source CIDs preserved, flows tracked, peers told when a guest goes away, back-pressure between
 * guests, and the group builder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness } from '../../device/harness.js';
import { VsockFabric } from './fabric.js';
import { VsockDevice, type VsockOptions } from './model.js';
import { createVsockGroup, parseVmSpec, splitVsockPorts } from './options.js';
import { FakeUnixStreams, OP, VsockDriver, pattern, type RxPacket } from './testing.js';

interface Guest {
  dev: VsockDevice;
  h: DeviceHarness<VsockDevice>;
  d: VsockDriver<VsockDevice>;
}

function group(specs: Array<Partial<VsockOptions> & { guestCid: number }>, harness: { rxBuffers?: number; fill?: boolean } = {}): Guest[] {
  const fabric = new VsockFabric();
  return specs.map((s) => {
    const dev = new VsockDevice({ fabric, ...s });
    const h = new DeviceHarness(dev, { memorySize: 16 << 20, queueSize: 128 });
    const d = new VsockDriver(h, s.guestCid, { rxBuffers: harness.rxBuffers ?? 32, fill: harness.fill ?? true });
    return { dev, h, d };
  });
}

function ops(pkts: RxPacket[]): string[] {
  const names: Record<number, string> = { 1: 'REQUEST', 2: 'RESPONSE', 3: 'RST', 4: 'SHUTDOWN', 5: 'RW', 6: 'CREDIT_UPDATE', 7: 'CREDIT_REQUEST' };
  return pkts.map((p) => names[p.hdr.op] ?? `op${p.hdr.op}`);
}

test('vsock group: guest 3 connects to guest 4; headers (source CID, credit) arrive unchanged; data both ways', () => {
  const [a, b] = group([
    { guestCid: 3, allowPeers: [4] },
    { guestCid: 4, allowPeers: [3] },
  ]);
  assert.ok(a && b);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n, src_port: 50_000, dst_port: 1234, buf_alloc: 1111, fwd_cnt: 22 }));
  const [req] = b.d.recv();
  assert.deepEqual(req?.hdr, { src_cid: 3n, dst_cid: 4n, src_port: 50_000, dst_port: 1234, len: 0, type: 1, op: OP.REQUEST, flags: 0, buf_alloc: 1111, fwd_cnt: 22 });
  b.d.send(b.d.hdr({ op: OP.RESPONSE, dst_cid: 3n, src_port: 1234, dst_port: 50_000 }));
  assert.deepEqual(ops(a.d.recv()), ['RESPONSE']);
  a.d.send(a.d.hdr({ op: OP.RW, dst_cid: 4n, src_port: 50_000, dst_port: 1234 }), pattern(3000, 1));
  b.d.send(b.d.hdr({ op: OP.RW, dst_cid: 3n, src_port: 1234, dst_port: 50_000 }), pattern(2000, 2));
  const atB = b.d.recv();
  const atA = a.d.recv();
  assert.deepEqual(atB[0]?.data, pattern(3000, 1));
  assert.deepEqual(atA[0]?.data, pattern(2000, 2));
  assert.equal(a.dev.metrics().connections.peer, 1);
  assert.equal(b.dev.metrics().connections.peer, 1);
  assert.deepEqual(a.dev.metrics().bytes, { guestToHost: 0, hostToGuest: 0, guestToPeer: 3000, peerToGuest: 2000 });
  // Clean close: SHUTDOWN both ways, then the RST closes the flow.
  a.d.send(a.d.hdr({ op: OP.SHUTDOWN, flags: 3, dst_cid: 4n, src_port: 50_000, dst_port: 1234 }));
  b.d.send(b.d.hdr({ op: OP.RST, dst_cid: 3n, src_port: 1234, dst_port: 50_000 }));
  assert.deepEqual(ops(b.d.recv()), ['SHUTDOWN']);
  assert.deepEqual(ops(a.d.recv()), ['RST']);
  assert.equal(a.dev.metrics().connections.peer, 0);
});

test('vsock group: the allow-list is enforced both ways; strangers and unknown CIDs get RST', () => {
  const [a, b, c] = group([
    { guestCid: 3, allowPeers: [4, 5] },
    { guestCid: 4, allowPeers: [3] },
    { guestCid: 5, allowPeers: [] },
  ]);
  assert.ok(a && b && c);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 5n }));
  assert.deepEqual(ops(a.d.recv()), ['RST'], '5 does not allow 3');
  assert.deepEqual(c.d.recv(), [], 'nothing reached 5');
  c.d.send(c.d.hdr({ op: OP.REQUEST, dst_cid: 3n }));
  assert.deepEqual(ops(c.d.recv()), ['RST'], '5 allows nobody');
  b.d.send(b.d.hdr({ op: OP.REQUEST, dst_cid: 9n }));
  const [rst] = b.d.recv();
  assert.deepEqual([rst?.hdr.op, rst?.hdr.src_cid, rst?.hdr.dst_cid], [OP.RST, 9n, 4n]);
  assert.equal(a.dev.metrics().resets.notAllowed, 1);
  assert.equal(c.dev.metrics().resets.notAllowed, 1);
  assert.equal(b.dev.metrics().resets.noRoute, 1);
});

test('vsock group: only REQUEST opens a flow; packets of no flow get RST and are not forwarded', () => {
  const [a, b] = group([
    { guestCid: 3, allowPeers: [4] },
    { guestCid: 4, allowPeers: [3] },
  ]);
  assert.ok(a && b);
  a.d.send(a.d.hdr({ op: OP.RW, dst_cid: 4n }), pattern(10));
  a.d.send(a.d.hdr({ op: OP.RST, dst_cid: 4n }));
  assert.deepEqual(ops(a.d.recv()), ['RST']);
  assert.deepEqual(b.d.recv(), []);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n }));
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n }));
  assert.deepEqual(ops(b.d.recv()), ['REQUEST'], 'a duplicate REQUEST is not forwarded');
  assert.deepEqual(ops(a.d.recv()), ['RST']);
  assert.equal(a.dev.metrics().resets.unknownConnection, 1);
  assert.equal(a.dev.metrics().resets.protocol, 1);
});

test('vsock group: a guest whose device resets makes its peers see RST for every flow; then it is unreachable', () => {
  const [a, b] = group([
    { guestCid: 3, allowPeers: [4] },
    { guestCid: 4, allowPeers: [3] },
  ]);
  assert.ok(a && b);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n, src_port: 1, dst_port: 80 }));
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n, src_port: 2, dst_port: 80 }));
  b.d.recv();
  b.h.runner.reset();
  const rsts = a.d.recv();
  assert.deepEqual(rsts.map((p) => [p.hdr.op, p.hdr.src_cid, p.hdr.src_port, p.hdr.dst_port]), [
    [OP.RST, 4n, 80, 1],
    [OP.RST, 4n, 80, 2],
  ]);
  assert.equal(a.dev.metrics().resets.peerGone, 2);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n, src_port: 3, dst_port: 80 }));
  assert.deepEqual(ops(a.d.recv()), ['RST'], 'a guest without a driver is unreachable');
});

test('vsock group: back-pressure: a full destination pauses the sender\'s tx; it resumes when the destination drains', () => {
  const fabric = new VsockFabric();
  const mk = (cid: number, peer: number, rx: number) => {
    const dev = new VsockDevice({ guestCid: cid, allowPeers: [peer], fabric, maxPendingBytes: 65536, maxPendingPackets: 128 });
    const h = new DeviceHarness(dev, { memorySize: 16 << 20, queueSize: 128 });
    const d = new VsockDriver(h, cid, { rxBuffers: rx, fill: false });
    return { dev, h, d };
  };
  const a = mk(3, 4, 32);
  const b = mk(4, 3, 64);
  a.d.fillRx();
  b.d.fillRx(1);
  a.d.send(a.d.hdr({ op: OP.REQUEST, dst_cid: 4n }));
  assert.deepEqual(ops(b.d.recv(false)), ['REQUEST']);
  // B posts no rx buffers now: 65536 bytes fit in its backlog, then A's tx pauses.
  for (let i = 0; i < 40; i++) a.d.send(a.d.hdr({ op: OP.RW, dst_cid: 4n }), pattern(4096, i + 1));
  assert.equal(b.dev.metrics().pendingBytes, 65536);
  assert.equal(a.dev.metrics().txStalls, 1);
  assert.ok(a.h.queue(1).inFlight > 0, "A's chains wait in its ring");
  const got: number[] = [];
  for (let round = 0; round < 100 && got.length < 40 * 4096; round++) {
    b.d.fillRx();
    for (const p of b.d.recv(false)) got.push(...p.data);
    a.h.reactor.advance(0); // the deferred resume of A's tx
  }
  const expected: number[] = [];
  for (let i = 0; i < 40; i++) expected.push(...pattern(4096, i + 1));
  assert.equal(got.length, expected.length, 'nothing lost');
  assert.deepEqual(Uint8Array.from(got), Uint8Array.from(expected), 'in order');
});

test('vsock group: createVsockGroup builds one group; a duplicate CID fails and releases what was built', () => {
  const fake = new FakeUnixStreams();
  const devs = createVsockGroup([{ guestCid: '3', udsPath: '/a', allowPeer: ['4'] }, { guestCid: 4, udsPath: '/b', allowPeer: '3,5' }], fake);
  assert.equal(devs.length, 2);
  assert.equal(devs[0]?.fabric, devs[1]?.fabric);
  assert.equal(devs[0]?.allowsPeer(4), true);
  assert.equal(devs[1]?.allowsPeer(5), true);
  for (const d of devs) d.dispose();
  const fake2 = new FakeUnixStreams();
  assert.throws(() => createVsockGroup([{ guestCid: 3, udsPath: '/a' }, { guestCid: 3, udsPath: '/b' }], fake2), { code: 'VSOCK_DUPLICATE_CID' });
  assert.deepEqual(fake2.unlinked.sort(), ['/a', '/b'], 'both listeners were closed and removed');
  assert.throws(() => createVsockGroup([{ udsPath: '/a' }], fake2), /--guest-cid N is required/);
  assert.throws(() => createVsockGroup([{ guestCid: 2 }], fake2), /--guest-cid must be an integer from 3/);
  assert.throws(() => createVsockGroup([{ guestCid: 3, allowPeer: 'x' }], fake2), /--allow-peer takes guest CIDs/);
});

test('vsock options: --vm specs and the split of serve options into ports', () => {
  assert.deepEqual(parseVmSpec('socket=/r/b.sock,cid=4,uds=/r/b.vsock,allow=3+5', { connBuffer: '8192' }), {
    name: 'vsock-4',
    socketPath: '/r/b.sock',
    options: { connBuffer: '8192', guestCid: '4', udsPath: '/r/b.vsock', allowPeer: [3, 5] },
  });
  assert.throws(() => parseVmSpec('cid=4'), /socket=PATH is required/);
  assert.throws(() => parseVmSpec('socket=/x'), /cid=N is required/);
  assert.throws(() => parseVmSpec('socket=/x,cid=1'), /--guest-cid must be an integer/);
  assert.throws(() => parseVmSpec('socket=/x,cid=4,colour=red'), /unknown field "colour"/);
  assert.throws(() => parseVmSpec('socket=/x,cid=4,uds='), /needs a value/);
  const both = splitVsockPorts({ guestCid: '3', allowPeer: ['4'], vm: ['socket=/b,cid=4,allow=3'] });
  assert.deepEqual(both.main, { guestCid: '3', allowPeer: ['4'] });
  assert.deepEqual(both.extra.map((x) => x.socketPath), ['/b']);
  const onlyVm = splitVsockPorts({ vm: ['socket=/a,cid=3', 'socket=/b,cid=4'] });
  assert.equal(onlyVm.main, undefined);
  assert.equal(onlyVm.extra.length, 2);
  assert.deepEqual(splitVsockPorts({ guestCid: '3' }), { main: { guestCid: '3' }, extra: [] });
});

test('vsock group: a device built alone is in a group of its own', () => {
  const a = new VsockDevice({ guestCid: 3, allowPeers: [4] });
  const b = new VsockDevice({ guestCid: 4, allowPeers: [3] });
  assert.notEqual(a.fabric, b.fabric);
  const h = new DeviceHarness(a, { memorySize: 16 << 20 });
  const d = new VsockDriver(h, 3);
  d.send(d.hdr({ op: OP.REQUEST, dst_cid: 4n }));
  assert.deepEqual(ops(d.recv()), ['RST']);
});
