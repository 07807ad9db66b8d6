// SPDX-License-Identifier: Apache-2.0
/**
 * QEMU capabilities: version and `-device help` parsing (excerpts of QEMU 7.2.22 and 10.0.2
 * output, written out by hand), the front-end rules of canAttach, the version quirks and their
 * effect on the argv, and the manifest check that refuses a device the QEMU cannot attach.
 */
import { test } from 'node:test';
import { vhostUserDevice } from './attach.js';
import assert from 'node:assert/strict';
import { parseManifest } from './manifest/load.js';
import { qemuArgs } from './qemu.js';
import { canAttach, formatVersion, parseDeviceHelp, parseQemuVersion, vhostUserFrontends, type QemuCaps } from './qemu-caps.js';


const HELP_72 = `Network devices:
name "virtio-net-pci", bus PCI, alias "virtio-net"

Misc devices:
name "vhost-user-blk-pci", bus PCI
name "vhost-user-blk-pci-transitional", bus PCI
name "vhost-user-input-pci", bus PCI
name "vhost-user-rng-pci", bus PCI
name "vhost-user-vsock-pci", bus PCI
`;
const HELP_10 = `${HELP_72}name "vhost-user-snd-pci", bus PCI
name "vhost-user-gpio-pci", bus PCI
`;

function caps(versionLine: string, help: string): QemuCaps {
  const version = parseQemuVersion(versionLine);
  assert.ok(version);
  return { binary: '/usr/bin/qemu-system-x86_64', version, versionText: versionLine, devices: parseDeviceHelp(help) };
}
const Q72 = caps('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)', HELP_72);
const Q10 = caps('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)', HELP_10);

test('parseQemuVersion and parseDeviceHelp', () => {
  assert.deepEqual(Q72.version, { major: 7, minor: 2, micro: 22 });
  assert.deepEqual(parseQemuVersion('QEMU emulator version 8.1'), { major: 8, minor: 1, micro: 0 });
  assert.equal(parseQemuVersion('no version here'), undefined);
  assert.ok(Q72.devices.has('vhost-user-blk-pci') && Q72.devices.has('virtio-net-pci'));
  assert.deepEqual(vhostUserFrontends(Q10), ['vhost-user-blk-pci', 'vhost-user-gpio-pci', 'vhost-user-input-pci', 'vhost-user-rng-pci', 'vhost-user-snd-pci', 'vhost-user-vsock-pci']);
});

test('canAttach: vhost-user-input on QEMU 7.2 needs KVM; fine under KVM and on QEMU 10', () => {
  const v = canAttach(Q72, 'vhost-user-input-pci', 'tcg');
  assert.equal(v.ok, false);
  assert.match(v.ok ? '' : v.reason, /QEMU 7\.2\.22's vhost-user-input-pci needs KVM/);
  assert.match(v.ok ? '' : v.fix, /scripts\/setup\.sh/);
  assert.deepEqual(canAttach(Q72, 'vhost-user-input-pci', 'kvm'), { ok: true });
  assert.deepEqual(canAttach(Q10, 'vhost-user-input-pci', 'tcg'), { ok: true });
});

test('canAttach: a front-end missing from the device list is refused by name', () => {
  const v = canAttach(Q72, 'vhost-user-snd-pci', 'tcg');
  assert.equal(v.ok, false);
  assert.match(v.ok ? '' : v.reason, /QEMU 7\.2\.22 \(\/usr\/bin\/qemu-system-x86_64\) has no vhost-user-snd-pci front-end/);
  assert.deepEqual(canAttach(Q10, 'vhost-user-snd-pci', 'tcg'), { ok: true });
  for (const d of ['vhost-user-rng-pci', 'vhost-user-blk-pci', 'virtio-net-pci', 'vhost-user-vsock-pci']) assert.deepEqual(canAttach(Q72, d, 'tcg'), { ok: true }, d);
});

test('quirks: vectors=0 on vhost-user virtio-net for QEMU 7.2 (and an unknown QEMU), not for QEMU 10 (the net kind frontend.quirks)', () => {
  const net = (qemuVersion?: string): string | undefined =>
    qemuArgs({ kernel: '/k', initrd: '/i', devices: [vhostUserDevice('net', '/s', { mac: '52:54:00:00:00:01' }, qemuVersion === undefined ? {} : { qemuVersion })] }).find((x) => x.startsWith('virtio-net-pci,'));
  assert.equal(net(formatVersion(Q72.version)), 'virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,romfile=,vectors=0,id=dev0');
  assert.equal(net(), 'virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,romfile=,vectors=0,id=dev0');
  assert.equal(net(formatVersion(Q10.version)), 'virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,romfile=,id=dev0');
});

test('manifest: a device the QEMU cannot attach is an error at its kind, with reason and fix', () => {
  const text = 'name: p\nvms:\n  - name: a\n    devices:\n      - { kind: rng }\n      - { kind: vsock, cid: 3 }\n';
  const noVsock: QemuCaps = { ...Q72, devices: new Set([...Q72.devices].filter((d) => d !== 'vhost-user-vsock-pci')) };
  const r = parseManifest(text, { frontends: { caps: noVsock, accel: 'tcg' }, skipFileChecks: true });
  assert.equal(r.model, undefined);
  assert.equal(r.issues.length, 1);
  const [issue] = r.issues;
  assert.equal(issue?.path, 'vms[0].devices[1].kind');
  assert.equal(issue?.line, 6);
  assert.match(issue?.message ?? '', /^vsock: QEMU 7\.2\.22 .* has no vhost-user-vsock-pci front-end; fix: bash scripts\/setup\.sh/);
  assert.ok(parseManifest(text, { frontends: { caps: Q72, accel: 'tcg' }, skipFileChecks: true }).model);
  // The registry refactor passes each kind's frontend.qemuDevice.
  const input = parseManifest(text, { frontends: { caps: Q72, accel: 'tcg', qemuDeviceOf: (k) => (k === 'rng' ? 'vhost-user-input-pci' : undefined) }, skipFileChecks: true });
  assert.match(input.issues[0]?.message ?? '', /needs KVM/);
});
