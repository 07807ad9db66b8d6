// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock conformance checks run in-process against AVP's device, through a small
 * `ConformanceDriver` over the harness (the suite runs them over vhost-user; the checks cannot
 * tell). AVP's device must pass every check; a device that answers nothing must not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConformanceDriver, DriverStartOptions, UsedElement } from '../../device/conformance.js';
import type { VirtioDevice } from '../../device/contract.js';
import { DeviceHarness } from '../../device/harness.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { vsockConformance } from './conformance.js';
import { VsockDevice } from './model.js';
import { FakeUnixStreams } from './testing.js';

/** A ConformanceDriver over the in-process harness (requests complete synchronously or never). */
class HarnessDriver implements ConformanceDriver {
  readonly deviceName: string;
  readonly offeredFeatures: bigint;
  readonly hasConfigAccess = true;
  #h: DeviceHarness | undefined;

  constructor(readonly device: VirtioDevice) {
    this.deviceName = device.name;
    this.offeredFeatures = device.offeredFeatures;
  }

  get features(): bigint {
    return this.#h?.runner.features ?? 0n;
  }

  get h(): DeviceHarness {
    if (this.#h === undefined) throw new Error('start() first');
    return this.#h;
  }

  start(opts: DriverStartOptions = {}): void {
    this.#h = new DeviceHarness(this.device, { memorySize: 8 << 20, queueSize: opts.queueSize ?? 16, ...(opts.features === undefined ? {} : { features: opts.features & this.offeredFeatures }) });
  }

  readConfig(offset: number, length: number): Uint8Array | null {
    return this.h.runner.readConfig(offset, length);
  }

  writeConfig(offset: number, data: Uint8Array): 'accepted' {
    this.h.runner.writeConfig(offset, data);
    return 'accepted';
  }

  out(bytes: Uint8Array): DriverBuffer {
    const addr = this.h.alloc.alloc(Math.max(1, bytes.length));
    this.h.memory.write(addr, bytes);
    return { addr, len: bytes.length };
  }

  in(len: number, fill = 0): DriverBuffer {
    const addr = this.h.alloc.alloc(Math.max(1, len));
    this.h.memory.fill(addr, len, fill);
    return { addr, len, writable: true };
  }

  bytes(buf: DriverBuffer): Uint8Array {
    return this.h.memory.read(buf.addr, buf.len);
  }

  request(buffers: readonly DriverBuffer[], opts: { queue?: number } = {}): UsedElement {
    const q = opts.queue ?? 0;
    const head = this.h.submit(q, buffers);
    this.h.runner.kick(q);
    const used = this.h.queue(q).popUsed();
    if (used === null || used.head !== head) throw new Error(`request on queue ${q} not completed`);
    return { len: used.len };
  }

  strayWrites(): null {
    return null;
  }
}

test('vsock conformance: AVP\'s device passes every check (REJECT allowed for hostile ones)', () => {
  for (const check of vsockConformance.checks) {
    const dev = new VsockDevice({ guestCid: 7, udsPath: '/conf/v.sock', host: new FakeUnixStreams() });
    const outcome = check.run(new HarnessDriver(dev));
    assert.ok(outcome.verdict === 'PASS' || (check.group === 'hostile' && outcome.verdict === 'REJECT'), `${check.id}: ${outcome.verdict} ${outcome.details}`);
  }
});

test('vsock conformance: probe and wrong-direction requests complete as the checks expect', () => {
  const d = new HarnessDriver(new VsockDevice({ guestCid: 7 }));
  d.start();
  for (let i = 0; i < 3000; i++) {
    const p = vsockConformance.probe(d);
    assert.equal(p.verify(d.request(p.buffers, { queue: vsockConformance.probeQueue })), null, 'probes never pile up replies');
  }
  const w = vsockConformance.wrongDirection(d);
  assert.equal(w.judge(d.request(w.buffers, { queue: vsockConformance.probeQueue })).verdict, 'PASS');
});

test('vsock conformance: a device that never answers fails the RST checks', () => {
  const dev = new VsockDevice({ guestCid: 7 });
  // A broken device: takes tx packets and drops them.
  const broken: VirtioDevice = {
    deviceId: dev.deviceId,
    name: dev.name,
    queueMaxSizes: dev.queueMaxSizes,
    offeredFeatures: dev.offeredFeatures,
    configSize: dev.configSize,
    readConfig: (o, l) => dev.readConfig(o, l),
    writeConfig: () => {},
    activate(ctx) {
      this.ctx = ctx;
    },
    queueNotify(i) {
      const q = this.ctx?.queue(i);
      if (i !== 1 || q === undefined) return;
      for (let c = q.pop(); c !== null; c = q.pop()) q.pushUsed(c.head, 0);
    },
    reset() {},
    metrics: () => ({}),
  } as VirtioDevice & { ctx?: Parameters<VirtioDevice['activate']>[0] };
  const check = vsockConformance.checks.find((c) => c.id === 'vsock.rst-no-listener');
  assert.ok(check);
  assert.throws(() => check.run(new HarnessDriver(broken)), /not completed/, 'the rx buffer is never used: the runner turns this into WEDGED/FAIL');
});
