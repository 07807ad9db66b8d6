// SPDX-License-Identifier: Apache-2.0
/**
 * BackendSession protocol rules, driven message by message (no socket): ring start/stop and
 * enable rules, kick before enable, GET_VRING_BASE semantics, several start/stop cycles with
 * changing features (firmware then kernel), SET_FEATURES without PROTOCOL_FEATURES, refusals.
 * Guest memory is a real memfd, as a front-end would send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendSession } from './session.js';
import { decodeRequest, encodeRequest, vhostUserHeader, type BackendReply, type FrontendRequestInit } from './messages.js';
import { sendThroughCodec } from './testing/session-wire.js';
import { DriverQueue } from '../queue/split-driver.js';
import { RegionGuestMemory } from '../memory/guest-memory.js';
import { serveQueue } from '../device/serve.js';
import type { DeviceContext, VirtioDevice } from '../device/contract.js';
import { closeQuiet, dup, eventfdCreate, eventfdRead, eventfdWrite, fdTarget, ftruncate, isNonBlocking, memfdCreate, mmapShared, munmap, socketPair } from '../sys/index.js';
import { hasCode } from '../errors.js';

/** Answers every chain with its writable length and records activations. */
class EchoDevice implements VirtioDevice {
  readonly deviceId = 4;
  readonly name = 'echo';
  readonly queueMaxSizes = [16, 16];
  readonly offeredFeatures = (1n << 32n) | (1n << 29n) | (1n << 28n);
  readonly configSize = 4;
  readonly activations: bigint[] = [];
  served = 0;
  #ctx: DeviceContext | undefined;
  readConfig(offset: number, length: number): Uint8Array {
    return Uint8Array.from({ length }, (_, i) => 0xa0 + offset + i);
  }
  writeConfig(): void {}
  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.activations.push(ctx.features);
  }
  queueNotify(index: number): void {
    if (this.#ctx) this.served += serveQueue(this.#ctx, index, (c) => c.writableLength);
  }
  reset(): void {
    this.#ctx = undefined;
  }
  metrics(): Record<string, unknown> {
    return { served: this.served };
  }
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const USER = 0x7f00_0000_0000;
const RING = { desc: 0x1000, avail: 0x2000, used: 0x3000 };

/** A session plus a front-end's view: send() goes through the real codec both ways. */
function setup(t: { after: (fn: () => void) => void }, dev = new EchoDevice()) {
  const warnings: string[] = [];
  const session = new BackendSession({ device: dev, log: { ...silent, warn: (m) => warnings.push(m) } });
  const owned: number[] = [];
  const send = (init: FrontendRequestInit): BackendReply | null => sendThroughCodec(session, init);
  const size = 1 << 20;
  const memfd = memfdCreate('guest', size);
  const mapping = mmapShared(memfd, size);
  const memory = new RegionGuestMemory([{ guestBase: 0, bytes: new Uint8Array(mapping.buffer) }]);
  const eventfd = () => {
    const fd = eventfdCreate();
    owned.push(fd);
    return fd;
  };
  t.after(() => {
    session.close();
    for (const fd of owned) closeQuiet(fd);
    closeQuiet(memfd);
    munmap(mapping);
  });
  const sendMemory = () => {
    // The session takes ownership of the fds it receives: hand it duplicates.
    send({ type: 'SET_MEM_TABLE', body: { regions: [{ guestAddr: 0, size, userAddr: USER, mmapOffset: 0 }] }, fds: [dupOf(memfd)] });
  };
  const ring = (index: number, base = 0) => {
    send({ type: 'SET_VRING_NUM', body: { index, num: 8 }, fds: [] });
    send({ type: 'SET_VRING_BASE', body: { index, num: base }, fds: [] });
    send({ type: 'SET_VRING_ADDR', body: { index, flags: 0, desc: USER + RING.desc + index * 0x4000, avail: USER + RING.avail + index * 0x4000, used: USER + RING.used + index * 0x4000, log: 0 }, fds: [] });
    const call = eventfd();
    send({ type: 'SET_VRING_CALL', body: { index, noFd: false }, fds: [dupOf(call)] });
    return { call };
  };
  const kickFd = (index: number) => {
    const kick = eventfd();
    send({ type: 'SET_VRING_KICK', body: { index, noFd: false }, fds: [dupOf(kick)] });
    return kick;
  };
  const driver = (index: number, eventIdx = true) =>
    new DriverQueue<number>({ memory, size: 8, addrs: { desc: RING.desc + index * 0x4000, avail: RING.avail + index * 0x4000, used: RING.used + index * 0x4000 }, eventIdx });
  return { dev, session, send, sendMemory, ring, kickFd, driver, warnings, memory, memfd };
}

/** A new fd for the same open file: the session closes what it receives, the test keeps its own. */
function dupOf(fd: number): number {
  return dup(fd);
}

const PROTOCOL = 1n << 30n;
const LINUX = (1n << 32n) | PROTOCOL | (1n << 29n) | (1n << 28n);
const SEABIOS = (1n << 32n) | PROTOCOL;

test('session: a kick that arrives before SET_VRING_ENABLE is processed when the ring is enabled', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  s.ring(0);
  const q = s.driver(0);
  const kick = s.kickFd(0);
  q.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  eventfdWrite(kick);
  assert.equal(s.dev.served, 0, 'started but disabled: not processed');
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.deepEqual(q.popUsed(), { head: 0, len: 16, token: 1 });
});

test('session: GET_VRING_BASE stops the ring and returns the true next avail index; restart resumes there', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  const { call } = s.ring(0);
  const q = s.driver(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  for (let i = 0; i < 3; i++) {
    q.add([{ addr: 0x10000, len: 8, writable: true }], i);
    s.session.kick(0);
    assert.equal(q.popUsed()?.token, i);
  }
  assert.ok(eventfdRead(call) > 0n, 'used-buffer notifications went to the call eventfd');
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 0 }, fds: [] });
  const base = s.send({ type: 'GET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] });
  assert.deepEqual(base?.body, { index: 0, num: 3 });
  assert.deepEqual(s.session.kickFds(), [], 'a stopped ring is not polled');
  // Buffers added while stopped are not touched.
  q.add([{ addr: 0x10000, len: 8, writable: true }], 9);
  s.session.kick(0);
  assert.equal(q.popUsed(), null);
  // Restart from base 3 (the driver's ring continues where it was).
  s.send({ type: 'SET_VRING_BASE', body: { index: 0, num: 3 }, fds: [] });
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.equal(q.popUsed()?.token, 9, 'the pending buffer is served on restart');
});

test('session: firmware then kernel: SET_FEATURES changes between start cycles re-activate the device', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: SEABIOS, fds: [] });
  s.send({ type: 'SET_FEATURES', body: SEABIOS, fds: [] });
  s.sendMemory();
  s.ring(0);
  const fw = s.driver(0, false);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  fw.add([{ addr: 0x10000, len: 4, writable: true }], 0);
  s.session.kick(0);
  assert.equal(fw.popUsed()?.len, 4);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 0 }, fds: [] });
  assert.deepEqual(s.send({ type: 'GET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] })?.body, { index: 0, num: 1 });
  // The kernel starts over with EVENT_IDX; memory persists (no new memory table).
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.ring(0, 0);
  const linux = s.driver(0, true);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  linux.add([{ addr: 0x10000, len: 4, writable: true }], 7);
  s.session.kick(0);
  assert.equal(linux.popUsed()?.token, 7);
  assert.deepEqual(s.dev.activations, [SEABIOS & ~PROTOCOL, LINUX & ~PROTOCOL]);
});

test('session: without PROTOCOL_FEATURES, SET_FEATURES enables every ring', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_FEATURES', body: 1n << 32n, fds: [] });
  s.sendMemory();
  s.ring(1);
  const q = s.driver(1, false);
  s.kickFd(1);
  q.add([{ addr: 0x10000, len: 4, writable: true }], 3);
  s.session.kick(1);
  assert.equal(q.popUsed()?.token, 3);
});

test('session: unoffered features, bad rings and unsupported requests are refused with a failure ack', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  const nack = (init: FrontendRequestInit) => s.send({ ...init, needReply: true } as FrontendRequestInit)?.body;
  assert.equal(nack({ type: 'SET_FEATURES', body: LINUX | (1n << 35n), fds: [] }), 1n);
  assert.match(s.warnings.join('\n'), /IN_ORDER/);
  assert.equal(nack({ type: 'SET_FEATURES', body: PROTOCOL | (1n << 29n), fds: [] }), 1n, 'VERSION_1 required');
  assert.equal(nack({ type: 'SET_FEATURES', body: LINUX, fds: [] }), 0n);
  assert.equal(nack({ type: 'SET_VRING_NUM', body: { index: 0, num: 12 }, fds: [] }), 1n, 'not a power of 2');
  assert.equal(nack({ type: 'SET_VRING_NUM', body: { index: 0, num: 32 }, fds: [] }), 1n, 'above the maximum');
  assert.equal(nack({ type: 'SET_VRING_NUM', body: { index: 2, num: 8 }, fds: [] }), 1n, 'no such ring');
  assert.deepEqual(nack({ type: 'GET_INFLIGHT_FD', body: { mmapSize: 0, mmapOffset: 0, numQueues: 1, queueSize: 8 }, fds: [] }), { mmapSize: 0, mmapOffset: 0, numQueues: 1, queueSize: 8 }, 'its own reply: no record (mmap_size 0)');
  assert.equal(nack({ type: 'SET_STATUS', body: 0xfn, fds: [] }), 1n);
  assert.equal(nack({ type: 'SET_OWNER', body: null, fds: [] }), 0n);
});

test('session: GET_CONFIG returns the requested bytes, or the error form past the config space', (t) => {
  const s = setup(t);
  const ok = s.send({ type: 'GET_CONFIG', body: { offset: 1, flags: 0, payload: new Uint8Array(3) }, fds: [] });
  assert.deepEqual([...(ok?.body as { payload: Uint8Array }).payload], [0xa1, 0xa2, 0xa3]);
  const bad = s.send({ type: 'GET_CONFIG', body: { offset: 2, flags: 0, payload: new Uint8Array(8) }, fds: [] });
  assert.equal(bad?.body, null);
});

test('session: RESET_DEVICE stops rings and forgets features; close() releases fds', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  s.ring(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.equal(s.session.kickFds().length, 1);
  s.send({ type: 'RESET_DEVICE', body: null, fds: [] });
  assert.equal(s.session.kickFds().length, 0);
  const q = s.driver(0);
  q.add([{ addr: 0x10000, len: 4, writable: true }], 1);
  s.session.kick(0);
  assert.equal(q.popUsed(), null, 'nothing is processed after a reset');
});

test('regression: a ring that breaks (DEVICE_NEEDS_RESET) is reported on its error eventfd (SET_VRING_ERR)', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  s.ring(0);
  const err = eventfdCreate();
  t.after(() => closeQuiet(err));
  s.send({ type: 'SET_VRING_ERR', body: { index: 0, noFd: false }, fds: [dupOf(err)] });
  const q = s.driver(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  q.add([{ addr: 0x10000, len: 8, writable: true }], 1);
  s.session.kick(0);
  assert.equal(q.popUsed()?.token, 1);
  assert.equal(eventfdRead(err), 0n, 'no error while the ring is healthy');
  // A head beyond the queue size: ring corruption, the queue stops.
  q.publish(8 + 3);
  s.session.kick(0);
  assert.equal(eventfdRead(err), 1n, 'the front-end is told once');
});

/** Like QEMU's virtio-crypto front-end: negotiates with the guest itself, tells the back-end nothing. */
class UndisclosedDevice extends EchoDevice {
  readonly featuresWhenUndisclosed = this.offeredFeatures;
}

test('session: SET_FEATURES of bit 30 only, without SET_VRING_ENABLE (QEMU cryptodev-vhost-user): a device with featuresWhenUndisclosed runs with them', (t) => {
  const s = setup(t, new UndisclosedDevice());
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8089n, fds: [] });
  // QEMU 10.0's sequence: RESET_DEVICE, SET_FEATURES 0x40000000, ring set-up, no SET_VRING_ENABLE.
  s.send({ type: 'RESET_DEVICE', body: null, fds: [] });
  s.send({ type: 'SET_FEATURES', body: PROTOCOL, fds: [] });
  s.sendMemory();
  s.ring(0);
  const q = s.driver(0, true);
  s.kickFd(0);
  q.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  s.session.kick(0);
  assert.deepEqual(q.popUsed(), { head: 0, len: 16, token: 1 }, 'served without SET_VRING_ENABLE');
  assert.deepEqual(s.dev.activations, [s.dev.offeredFeatures], 'with the fallback features (EVENT_IDX on, as the guest has it)');
});

test('session: without featuresWhenUndisclosed a SET_FEATURES lacking VERSION_1 is refused and nothing starts', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: PROTOCOL, fds: [] });
  s.sendMemory();
  s.ring(0);
  const q = s.driver(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  q.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  s.session.kick(0);
  assert.equal(q.popUsed(), null);
  assert.ok(s.warnings.some((w) => /VERSION_1/.test(w)));
});

test('session: GPU_SET_SOCKET hands the fd, non-blocking, to a device with a frontendChannel hook; others close it', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  // EchoDevice has no hook: the request fails (an ack says so) and the fd is closed, not leaked.
  const [a, b] = socketPair();
  t.after(() => {
    closeQuiet(a);
    closeQuiet(b);
  });
  const refused = s.send({ type: 'GPU_SET_SOCKET', needReply: true, body: null, fds: [dup(a)] });
  assert.deepEqual(refused?.type === 'ACK' ? refused.body : null, 1n);
  assert.match(s.warnings.join('\n'), /GPU_SET_SOCKET is not supported by the echo back-end/);
  // A device with the hook gets the fd and keeps it.
  const taken: number[] = [];
  const withHook = Object.assign(new EchoDevice(), { frontendChannel: (fd: number) => taken.push(fd) > 0 });
  const session = new BackendSession({ device: withHook, log: silent });
  t.after(() => session.close());
  const msg = encodeRequest({ type: 'GPU_SET_SOCKET', body: null, fds: [dup(a)] });
  const header = vhostUserHeader.decode(new DataView(msg.bytes.buffer), 0);
  assert.equal(session.handle(decodeRequest(header, msg.bytes.subarray(12), msg.fds)), null);
  assert.equal(taken.length, 1);
  const fd = taken[0] ?? -1;
  t.after(() => closeQuiet(fd));
  assert.equal(fdTarget(fd)?.startsWith('socket:'), true, 'still open: the session did not close it');
  assert.equal(isNonBlocking(fd), true);
});

test('session: RING_RESET in SET_FEATURES without an offer (QEMU 10 forces it for gpu and input) is accepted and not handed to the device', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX | (1n << 40n), fds: [] });
  s.sendMemory();
  s.ring(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.deepEqual(s.dev.activations, [LINUX & ~PROTOCOL]);
  assert.equal(s.session.stats.failedRequests, 0);
});

/** EchoDevice that asks for inflight tracking, as blk does. */
class TrackedEchoDevice extends EchoDevice {
  readonly inflightTracking = true;
}

test('session: INFLIGHT_SHMFD is offered only to devices that ask; GET/SET_INFLIGHT_FD need it negotiated', (t) => {
  const plain = setup(t);
  assert.equal((plain.session.offeredProtocolFeatures >> 12n) & 1n, 0n);
  const s = setup(t, new TrackedEchoDevice());
  assert.equal((s.session.offeredProtocolFeatures >> 12n) & 1n, 1n);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  const refused = s.send({ type: 'GET_INFLIGHT_FD', body: { mmapSize: 0, mmapOffset: 0, numQueues: 2, queueSize: 8 }, fds: [] });
  assert.deepEqual(refused?.fds, []);
  assert.match(s.warnings.join('\n'), /INFLIGHT_SHMFD was not negotiated/);
});

test('session: a ring restarted on the inflight record of a killed session serves the chain in flight again, first', (t) => {
  const dev = new TrackedEchoDevice();
  const s = setup(t, dev);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n | (1n << 12n), fds: [] });
  const got = s.send({ type: 'GET_INFLIGHT_FD', body: { mmapSize: 0, mmapOffset: 0, numQueues: 2, queueSize: 8 }, fds: [] });
  const body = got?.body as { mmapSize: number; mmapOffset: number; numQueues: number; queueSize: number };
  const recordFd = got?.fds[0];
  assert.ok(recordFd !== undefined && body.mmapSize > 0);
  t.after(() => closeQuiet(recordFd));
  s.send({ type: 'SET_INFLIGHT_FD', body, fds: [dupOf(recordFd)] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  s.ring(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  const q = s.driver(0);
  // The "process dies" while serving chain 1: the record says it is in flight, nothing is used.
  const record = mmapShared(recordFd, body.mmapSize, 0);
  t.after(() => munmap(record));
  q.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  const rec = new DataView(record.buffer);
  // What `popped` leaves for head 0 in a back-end killed before it returned the chain.
  rec.setUint16(8, 1, true);
  rec.setUint8(16, 1);
  s.session.close();

  // A new back-end process: the front-end hands the record back, then sets the ring up again at
  // the used index it knows (0).
  const s2 = setup(t, new TrackedEchoDevice());
  s2.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n | (1n << 12n), fds: [] });
  s2.send({ type: 'SET_INFLIGHT_FD', body, fds: [dupOf(recordFd)] });
  s2.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  // Same guest memory as the first session, as QEMU's guest RAM outlives the back-end.
  s2.send({ type: 'SET_MEM_TABLE', body: { regions: [{ guestAddr: 0, size: 1 << 20, userAddr: USER, mmapOffset: 0 }] }, fds: [dupOf(s.memfd)] });
  s2.ring(0, 0);
  s2.kickFd(0);
  s2.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.deepEqual(q.popUsed(), { head: 0, len: 16, token: 1 }, 'the chain in flight was served by the new back-end');
  assert.equal(q.popUsed(), null);
  assert.equal(s2.session.stats.inflightResubmitted, 1);
  assert.equal(rec.getUint8(16), 0, 'no longer in flight');
});

test('session: poll() serves chains made available without a kick, counts only chains taken, and skips disabled rings', (t) => {
  /** Serves queue 0 only: queue 1 is like a receive ring full of buffers with nothing to receive. */
  class TxOnly extends EchoDevice {
    override queueNotify(index: number): void {
      if (index === 0) super.queueNotify(index);
    }
  }
  const s = setup(t, new TxOnly());
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  const q0 = s.driver(0);
  const q1 = s.driver(1);
  for (const i of [0, 1]) {
    s.ring(i);
    s.kickFd(i);
    s.send({ type: 'SET_VRING_ENABLE', body: { index: i, num: 1 }, fds: [] });
  }
  assert.equal(s.session.poll(), 0, 'nothing available');
  q0.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  q0.add([{ addr: 0x10100, len: 8, writable: true }], 2);
  q1.add([{ addr: 0x10200, len: 32, writable: true }], 3);
  assert.equal(s.session.poll(), 2, 'both chains of ring 0; the buffer of ring 1 stays');
  assert.deepEqual([q0.popUsed()?.token, q0.popUsed()?.token], [1, 2]);
  assert.equal(q1.popUsed(), null);
  assert.equal(s.session.poll(), 0, 'a ring with buffers the device does not take is no work');
  assert.equal(s.session.stats.polledChains, 2);
  assert.equal(s.session.stats.kicks, 0, 'no kick was read');
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 0 }, fds: [] });
  q0.add([{ addr: 0x10000, len: 16, writable: true }], 4);
  assert.equal(s.session.poll(), 0, 'a disabled ring is not served');
  assert.equal(q0.popUsed(), null);
});

test('regression: a completion due before SET_VRING_CALL (QEMU restarting vhost-user-blk sends it after SET_VRING_ENABLE) is signalled when the call fd arrives', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  // QEMU's vhost_user_blk_start after a back-end restart: NUM, BASE, ADDR, KICK, ENABLE, and only
  // then (unmasking the guest notifiers) CALL. The guest's requests are already in the avail ring.
  s.send({ type: 'SET_VRING_NUM', body: { index: 0, num: 8 }, fds: [] });
  s.send({ type: 'SET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] });
  s.send({ type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: USER + RING.desc, avail: USER + RING.avail, used: USER + RING.used, log: 0 }, fds: [] });
  const q = s.driver(0);
  q.add([{ addr: 0x10000, len: 16, writable: true }], 1);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.deepEqual(q.popUsed(), { head: 0, len: 16, token: 1 }, 'served when the ring went live');
  const call = eventfdCreate();
  t.after(() => closeQuiet(call));
  s.send({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [dupOf(call)] });
  assert.equal(eventfdRead(call), 1n, 'the notification that had no fd is sent on the new one (the guest hung without it)');
  // A new call fd on the live ring is signalled once too: QEMU 10.0 swaps every live ring's call
  // fd once more, and a notification sent on the old one in between is lost (the switch restart).
  const again = eventfdCreate();
  t.after(() => closeQuiet(again));
  s.send({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [dupOf(again)] });
  assert.equal(eventfdRead(again), 1n);
  assert.equal(eventfdRead(call), 0n, 'the old fd is not signalled again');
});

test('regression: a split ring restarted at a non-zero base signals its call fd once, even with nothing to serve (a killed back-end may have returned chains without signalling them)', (t) => {
  const s = setup(t);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  s.send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  s.sendMemory();
  const q = s.driver(0);
  // A previous process returned three chains (used.idx 3) and died before the call: the driver's
  // used_event still says 0, which EVENT_IDX reads as "already signalled" for a ring resumed at 3.
  for (let i = 0; i < 3; i++) q.add([{ addr: 0x10000, len: 16, writable: true }], i);
  const first = s.ring(0);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.equal(eventfdRead(first.call), 1n, 'a fresh ring (base 0) signals only for what it serves');
  s.send({ type: 'GET_VRING_BASE', body: { index: 0, num: 0 }, fds: [] });
  const { call } = s.ring(0, 3);
  s.kickFd(0);
  s.send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] });
  assert.equal(eventfdRead(call), 1n, 'the restarted ring signalled once with nothing new to serve');
});

test('regression: a ring going live re-checks unsealable memory shrunk since its turn began, and touches nothing past the end (no SIGBUS)', (t) => {
  const dev = new EchoDevice();
  const session = new BackendSession({ device: dev, log: silent });
  const send = (init: FrontendRequestInit): BackendReply | null => sendThroughCodec(session, init);
  const size = 1 << 20;
  // Without MFD_ALLOW_SEALING the back-end cannot add F_SEAL_SHRINK: it keeps checking the size.
  const memfd = memfdCreate('guest-unsealable', size, { allowSealing: false });
  const mapping = mmapShared(memfd, size);
  const kick = eventfdCreate();
  const call = eventfdCreate();
  t.after(() => {
    session.close();
    for (const fd of [memfd, kick, call]) closeQuiet(fd);
    munmap(mapping);
  });
  send({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
  send({ type: 'SET_FEATURES', body: LINUX, fds: [] });
  send({ type: 'SET_MEM_TABLE', body: { regions: [{ guestAddr: 0, size, userAddr: USER, mmapOffset: 0 }] }, fds: [dup(memfd)] });
  assert.equal(session.hasUnsealedMemory, true);
  send({ type: 'SET_VRING_NUM', body: { index: 0, num: 8 }, fds: [] });
  send({ type: 'SET_VRING_ADDR', body: { index: 0, flags: 0, desc: USER + RING.desc, avail: USER + RING.avail, used: USER + RING.used, log: 0 }, fds: [] });
  send({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [dup(call)] });
  send({ type: 'SET_VRING_KICK', body: { index: 0, noFd: false }, fds: [dup(kick)] });
  // A chain whose buffer lies at 512 KiB is made available before the ring is enabled...
  const memory = new RegionGuestMemory([{ guestBase: 0, bytes: new Uint8Array(mapping.buffer) }]);
  new DriverQueue<number>({ memory, size: 8, addrs: RING, eventIdx: true }).add([{ addr: 512 * 1024, len: 16, writable: true }], 1);
  session.checkMemory(); // the loop's check at the start of the turn: still intact
  // ...then the file shrinks to 64 KiB (the rings stay inside) while that turn goes on.
  ftruncate(memfd, 64 * 1024);
  // Going live looks at the ring and would serve the chain: it must notice the shrink first.
  assert.throws(
    () => send({ type: 'SET_VRING_ENABLE', body: { index: 0, num: 1 }, fds: [] }),
    (e: unknown) => hasCode(e, 'VHOST_USER_MEMORY_SHRUNK'),
  );
  assert.equal(dev.served, 0, 'the chain past the new end was not served');
});
