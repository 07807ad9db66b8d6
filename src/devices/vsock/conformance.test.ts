// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock conformance checks in-process, through `HarnessDriver` (device/testing.ts): the probe
 * and wrong-direction requests behave as the generic checks expect, and a device that answers
 * nothing fails the RST checks. Every check's verdict against AVP's device is in
 * conformance/in-process.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtioDevice } from '../../device/contract.js';
import { HarnessDriver } from '../../device/testing.js';
import { vsockConformance } from './conformance.js';
import { VsockDevice } from './model.js';

test('vsock conformance: probe and wrong-direction requests complete as the checks expect', () => {
  const d = new HarnessDriver(new VsockDevice({ guestCid: 7 }), { defaultQueue: vsockConformance.probeQueue });
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
