// SPDX-License-Identifier: Apache-2.0
/**
 * Every device's own conformance checks (`devices/<name>/conformance.ts`), run in-process against
 * AVP's device models through `HarnessDriver` (device/testing.ts), with fake hosts: a device
 * regression fails here, in a unit test, without vhost-user or a back-end process. Each verdict
 * must be the one recorded for AVP's back-end of that device in devices/<kind>/*.expected.txt
 * (PASS when the file does not list the check), and no check may write outside the buffers the
 * device may write.
 *
 * Not judged here: the generic protocol, queue and hostile-ring checks. They drive the vhost-user
 * transport (messages, eventfds, rings in shared memory) and are judged over it by
 * avp-backends.test.ts; each is listed as skipped below with that reason.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckOutcome, DeviceCheck, DeviceConformance, Verdict } from '../device/conformance.js';
import type { VirtioDevice } from '../device/contract.js';
import { HarnessDriver } from '../device/testing.js';
import { DEVICE_KINDS, createDevice } from '../devices/registry.js';
import { FakeUnixStreams } from '../devices/vsock/testing.js';
import { fallocate, fsSyscalls } from '../sys/index.js';
import { GENERIC_CHECKS } from './catalog.js';
import { DEVICE_CONFORMANCE } from './devices.js';
import { parseExpected } from './expected.js';
import { kindExpectedFile, withScratch } from './testing.js';
import { errorText } from '../errors.js';

/** One back-end configuration: a kind's conformance set-up, the device built as `avp serve` builds it. */
interface Case {
  readonly device: string;
  readonly label: string;
  /** Expected-verdict file of the same configuration served over vhost-user (beside the device). */
  readonly expected: URL;
  /** A fresh device for one check (checks may change device state, e.g. write the image). */
  create(): VirtioDevice;
}

const scratch = mkdtempSync(join(tmpdir(), 'avp-inproc-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let fresh = 0;

/**
 * Every set-up of every kind (DEVICE_KINDS): its files made in a fresh folder per device (filled
 * with 0x3c, as avp-backends.test.ts does), `{scratch}` replaced, and the device built through the
 * registry with the host capabilities a back-end has (fallocate from sys/, fake Unix sockets for
 * vsock's host side, which no check connects to).
 */
const CASES: readonly Case[] = DEVICE_KINDS.flatMap((kind) =>
  kind.conformanceSetups.map((setup): Case => ({
    device: kind.name,
    label: setup.label,
    expected: kindExpectedFile(kind.name, setup.expected),
    create: () => {
      const dir = join(scratch, String(fresh++));
      mkdirSync(dir);
      for (const [name, size] of Object.entries(setup.files ?? {})) writeFileSync(join(dir, name), Buffer.alloc(size, 0x3c));
      const options = withScratch(setup.options, dir);
      return createDevice({ kind: kind.name, options }, { fallocate, fsSyscalls, unixStreams: new FakeUnixStreams() });
    },
  })),
);

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
    return { verdict: 'FAIL', details: `threw: ${errorText(e)}` };
  }
  const stray = d.strayWrites();
  return stray === null ? outcome : { verdict: 'FAIL', details: `${stray} (the check said ${outcome.verdict}: ${outcome.details})` };
}

for (const c of CASES) {
  test(`in-process conformance: ${c.device} (${c.label}) device checks give the verdicts of its expected file`, async (t) => {
    const conf = DEVICE_CONFORMANCE[c.device];
    assert.ok(conf !== undefined, `no conformance checks for ${c.device}`);
    const want = parseExpected(readFileSync(c.expected, 'utf8'), c.expected.pathname);
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
    await t.test(`${generic.length} generic checks (protocol, queue, hostile)`, { skip: 'they need the vhost-user transport; avp-backends.test.ts judges them' }, () => {});
    t.diagnostic(`${c.device} (${c.label}): ${Object.entries(counts).map(([v, n]) => `${v} ${n}`).join(', ')} of ${conf.checks.length} device checks`);
  });
}

test('in-process conformance: every device of the suite has a case', () => {
  assert.deepEqual([...new Set(CASES.map((c) => c.device))].sort(), Object.keys(DEVICE_CONFORMANCE).sort());
});

