// SPDX-License-Identifier: Apache-2.0
/**
 * The per-VM watchdog and balloon from manifest to argv: defaults, the QEMU options each action
 * gives (written out by hand), the guest's `avp.watchdog=` parameter, the QMP socket in the run
 * directory, and the precise errors for bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest, planPlatform, type PlatformModel } from './index.js';

const IMAGE = { kernel: '/img/vmlinuz', initramfs: '/img/initramfs.cpio.gz' };

function model(text: string): PlatformModel {
  const r = parseManifest(text, { baseDir: '/m', fileExists: () => true });
  assert.deepEqual(r.issues, []);
  assert.ok(r.model !== undefined);
  return r.model;
}

function issues(text: string): Array<[string, string]> {
  const r = parseManifest(text, { baseDir: '/m', fileExists: () => true });
  return r.issues.map((i) => [i.path, i.message]);
}

/** The argv after `-serial stdio`, up to the end. */
function tail(argv: readonly string[]): string[] {
  return argv.slice(argv.indexOf('stdio') + 1);
}

test('watchdog and balloon: defaults (timeout 30, reset; deflate-on-oom on, free page reporting off)', () => {
  const m = model('name: p\nvms:\n  - name: a\n    watchdog: {}\n    balloon: {}\n');
  assert.deepEqual(m.vms[0]?.watchdog, { timeoutSeconds: 30, action: 'reset' });
  assert.deepEqual(m.vms[0]?.balloon, { deflateOnOom: true, freePageReporting: false });
});

test('watchdog reset: i6300esb, -action watchdog=reset, and no -no-reboot (QEMU would turn the reset into a shutdown); QMP connects to <vm>/qmp.sock', () => {
  const plan = planPlatform(model('name: p\nvms:\n  - name: a\n    watchdog: {timeout: 12, action: reset}\n'), { runDir: '/run/avp', image: IMAGE });
  const vm = plan.vms[0];
  assert.deepEqual(tail(vm?.argv ?? []), ['-chardev', 'socket,id=qmp,path=/run/avp/a/qmp.sock', '-mon', 'chardev=qmp,mode=control', '-device', 'i6300esb,id=watchdog0', '-action', 'watchdog=reset']);
  assert.equal(vm?.argv.includes('-no-reboot'), false);
  assert.equal(vm?.argv[vm.argv.indexOf('-append') + 1], 'console=ttyS0 panic=-1 quiet avp.watchdog=12');
  assert.equal(vm?.qmp, '/run/avp/a/qmp.sock');
  assert.deepEqual(vm?.watchdog, { timeoutSeconds: 12, action: 'reset' });
  assert.equal(vm?.balloon, false);
});

test('watchdog poweroff and restart-vm: QEMU powers off (restart-vm: the runner starts the VM again); -no-reboot stays', () => {
  for (const action of ['poweroff', 'restart-vm']) {
    const plan = planPlatform(model(`name: p\nvms:\n  - name: a\n    watchdog: {action: ${action}}\n`), { runDir: '/run/avp', image: IMAGE });
    const vm = plan.vms[0];
    assert.deepEqual(tail(vm?.argv ?? []), ['-no-reboot', '-chardev', 'socket,id=qmp,path=/run/avp/a/qmp.sock', '-mon', 'chardev=qmp,mode=control', '-device', 'i6300esb,id=watchdog0', '-action', 'watchdog=poweroff']);
    assert.equal(vm?.watchdog?.action, action);
  }
});

test('balloon: virtio-balloon-pci with its options; a QMP socket; no watchdog parameter for the guest', () => {
  const plan = planPlatform(model('name: p\nvms:\n  - name: a\n    balloon: {deflateOnOom: false, freePageReporting: true}\n  - name: b\n'), { runDir: '/run/avp', image: IMAGE });
  const [a, b] = plan.vms;
  assert.deepEqual(tail(a?.argv ?? []), ['-no-reboot', '-chardev', 'socket,id=qmp,path=/run/avp/a/qmp.sock', '-mon', 'chardev=qmp,mode=control', '-device', 'virtio-balloon-pci,id=balloon0,deflate-on-oom=off,free-page-reporting=on']);
  assert.equal(a?.argv[a.argv.indexOf('-append') + 1], 'console=ttyS0 panic=-1 quiet');
  assert.equal(a?.balloon, true);
  // A VM with neither has no QMP socket and the argv it always had.
  assert.deepEqual(tail(b?.argv ?? []), ['-no-reboot']);
  assert.equal(b?.qmp, undefined);
});

test('watchdog and balloon: bad values are named precisely', () => {
  const vm = (extra: string) => `name: p\nvms:\n  - name: a\n    ${extra}\n`;
  assert.deepEqual(issues(vm('watchdog: {action: reboot}')), [['vms[0].watchdog.action', 'expected one of: reset, poweroff, restart-vm; got "reboot"']]);
  assert.deepEqual(issues(vm('watchdog: {timeout: 1}')), [['vms[0].watchdog.timeout', 'expected an integer from 2 to 2046; got 1']]);
  assert.deepEqual(issues(vm('watchdog: {timeout: 5000}')), [['vms[0].watchdog.timeout', 'expected an integer from 2 to 2046; got 5000']]);
  assert.deepEqual(issues(vm('watchdog: {timout: 10}')), [['vms[0].watchdog.timout', "unknown key 'timout'; expected one of: timeout, action"]]);
  assert.deepEqual(issues(vm('watchdog: 10')), [['vms[0].watchdog', 'expected a watchdog section (a mapping); got 10']]);
  assert.deepEqual(issues(vm('balloon: {deflateOnOom: yes please}')), [['vms[0].balloon.deflateOnOom', 'expected true or false; got "yes please"']]);
  assert.deepEqual(issues(vm('balloon: {size: 1G}')), [['vms[0].balloon.size', "unknown key 'size'; expected one of: deflateOnOom, freePageReporting"]]);
});
