// SPDX-License-Identifier: Apache-2.0
/**
 * One virtio-net port on its own, through the in-process harness, against a stub fabric that
 * records what the port hands it: the port's side of the contract with its switch (what reaches
 * `forward`, when it kicks, activation and reset), its transmit budget, and receive placement.
 * Forwarding between ports is tested in switch.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceHarness, type HarnessOptions } from '../../device/harness.js';
import { featureBit } from '../../spec/virtio.js';
import type { NetSwitchMetrics } from './metrics.js';
import { NetPort, type NetPortOptions, type PortFabric } from './model.js';
import { VIRTIO_NET_F_MRG_RXBUF } from './spec.js';
import { frame, mac, netHdr, PortDriver } from './testing.js';

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

/** A fabric that records every call; the scratch has room for header + MTU 1500 + 14 + 1. */
class StubFabric implements PortFabric {
  readonly mtu = 1500;
  readonly maxFrame = 1514;
  readonly scratch = new Uint8Array(12 + 1514 + 1);
  readonly forwarded: Array<{ from: number; frame: Uint8Array }> = [];
  kicks = 0;
  activated = 0;
  resets = 0;

  forward(from: number, len: number): void {
    this.forwarded.push({ from, frame: this.scratch.slice(12, 12 + len) });
  }

  kick(): void {
    this.kicks++;
  }

  portActivated(): void {
    this.activated++;
  }

  portReset(): void {
    this.resets++;
  }

  switchMetrics(): NetSwitchMetrics {
    return { name: 'stub', clockMs: null, mtu: this.mtu, ports: 1, macTable: { entries: 0, learned: 0, moves: 0, aged: 0, full: 0 }, flooded: 0, unknownUnicast: 0, filtered: 0, uplink: null };
  }

  close(): void {}

  /** Puts `f` where the switch puts a frame for delivery: scratch[12..]. */
  stage(f: Uint8Array): number {
    this.scratch.set(f, 12);
    return f.length;
  }
}

function setup(opts: Partial<NetPortOptions> = {}, harness: HarnessOptions = {}): { fab: StubFabric; port: NetPort; d: PortDriver } {
  const fab = new StubFabric();
  const port = new NetPort(fab, { index: 3, name: 'p3', mac: mac(A), ...opts });
  const d = new PortDriver(new DeviceHarness(port, harness));
  return { fab, port, d };
}

test('net port: config space from the port and its fabric (mac @0, status @6, pairs @8, mtu @10); writes are ignored', () => {
  const { fab, port } = setup();
  assert.equal(fab.activated, 1, 'activation reaches the fabric');
  const expected = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0a, 1, 0, 1, 0, 1500 & 0xff, 1500 >> 8);
  assert.deepEqual(port.readConfig(0, 12), expected);
  port.writeConfig(0, Uint8Array.of(1, 2, 3, 4, 5, 6));
  assert.deepEqual(port.readConfig(0, 6), expected.subarray(0, 6));
  assert.deepEqual(port.readConfig(10, 6), Uint8Array.of(1500 & 0xff, 1500 >> 8, 0, 0, 0, 0), 'bytes past the end read 0');
  port.setLinkUp(false);
  assert.deepEqual(port.readConfig(6, 2), Uint8Array.of(0, 0));
});

test('net port: a transmit kick only kicks the fabric; serviceTx hands each frame over, split buffers joined, chains used with length 0', () => {
  const { fab, port, d } = setup();
  const f1 = frame(B, A, 46);
  const f2 = frame(B, A, 300);
  d.send(f1);
  d.send(f2, { split: [5, 20, 7] });
  assert.ok(fab.kicks >= 1);
  assert.equal(fab.forwarded.length, 0, 'nothing moves before the switch runs the port');
  assert.equal(port.serviceTx(64), 'idle');
  assert.deepEqual(fab.forwarded, [
    { from: 3, frame: f1 },
    { from: 3, frame: f2 },
  ]);
  assert.deepEqual(d.txCompleted(), [0, 0]);
  assert.deepEqual(port.metrics().tx, { frames: 2, bytes: f1.length + f2.length });
});

test('net port: serviceTx stops at its budget and says there is more', () => {
  const { fab, port, d } = setup();
  for (let i = 0; i < 5; i++) d.send(frame(B, A, 46 + i));
  assert.equal(port.serviceTx(2), 'more');
  assert.equal(fab.forwarded.length, 2);
  assert.equal(port.serviceTx(64), 'idle');
  assert.deepEqual(
    fab.forwarded.map((x) => x.frame.length),
    [60, 61, 62, 63, 64],
  );
});

test('net port: hostile transmit frames never reach the fabric; each reason is logged once, then only counted', () => {
  const { fab, port, d } = setup();
  d.sendRaw(new Uint8Array(12 + 13)); // no full Ethernet header
  d.send(frame(B, A, 46), { hdr: netHdr({ gsoType: 1 }) });
  d.send(frame(B, '01:02:03:04:05:06', 46)); // multicast source
  d.send(frame(B, A, 1501)); // MTU + 15 bytes
  d.send(frame(B, A, 1501));
  assert.equal(port.serviceTx(64), 'idle');
  assert.deepEqual(fab.forwarded, []);
  assert.deepEqual(d.txCompleted(), [0, 0, 0, 0, 0]);
  assert.deepEqual(port.metrics().drops, { noRxBuffers: 0, oversize: 2, rateLimit: 0, linkDown: 0, malformed: 3 });
  assert.equal(d.h.logs.filter((l) => /oversize/.test(l)).length, 1, 'the second oversize frame is only counted');
});

test('net port: receive without MRG_RXBUF: a too-small chain comes back empty and the frame counts as noRxBuffers', () => {
  const all = new NetPort(new StubFabric(), { index: 0, name: 'x', mac: mac(A) }).offeredFeatures;
  const { fab, port, d } = setup({}, { features: all & ~featureBit(VIRTIO_NET_F_MRG_RXBUF) });
  d.addRx(1, 64);
  d.addRx(1, 2048);
  const f = frame(A, B, 100);
  port.deliver(fab.stage(f));
  port.deliver(fab.stage(f));
  port.flushRx();
  const q = d.h.queue(0);
  assert.deepEqual(q.popUsed()?.len, 0, 'the 64-byte chain is returned empty');
  const got = d.received();
  assert.deepEqual(got.map((r) => [r.numBuffers, r.frame]), [[1, f]]);
  assert.equal(port.metrics().drops.noRxBuffers, 1);
});

test('net port: receive with MRG_RXBUF: one frame across chains, num_buffers set, every chain but the last full; notification at flushRx', () => {
  const { fab, port, d } = setup();
  d.addRx(4, 256);
  const before = d.h.notifications[0] ?? 0;
  const f = frame(A, B, 600); // 12 + 614 bytes: 256 + 256 + 114
  port.deliver(fab.stage(f));
  assert.equal(d.h.notifications[0] ?? 0, before, 'no notification before flushRx');
  port.flushRx();
  assert.equal((d.h.notifications[0] ?? 0) - before, 1);
  const [r] = d.received();
  assert.deepEqual({ numBuffers: r?.numBuffers, lens: r?.lens, frame: r?.frame }, { numBuffers: 3, lens: [256, 256, 114], frame: f });
  assert.deepEqual(port.metrics().rx, { frames: 1, bytes: f.length });
});

test('net port: a reset reaches the fabric, and the port drops what it is given until a driver runs it again', () => {
  const { fab, port } = setup();
  port.reset();
  assert.equal(fab.resets, 1);
  assert.equal(port.active, false);
  port.deliver(fab.stage(frame(A, B, 46)));
  assert.equal(port.serviceTx(64), 'idle');
  assert.equal(port.metrics().drops.linkDown, 1);
});

test('net port: options: the MAC must be a 6-byte unicast address, the priority 0..7', () => {
  const fab = new StubFabric();
  assert.throws(() => new NetPort(fab, { index: 0, name: 'x', mac: mac('01:00:00:00:00:01') }), { code: 'NET_BAD_OPTION', message: /unicast/ });
  assert.throws(() => new NetPort(fab, { index: 0, name: 'x', mac: Uint8Array.of(1, 2, 3) }), { code: 'NET_BAD_OPTION', message: /unicast/ });
  assert.throws(() => new NetPort(fab, { index: 0, name: 'x', mac: mac(A), priority: 8 }), { code: 'NET_BAD_OPTION', message: /priority must be an integer from 0 to 7/ });
});
