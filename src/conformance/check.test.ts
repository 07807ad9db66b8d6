// SPDX-License-Identifier: Apache-2.0
/** `driverCheck`: the preamble every table-built check gets, and that literal checks still fit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pass } from '../device/conformance.js';
import { rngConformance } from '../devices/rng/conformance.js';
import { type Check, type CheckContext, driverCheck, genericChecks, offersFeature, offersProtocol } from './check.js';
import type { VhostUserDriver, VhostUserStartOptions } from './driver.js';

/** A connection that records what the builder did to it. */
function fakeConnection(offered: { features: bigint; protocol: bigint | null }): { d: VhostUserDriver; calls: string[] } {
  const calls: string[] = [];
  const fake = {
    offeredFeatures: offered.features,
    offeredProtocol: offered.protocol,
    offersProtocol: (bit: number) => offered.protocol !== null && (offered.protocol & (1n << BigInt(bit))) !== 0n,
    handshake: () => calls.push('handshake'),
    start: (opts: VhostUserStartOptions) => calls.push(`start ${JSON.stringify(opts)}`),
  };
  // Safe for these tests: the builder touches only the members above before the body runs.
  return { d: fake as unknown as VhostUserDriver, calls };
}

function context(d: VhostUserDriver): CheckContext {
  return { device: rngConformance, timeoutMs: 100, connect: () => d };
}

const info = { id: 'test.check', title: 'A check of the builder', source: 'VIRTIO 1.3 §2', level: 'MUST' } as const;

test('driverCheck: needs is asked first and skips without setting anything up', () => {
  const { d, calls } = fakeConnection({ features: 0n, protocol: null });
  const check = genericChecks('queue')({ ...info, needs: offersFeature(29, 'VIRTIO_F_EVENT_IDX'), run: () => pass('ran') });
  assert.deepEqual(check.run(context(d)), { verdict: 'SKIP', details: 'VIRTIO_F_EVENT_IDX is not offered' });
  assert.deepEqual(calls, []);
  const proto = genericChecks('protocol')({ ...info, needs: offersProtocol(0, 'MQ'), run: () => pass('ran') });
  assert.equal(proto.run(context(d)).details, 'VHOST_USER_F_PROTOCOL_FEATURES (bit 30) is not offered');
  assert.equal(proto.run(context(fakeConnection({ features: 0n, protocol: 2n }).d)).details, 'protocol feature MQ is not offered');
});

test('driverCheck: the setup is done once, as the spec says, before the body', () => {
  for (const [setup, want] of [
    [undefined, ['start {"queueSize":64}', 'run']],
    ['started', ['start {"queueSize":64}', 'run']],
    ['handshaken', ['handshake', 'run']],
    ['connected', ['run']],
  ] as const) {
    const { d, calls } = fakeConnection({ features: 1n << 29n, protocol: 1n });
    const check = genericChecks('protocol')({
      ...info,
      ...(setup === undefined ? {} : { setup }),
      start: () => ({ queueSize: 64 }),
      run(got) {
        assert.equal(got, d);
        calls.push('run');
        return pass();
      },
    });
    assert.equal(check.run(context(d)).verdict, 'PASS');
    assert.deepEqual(calls, want, `setup ${setup ?? 'default'}`);
  }
});

test('driverCheck: builds the same Check as a literal, so both kinds sit in one catalog array', () => {
  const literal: Check = { ...info, group: 'protocol', devices: 'all', run: () => pass() };
  const built = driverCheck({ ...info, group: 'protocol', devices: 'all', setup: 'connected', run: () => pass() });
  const checks: Check[] = [literal, built];
  assert.deepEqual(
    checks.map((c) => Object.keys(c).sort()),
    [Object.keys(literal).sort(), Object.keys(literal).sort()],
  );
  assert.equal(built.group, 'protocol');
  assert.equal(built.devices, 'all');
});
