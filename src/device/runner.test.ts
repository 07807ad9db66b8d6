// SPDX-License-Identifier: Apache-2.0
/** Device status state machine and feature negotiation (VIRTIO 1.3 §2.1, §2.2, §3.1.1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRunner, negotiateFeatures, type DeviceContext, type VirtioDevice } from './index.js';
import { FlatGuestMemory } from '../memory/guest-memory.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1, featureMask } from '../spec/virtio.js';

const ACK = 1;
const DRIVER = 2;
const DRIVER_OK = 4;
const FEATURES_OK = 8;
const NEEDS_RESET = 64;
const FAILED = 128;

/** A device that records what the runner does to it. */
class RecordingDevice implements VirtioDevice {
  readonly deviceId = 4;
  readonly name = 'recording';
  readonly queueMaxSizes = [8, 4];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, 3);
  readonly configSize = 8;
  readonly events: string[] = [];
  ctx: DeviceContext | undefined;
  readConfig(offset: number, length: number): Uint8Array {
    return Uint8Array.from({ length }, (_, i) => offset + i);
  }
  writeConfig(offset: number, data: Uint8Array): void {
    this.events.push(`write ${offset} ${data.length}`);
  }
  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.events.push(`activate 0x${ctx.features.toString(16)}`);
  }
  queueNotify(index: number): void {
    this.events.push(`notify ${index}`);
  }
  reset(): void {
    this.events.push('reset');
  }
  metrics(): Record<string, unknown> {
    return {};
  }
}

function runner(): { r: DeviceRunner; dev: RecordingDevice; warnings: string[] } {
  const dev = new RecordingDevice();
  const warnings: string[] = [];
  const r = new DeviceRunner(dev, {
    memory: new FlatGuestMemory(1 << 16),
    notify: () => {},
    log: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  return { r, dev, warnings };
}

test('negotiation: unoffered bits are refused and named; VERSION_1 is required', () => {
  const offered = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX);
  assert.equal(negotiateFeatures(offered, featureMask(VIRTIO_F_VERSION_1)), featureMask(VIRTIO_F_VERSION_1));
  assert.throws(() => negotiateFeatures(offered, featureMask(VIRTIO_F_VERSION_1, 28, 5), { 5: 'RO' }), {
    code: 'DEVICE_FEATURES_NOT_OFFERED',
    message: /INDIRECT_DESC, RO|RO, INDIRECT_DESC/,
  });
  assert.throws(() => negotiateFeatures(offered, featureMask(VIRTIO_F_EVENT_IDX)), { code: 'DEVICE_VERSION_1_REQUIRED' });
  // A device type's mandatory bit (virtio-i2c's ZERO_LENGTH_REQUEST, bit 0) missing: refused.
  const i2c = featureMask(VIRTIO_F_VERSION_1, 0);
  assert.equal(negotiateFeatures(i2c, i2c, {}, featureMask(0)), i2c);
  assert.throws(() => negotiateFeatures(i2c, featureMask(VIRTIO_F_VERSION_1), { 0: 'ZERO_LENGTH_REQUEST' }, featureMask(0)), { code: 'DEVICE_FEATURES_REQUIRED', message: /ZERO_LENGTH_REQUEST/ });
});

test('status: the §3.1.1 sequence activates the device with the negotiated features', () => {
  const { r, dev } = runner();
  r.writeStatus(ACK);
  r.writeStatus(ACK | DRIVER);
  r.setDriverFeatures(featureMask(VIRTIO_F_VERSION_1, 3));
  r.writeStatus(ACK | DRIVER | FEATURES_OK);
  assert.equal(r.status, ACK | DRIVER | FEATURES_OK, 'FEATURES_OK latched');
  assert.throws(() => r.setDriverFeatures(0n), { code: 'DEVICE_FEATURES_LOCKED' });
  r.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.deepEqual(dev.events, ['activate 0x100000008']);
  assert.equal(r.active, true);
});

test('status: FEATURES_OK is not latched for features the device did not offer', () => {
  const { r, dev, warnings } = runner();
  r.writeStatus(ACK);
  r.writeStatus(ACK | DRIVER);
  r.setDriverFeatures(featureMask(VIRTIO_F_VERSION_1, 40));
  r.writeStatus(ACK | DRIVER | FEATURES_OK);
  assert.equal(r.status & FEATURES_OK, 0, 'driver reads FEATURES_OK back unset (§3.1.1 step 6)');
  assert.match(warnings.join(), /RING_RESET \(0x10000000000\)/);
  // Setting FEATURES_OK and DRIVER_OK together is refused the same way: nothing goes live.
  r.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(r.status, ACK | DRIVER);
  assert.throws(() => r.writeStatus(ACK | DRIVER | DRIVER_OK), { code: 'DEVICE_BAD_STATUS_TRANSITION' });
  assert.deepEqual(dev.events, []);
  assert.equal(r.active, false);
});

test('status: out-of-order and bit-clearing writes are refused; 0 resets; FAILED sticks', () => {
  const { r, dev } = runner();
  assert.throws(() => r.writeStatus(DRIVER), { code: 'DEVICE_BAD_STATUS_TRANSITION' });
  r.writeStatus(ACK);
  assert.throws(() => r.writeStatus(ACK | FEATURES_OK), { code: 'DEVICE_BAD_STATUS_TRANSITION' });
  r.writeStatus(ACK | DRIVER);
  assert.throws(() => r.writeStatus(ACK), { code: 'DEVICE_BAD_STATUS_TRANSITION' });
  r.writeStatus(ACK | DRIVER | FAILED);
  assert.equal(r.status & FAILED, FAILED);
  r.writeStatus(0);
  assert.equal(r.status, 0);
  assert.deepEqual(dev.events, [], 'reset of an inactive device does not call the model');
});

test('queues: bad index and size are refused; kicks reach the device only when live', () => {
  const { r, dev } = runner();
  assert.throws(() => r.configureQueue(2, 4, { desc: 0, avail: 0x100, used: 0x200 }), { code: 'DEVICE_NO_SUCH_QUEUE' });
  assert.throws(() => r.configureQueue(1, 8, { desc: 0, avail: 0x100, used: 0x200 }), { code: 'DEVICE_BAD_QUEUE_SIZE' });
  assert.throws(() => r.configureQueue(0, 6, { desc: 0, avail: 0x100, used: 0x200 }), { code: 'DEVICE_BAD_QUEUE_SIZE' });
  r.kick(0);
  r.writeStatus(ACK);
  r.writeStatus(ACK | DRIVER);
  r.setDriverFeatures(featureMask(VIRTIO_F_VERSION_1));
  r.writeStatus(ACK | DRIVER | FEATURES_OK);
  r.configureQueue(0, 8, { desc: 0, avail: 0x100, used: 0x200 });
  r.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  r.kick(0);
  r.kick(1);
  assert.deepEqual(dev.events, ['activate 0x100000000', 'notify 0'], 'queue 1 was never configured');
  assert.equal(r.stopQueue(0), 0);
  r.kick(0);
  r.writeStatus(0);
  assert.deepEqual(dev.events.slice(2), ['reset']);
});

test('needs reset: a corrupt ring sets NEEDS_RESET and further kicks are ignored', () => {
  const { r, dev } = runner();
  r.writeStatus(ACK);
  r.writeStatus(ACK | DRIVER);
  r.setDriverFeatures(featureMask(VIRTIO_F_VERSION_1));
  r.writeStatus(ACK | DRIVER | FEATURES_OK);
  r.configureQueue(0, 8, { desc: 0, avail: 0x100, used: 0x200 });
  r.writeStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  // avail.idx = 9 with a queue of 8: the ring is corrupt.
  r.memory.writeU16(0x102, 9);
  assert.equal(r.queue(0)?.pop(), null);
  assert.equal(r.status & NEEDS_RESET, NEEDS_RESET);
  r.kick(0);
  assert.deepEqual(dev.events, ['activate 0x100000000']);
  r.writeStatus(0);
  assert.equal(r.status, 0, 'reset clears NEEDS_RESET');
});

test('config: reads and writes inside the layout reach the device; outside are refused', () => {
  const { r, dev } = runner();
  assert.deepEqual([...r.readConfig(2, 4)], [2, 3, 4, 5]);
  r.writeConfig(0, new Uint8Array(8));
  assert.deepEqual(dev.events, ['write 0 8']);
  assert.throws(() => r.readConfig(6, 4), { code: 'DEVICE_CONFIG_OUT_OF_RANGE' });
  assert.throws(() => r.readConfig(-1, 1), { code: 'DEVICE_CONFIG_OUT_OF_RANGE' });
});
