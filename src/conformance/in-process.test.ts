// SPDX-License-Identifier: Apache-2.0
/**
 * Every device's own conformance checks (`devices/<name>/conformance.ts`), run in-process against
 * AVP's device models through `HarnessDriver` (device/testing.ts), with fake hosts: a device
 * regression fails here, in a unit test, without vhost-user or a back-end process. Each verdict
 * must be the one recorded for AVP's back-end of that device in conformance/expected/avp-*.txt
 * (PASS when the file does not list the check), and no check may write outside the buffers the
 * device may write.
 *
 * Not judged here: the generic protocol, queue and hostile-ring checks. They drive the vhost-user
 * transport (messages, eventfds, rings in shared memory) and are judged over it by
 * avp-backends.test.ts and avp-net.test.ts; each is listed as skipped below with that reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CheckOutcome, DeviceCheck, DeviceConformance, Verdict } from '../device/conformance.js';
import type { VirtioDevice } from '../device/contract.js';
import { HarnessDriver } from '../device/testing.js';
import { MemoryBlockHost } from '../devices/blk/host.js';
import { BlkDevice } from '../devices/blk/model.js';
import { NetSwitch } from '../devices/net/switch.js';
import { RngDevice } from '../devices/rng/model.js';
import { VsockDevice } from '../devices/vsock/model.js';
import { FakeUnixStreams } from '../devices/vsock/testing.js';
import { GENERIC_CHECKS } from './catalog.js';
import { DEVICE_CONFORMANCE } from './devices.js';
import { parseExpected } from './expected.js';
import { expectedFile } from './testing.js';

/** One back-end configuration: the device as `avp serve` builds it, with a fake host. */
interface Case {
  readonly device: string;
  /** Expected-verdict file of the same configuration served over vhost-user. */
  readonly expected: string;
  /** A fresh device for one check (checks may change device state, e.g. write the image). */
  create(): VirtioDevice;
}

const MIB = 1 << 20;

const CASES: readonly Case[] = [
  // The host CSPRNG, as served: rng.randomness judges the bytes, and FakeEntropySource's counter is
  // not random by design.
  { device: 'rng', expected: 'avp-rng.txt', create: () => new RngDevice() },
  // A 16 MiB image filled like avp-backends.test.ts's, with discard and write-zeroes (fallocate).
  { device: 'blk', expected: 'avp-blk.txt', create: () => new BlkDevice({ host: new MemoryBlockHost(new Uint8Array(16 * MIB).fill(0x3c)) }) },
  { device: 'blk', expected: 'avp-blk-ro.txt', create: () => new BlkDevice({ host: new MemoryBlockHost(new Uint8Array(16 * MIB).fill(0x3c), { readOnly: true }), readOnly: true }) },
  // avp-net.test.ts: `avp serve net --mac 52:54:00:00:00:01 --mtu 9000`, a switch of one port.
  { device: 'net', expected: 'avp-net.txt', create: () => new NetSwitch({ mtu: 9000 }).addPort({ mac: '52:54:00:00:00:01' }) },
  { device: 'vsock', expected: 'avp-vsock.txt', create: () => new VsockDevice({ guestCid: 7, udsPath: '/conf/v.sock', host: new FakeUnixStreams() }) },
];

/**
 * Device checks the in-process driver cannot judge, with the reason. Empty today: every device
 * check only uses what both transports give (config access, requests, buffer contents).
 */
const NEEDS_TRANSPORT: Readonly<Record<string, string>> = {};

/** Runs one device check on a fresh device; a throw or a stray write is a FAIL, as the runner has it. */
function runInProcess(check: DeviceCheck, conf: DeviceConformance, device: VirtioDevice): CheckOutcome {
  const d = new HarnessDriver(device, { defaultQueue: conf.probeQueue });
  let outcome: CheckOutcome;
  try {
    outcome = check.run(d);
  } catch (e: unknown) {
    return { verdict: 'FAIL', details: `threw: ${e instanceof Error ? e.message : String(e)}` };
  }
  const stray = d.strayWrites();
  return stray === null ? outcome : { verdict: 'FAIL', details: `${stray} (the check said ${outcome.verdict}: ${outcome.details})` };
}

for (const c of CASES) {
  test(`in-process conformance: ${c.device} device checks give the verdicts of ${c.expected}`, async (t) => {
    const conf = DEVICE_CONFORMANCE[c.device];
    assert.ok(conf !== undefined, `no conformance checks for ${c.device}`);
    const want = parseExpected(readFileSync(expectedFile(c.expected), 'utf8'), c.expected);
    const counts: Partial<Record<Verdict | 'not judged', number>> = {};
    const count = (k: Verdict | 'not judged') => (counts[k] = (counts[k] ?? 0) + 1);
    for (const check of conf.checks) {
      const why = NEEDS_TRANSPORT[check.id];
      if (why !== undefined) count('not judged');
      await t.test(check.id, { skip: why === undefined ? false : `not judged in-process: ${why}` }, () => {
        const got = runInProcess(check, conf, c.create());
        count(got.verdict);
        const expected = want.get(check.id)?.verdict ?? 'PASS';
        assert.equal(got.verdict, expected, `${check.id}: ${got.details}`);
      });
    }
    const generic = GENERIC_CHECKS.filter((g) => g.devices === 'all' || g.devices.includes(c.device));
    await t.test(`${generic.length} generic checks (protocol, queue, hostile)`, { skip: 'they need the vhost-user transport; avp-backends.test.ts and avp-net.test.ts judge them' }, () => {});
    t.diagnostic(`${c.expected}: ${Object.entries(counts).map(([v, n]) => `${v} ${n}`).join(', ')} of ${conf.checks.length} device checks`);
  });
}

test('in-process conformance: every device of the suite has a case', () => {
  assert.deepEqual([...new Set(CASES.map((c) => c.device))].sort(), Object.keys(DEVICE_CONFORMANCE).sort());
});
