// SPDX-License-Identifier: Apache-2.0
/**
 * checkFrontends against a QEMU described by hand: each kind's declared front-end is looked up;
 * a kind no QEMU release has (console, can) is refused with that said and what to do instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest } from './load.js';
import type { QemuCaps } from '../qemu-caps.js';

const qemu10: QemuCaps = {
  binary: '/usr/bin/qemu-system-x86_64',
  version: { major: 10, minor: 0, micro: 2 },
  versionText: 'QEMU emulator version 10.0.2',
  devices: new Set(['vhost-user-rng-pci', 'vhost-user-snd-pci', 'virtio-net-pci']),
};
const qemu72: QemuCaps = { ...qemu10, version: { major: 7, minor: 2, micro: 0 }, devices: new Set(['vhost-user-rng-pci', 'virtio-net-pci']) };

const MANIFEST = `name: p
buses: [{ name: b }]
vms:
  - name: a
    devices:
      - kind: rng
      - kind: sound
      - kind: console
      - kind: can
        bus: b
`;

const issues = (caps: QemuCaps) => parseManifest(MANIFEST, { baseDir: '/m', fileExists: () => true, frontends: { caps, accel: 'tcg' } }).issues.map((i) => `${i.path}: ${i.message}`);

test('frontends: console and can are refused on any QEMU, saying no release has them; sound needs a QEMU that has vhost-user-snd-pci', () => {
  assert.deepEqual(issues(qemu10), [
    'vms[0].devices[2].kind: console: no QEMU release has a vhost-user front-end for this device, so a VM cannot attach it; serve it to another VMM with avp serve console, and check it with avp conformance --device console',
    'vms[0].devices[3].kind: can: no QEMU release has a vhost-user front-end for this device, so a VM cannot attach it; serve it to another VMM with avp serve can, and check it with avp conformance --device can',
  ]);
  const old = issues(qemu72);
  assert.equal(old.length, 3);
  assert.match(old[0] ?? '', /^vms\[0\]\.devices\[1\]\.kind: sound: QEMU 7\.2\.0 \(.*\) has no vhost-user-snd-pci front-end; fix: /);
});
