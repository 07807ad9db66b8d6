// SPDX-License-Identifier: Apache-2.0
/**
 * qemuArgs: exact argv arrays for each device kind (written out by hand, not built by the code
 * under test), option-value escaping, and the spec validation errors. detectAccel's env rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../errors.js';
import { vhostUserDevice } from './attach.js';
import { detectAccel, qemuArgs, type VmSpec } from './qemu.js';

const BASE = { kernel: '/img/vmlinuz', initrd: '/img/initramfs.cpio.gz' } as const;

/** The argv every spec starts with, for `memory` MiB, `cpus` CPUs and kernel command line `cmdline`. */
function common(cmdline: string, memory = 256, cpus = 1, accel = 'tcg'): string[] {
  return [
    '-nodefaults',
    '-no-user-config',
    '-machine',
    'q35,memory-backend=mem',
    '-object',
    `memory-backend-memfd,id=mem,size=${memory}M,share=on`,
    '-m',
    `${memory}M`,
    '-accel',
    accel,
    '-smp',
    String(cpus),
    '-kernel',
    '/img/vmlinuz',
    '-initrd',
    '/img/initramfs.cpio.gz',
    '-append',
    cmdline,
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
  ];
}

test('qemuArgs: minimal spec', () => {
  assert.deepEqual(qemuArgs(BASE), common('console=ttyS0 panic=-1 quiet'));
});

test('qemuArgs: memory, cpus, accel, name and kernel parameters', () => {
  const spec: VmSpec = { ...BASE, memoryMiB: 512, cpus: 2, accel: 'kvm', name: 'vm-a', append: ['avp.cmd="echo hi"', 'count=3'] };
  assert.deepEqual(qemuArgs(spec), ['-name', 'vm-a', ...common('console=ttyS0 panic=-1 quiet avp.cmd="echo hi" count=3', 512, 2, 'kvm')]);
});

test('qemuArgs: built-in virtio-rng and virtio-blk', () => {
  const spec: VmSpec = { ...BASE, devices: [{ kind: 'virtio-rng' }, { kind: 'virtio-blk', file: '/tmp/disk.img' }] };
  assert.deepEqual(qemuArgs(spec), [
    ...common('console=ttyS0 panic=-1 quiet'),
    '-device',
    'virtio-rng-pci,id=dev0',
    '-drive',
    'file=/tmp/disk.img,format=raw,if=none,id=drive1',
    '-device',
    'virtio-blk-pci,drive=drive1,id=dev1',
  ]);
});

test('qemuArgs: read-only virtio-blk', () => {
  const args = qemuArgs({ ...BASE, devices: [{ kind: 'virtio-blk', file: '/d.img', readOnly: true }] });
  assert.deepEqual(args.slice(-4), ['-drive', 'file=/d.img,format=raw,if=none,id=drive0,readonly=on', '-device', 'virtio-blk-pci,drive=drive0,id=dev0']);
});

test('qemuArgs: vhost-user rng, blk, net and vsock, attached as their kinds say (QEMU 7.2 quirks by default)', () => {
  const spec: VmSpec = {
    ...BASE,
    devices: [
      vhostUserDevice('rng', '/run/rng.sock'),
      vhostUserDevice('blk', '/run/blk.sock', { numQueues: 2 }),
      vhostUserDevice('net', '/run/net.sock', { mac: '52:54:00:AB:cd:01' }),
      vhostUserDevice('vsock', '/run/vsock.sock', { guestCid: 3 }),
    ],
  };
  assert.deepEqual(qemuArgs(spec), [
    ...common('console=ttyS0 panic=-1 quiet'),
    '-chardev',
    'socket,id=chr0,path=/run/rng.sock',
    '-device',
    'vhost-user-rng-pci,chardev=chr0,id=dev0',
    '-chardev',
    'socket,id=chr1,path=/run/blk.sock',
    '-device',
    'vhost-user-blk-pci,chardev=chr1,num-queues=2,id=dev1',
    '-chardev',
    'socket,id=chr2,path=/run/net.sock',
    '-netdev',
    'vhost-user,chardev=chr2,id=net2',
    '-device',
    'virtio-net-pci,netdev=net2,mac=52:54:00:ab:cd:01,romfile=,vectors=0,id=dev2',
    '-chardev',
    'socket,id=chr3,path=/run/vsock.sock',
    '-device',
    'vhost-user-vsock-pci,chardev=chr3,id=dev3',
  ]);
});

test('qemuArgs: vhost-user-vsock-pci gets no guest-cid (QEMU 7.2 has no such property; the back-end serves the CID)', () => {
  // Regression: `guest-cid=3` made QEMU 7.2 exit with "Property 'vhost-user-vsock-pci.guest-cid' not found".
  const args = qemuArgs({ ...BASE, devices: [vhostUserDevice('vsock', '/v.sock', { guestCid: 7 })] });
  assert.deepEqual(args.slice(-4), ['-chardev', 'socket,id=chr0,path=/v.sock', '-device', 'vhost-user-vsock-pci,chardev=chr0,id=dev0']);
});

test('qemuArgs: reconnect on vhost-user blk and net chardevs, host_mtu on vhost-user-net', () => {
  const spec: VmSpec = {
    ...BASE,
    devices: [
      vhostUserDevice('blk', '/r.sock', {}, { reconnect: 1 }),
      vhostUserDevice('net', '/n.sock', { mac: '52:54:00:00:00:01', mtu: 9000 }, { reconnect: 2 }),
    ],
  };
  assert.deepEqual(qemuArgs(spec).slice(-10), [
    '-chardev',
    'socket,id=chr0,path=/r.sock,reconnect=1',
    '-device',
    'vhost-user-blk-pci,chardev=chr0,num-queues=1,id=dev0',
    '-chardev',
    'socket,id=chr1,path=/n.sock,reconnect=2',
    '-netdev',
    'vhost-user,chardev=chr1,id=net1',
    '-device',
    'virtio-net-pci,netdev=net1,mac=52:54:00:00:00:01,host_mtu=9000,romfile=,vectors=0,id=dev1',
  ]);
});

test('qemuArgs: a back-end attached as a QEMU object the device names (virtio-crypto over cryptodev-vhost-user)', () => {
  const object = { type: 'cryptodev-vhost-user', deviceProp: 'cryptodev' };
  const args = qemuArgs({ ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'virtio-crypto-pci', socket: '/c,1.sock', object }] });
  assert.deepEqual(args.slice(-6), ['-chardev', 'socket,id=chr0,path=/c,,1.sock', '-object', 'cryptodev-vhost-user,id=obj0,chardev=chr0', '-device', 'virtio-crypto-pci,cryptodev=obj0,id=dev0']);
  assert.deepEqual(vhostUserDevice('crypto', '/c.sock').object, object, 'the crypto kind attaches this way');
  for (const bad of [{ type: 'Crypto Dev', deviceProp: 'cryptodev' }, { type: 'cryptodev-vhost-user', deviceProp: 'chardev' }]) {
    assert.throws(() => qemuArgs({ ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'virtio-crypto-pci', socket: '/c.sock', object: bad }] }), { message: /devices\[0\]\.object/ });
  }
});

test('qemuArgs: vhost-user-blk defaults to one queue', () => {
  const args = qemuArgs({ ...BASE, devices: [vhostUserDevice('blk', '/s')] });
  assert.equal(args.at(-1), 'vhost-user-blk-pci,chardev=chr0,num-queues=1,id=dev0');
});

test('qemuArgs: a version quirk applies only below its QEMU version (virtio-net vectors=0 on 7.2)', () => {
  const on = (qemuVersion: string) => qemuArgs({ ...BASE, devices: [vhostUserDevice('net', '/n', { mac: '52:54:00:00:00:01' }, { qemuVersion })] }).at(-1);
  assert.equal(on('7.2'), 'virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,romfile=,vectors=0,id=dev0');
  assert.equal(on('10.0'), 'virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,romfile=,id=dev0');
});

test('vhostUserDevice: options are checked against the kind (bad MAC, reserved CID, zero queues)', () => {
  for (const [kind, options, flag] of [
    ['net', { mac: '52:54:00:12:34' }, 'mac'],
    ['vsock', { guestCid: 2 }, 'guestCid'],
    ['vsock', { guestCid: 0xffffffff }, 'guestCid'],
    ['net', { mac: '52:54:00:00:00:01', mtu: 67 }, 'mtu'],
    ['blk', { numQueues: 0 }, 'numQueues'],
  ] as const) {
    assert.throws(() => vhostUserDevice(kind, '/s', options), (e: unknown) => hasCode(e, 'DEVICE_BAD_OPTION') && (e as Error).message.startsWith(`${flag}:`), `${kind} ${JSON.stringify(options)}`);
  }
  assert.throws(() => vhostUserDevice('hologram', '/s'), (e: unknown) => hasCode(e, 'DEVICE_UNKNOWN_KIND'));
});

test('qemuArgs: commas in option values are doubled, other paths are passed as they are', () => {
  const spec: VmSpec = {
    kernel: '/a,b/vmlinuz',
    initrd: '/a b/initrd',
    devices: [
      { kind: 'virtio-blk', file: '/x,y.img' },
      vhostUserDevice('rng', '/s,1.sock'),
    ],
  };
  const args = qemuArgs(spec);
  assert.equal(args[args.indexOf('-kernel') + 1], '/a,b/vmlinuz');
  assert.equal(args[args.indexOf('-initrd') + 1], '/a b/initrd');
  assert.ok(args.includes('file=/x,,y.img,format=raw,if=none,id=drive0'));
  assert.ok(args.includes('socket,id=chr1,path=/s,,1.sock'));
});

test('qemuArgs: the same spec gives the same argv (pure)', () => {
  const spec: VmSpec = { ...BASE, devices: [{ kind: 'virtio-rng' }] };
  assert.deepEqual(qemuArgs(spec), qemuArgs(spec));
});

const invalid: Array<[string, VmSpec, string]> = [
  ['memory not an integer', { ...BASE, memoryMiB: 1.5 }, 'memoryMiB'],
  ['memory too small', { ...BASE, memoryMiB: 8 }, 'memoryMiB'],
  ['no cpus', { ...BASE, cpus: 0 }, 'cpus'],
  ['empty kernel', { ...BASE, kernel: '' }, 'kernel'],
  ['newline in initrd', { ...BASE, initrd: 'a\nb' }, 'initrd'],
  ['parameter with a space', { ...BASE, append: ['a b'] }, 'append[0]'],
  ['empty parameter', { ...BASE, append: ['ok', ''] }, 'append[1]'],
  ['reconnect 0', { ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'vhost-user-blk-pci', socket: '/s', reconnect: 0 }] }, 'devices[0].reconnect'],
  ['bad device name', { ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'x,y', socket: '/s' }] }, 'devices[0].qemuDevice'],
  ['property id', { ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'vhost-user-rng-pci', socket: '/s', props: { id: 'x' } }] }, 'devices[0].props'],
  ['property with a newline', { ...BASE, devices: [{ kind: 'vhost-user', qemuDevice: 'vhost-user-rng-pci', socket: '/s', props: { a: 'x\ny' } }] }, 'devices[0].props.a'],
  ['empty socket', { ...BASE, devices: [{ kind: 'virtio-rng' }, { kind: 'vhost-user', qemuDevice: 'vhost-user-rng-pci', socket: '' }] }, 'devices[1].socket'],
  ['bad name', { ...BASE, name: 'a b' }, 'name'],
];

for (const [what, spec, field] of invalid) {
  test(`qemuArgs rejects ${what} naming field ${field}`, () => {
    assert.throws(
      () => qemuArgs(spec),
      (e: unknown) => hasCode(e, 'VM_SPEC_INVALID') && (e as { field?: string }).field === field,
    );
  });
}

test('qemuArgs rejects an unknown device kind from untyped input', () => {
  // A spec parsed from JSON is not checked by the compiler; the cast plays that caller.
  const spec = { ...BASE, devices: [{ kind: 'virtio-gpu' }] } as unknown as VmSpec;
  assert.throws(() => qemuArgs(spec), (e: unknown) => hasCode(e, 'VM_SPEC_INVALID'));
});

test('qemuArgs: a command line over the limit is refused (the guest would hang silently)', () => {
  const base = 'console=ttyS0 panic=-1 quiet'.length + 1;
  const fits = `x=${'a'.repeat(2047 - base - 2)}`;
  assert.equal(qemuArgs({ ...BASE, append: [fits] }).includes(`console=ttyS0 panic=-1 quiet ${fits}`), true);
  assert.throws(() => qemuArgs({ ...BASE, append: [`${fits}a`] }), (e: unknown) => hasCode(e, 'GUEST_CMDLINE_TOO_LONG'));
  assert.throws(() => qemuArgs({ ...BASE, append: ['x=12345'], cmdlineLimit: 30 }), (e: unknown) => hasCode(e, 'GUEST_CMDLINE_TOO_LONG'));
});

test('detectAccel: tcg by default, AVP_ACCEL forces, garbage is an error', async () => {
  assert.equal(await detectAccel({ env: {} }), 'tcg');
  assert.equal(await detectAccel({ env: { AVP_ACCEL: '' } }), 'tcg');
  assert.equal(await detectAccel({ env: { AVP_ACCEL: 'tcg' } }), 'tcg');
  assert.equal(await detectAccel({ env: { AVP_ACCEL: 'kvm' } }), 'kvm');
  await assert.rejects(detectAccel({ env: { AVP_ACCEL: 'hvf' } }), (e: unknown) => hasCode(e, 'ACCEL_INVALID'));
});

test('detectAccel: auto without /dev/kvm or without a probe image is tcg', async () => {
  assert.equal(await detectAccel({ env: { AVP_ACCEL: 'auto' }, kvmDevice: '/nonexistent/kvm' }), 'tcg');
  assert.equal(await detectAccel({ env: { AVP_ACCEL: 'auto' }, kvmDevice: '/dev/null' }), 'tcg');
});
