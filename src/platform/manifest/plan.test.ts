// SPDX-License-Identifier: Apache-2.0
/**
 * planPlatform: exact QEMU argv arrays for both examples (written out here, with the guest
 * scripts base64-encoded independently from the raw YAML), the back-ends and their options,
 * socket and log paths, reconnect for restartable back-ends, vsock groups, and the errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { hasCode } from '../../errors.js';
import { commandLine, defaultRunDir, parseManifest, planPlatform, type PlatformModel } from './index.js';
import { vsockGroups } from './plan.js';

const IMAGE = { kernel: '/img/vmlinuz', initramfs: '/img/initramfs.cpio.gz' };
const RUN = '/run/avp';

function example(name: string): { text: string; raw: { vms: Array<{ boot: { script: string } }> } } {
  const text = readFileSync(fileURLToPath(new URL(`../../../examples/${name}.yaml`, import.meta.url)), 'utf8');
  // Parsed with yaml alone (not our loader) so that the expected scripts do not come from the code under test.
  return { text, raw: parse(text) as { vms: Array<{ boot: { script: string } }> } };
}

function model(text: string): PlatformModel {
  const r = parseManifest(text, { baseDir: '/m', fileExists: () => true });
  assert.deepEqual(r.issues, []);
  assert.ok(r.model !== undefined);
  return r.model;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** The argv every built-in-image VM starts with. */
function head(name: string, memory: number, script: string): string[] {
  return [
    '-name',
    name,
    '-nodefaults',
    '-no-user-config',
    '-machine',
    'q35,memory-backend=mem',
    '-object',
    `memory-backend-memfd,id=mem,size=${memory}M,share=on`,
    '-m',
    `${memory}M`,
    '-accel',
    'tcg',
    '-smp',
    '1',
    '-kernel',
    '/img/vmlinuz',
    '-initrd',
    '/img/initramfs.cpio.gz',
    '-append',
    `console=ttyS0 panic=-1 quiet avp.script=${b64(script)}`,
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
  ];
}

test('examples/minimal.yaml: QEMU argv', () => {
  const { text, raw } = example('minimal');
  const plan = planPlatform(model(text), { runDir: RUN, image: IMAGE });
  assert.equal(plan.vms.length, 1);
  assert.deepEqual(plan.vms[0]?.argv, [
    ...head('guest', 256, raw.vms[0]?.boot.script ?? ''),
    '-chardev',
    'socket,id=chr0,path=/run/avp/guest/rng.sock',
    '-device',
    'vhost-user-rng-pci,chardev=chr0,id=dev0',
    '-chardev',
    'socket,id=chr1,path=/run/avp/guest/blk.sock',
    '-device',
    'vhost-user-blk-pci,chardev=chr1,num-queues=1,id=dev1',
  ]);
});

test('examples/minimal.yaml: back-ends, disks, logs', () => {
  const plan = planPlatform(model(example('minimal').text), { runDir: RUN, image: IMAGE });
  assert.deepEqual(
    plan.backends.map((b) => [b.id, b.role, b.isolation, b.restart, b.log, b.ports.map((p) => [p.name, p.socket, p.spec])]),
    [
      ['guest/rng', 'device', 'shared', 'no', '/run/avp/guest/rng.log', [['guest/rng', '/run/avp/guest/rng.sock', { kind: 'rng', options: {} }]]],
      [
        'guest/blk',
        'device',
        'shared',
        'no',
        '/run/avp/guest/blk.log',
        [['guest/blk', '/run/avp/guest/blk.sock', { kind: 'blk', options: { image: '/run/avp/guest/blk.img', serial: 'AVP-MINIMAL' } }]],
      ],
    ],
  );
  assert.deepEqual(plan.disks, [{ path: '/run/avp/guest/blk.img', sizeBytes: 64 << 20, owner: 'vms[0].devices[1]' }]);
  assert.deepEqual(plan.sockets, ['/run/avp/guest/rng.sock', '/run/avp/guest/blk.sock']);
  assert.deepEqual(plan.dirs, ['/run/avp', '/run/avp/guest']);
  assert.equal(plan.vms[0]?.consoleLog, '/run/avp/guest/console.log');
  assert.equal(plan.vms[0]?.ready, 'AVP-GUEST: minimal platform up');
  assert.equal(plan.runLog, '/run/avp/run.log');
});

test('examples/cockpit.yaml: QEMU argv of both VMs', () => {
  const { text, raw } = example('cockpit');
  const plan = planPlatform(model(text), { runDir: RUN, image: IMAGE });
  const i2c = ['-chardev', 'socket,id=chr4,path=/run/avp/cluster/i2c.sock', '-device', 'vhost-user-i2c-pci,chardev=chr4,id=dev4'];
  const devices = (vm: string, mac: string): string[] => [
    '-chardev',
    `socket,id=chr0,path=/run/avp/${vm}/rng.sock`,
    '-device',
    'vhost-user-rng-pci,chardev=chr0,id=dev0',
    '-chardev',
    `socket,id=chr1,path=/run/avp/${vm}/blk.sock`,
    '-device',
    'vhost-user-blk-pci,chardev=chr1,num-queues=1,id=dev1',
    '-chardev',
    `socket,id=chr2,path=/run/avp/${vm}/net.sock,reconnect=1`,
    '-netdev',
    'vhost-user,chardev=chr2,id=net2',
    '-device',
    `virtio-net-pci,netdev=net2,mac=${mac},host_mtu=1500,romfile=,vectors=0,id=dev2`,
    '-chardev',
    `socket,id=chr3,path=/run/avp/${vm}/vsock.sock`,
    '-device',
    'vhost-user-vsock-pci,chardev=chr3,id=dev3',
  ];
  const screen = (vm: string, w: number, h: number, n: number): string[] => ['-chardev', `socket,id=chr${n},path=/run/avp/${vm}/screen.sock`, '-device', `vhost-user-gpu-pci,chardev=chr${n},max_outputs=1,xres=${w},yres=${h},edid=on,id=dev${n}`];
  const touch = ['-chardev', 'socket,id=chr7,path=/run/avp/infotainment/touch.sock', '-device', 'vhost-user-input-pci,chardev=chr7,id=dev7'];
  assert.deepEqual(
    plan.vms.map((v) => v.name),
    ['cluster', 'infotainment'],
  );
  // The cluster joins the CAN bus on a virtio console port; the infotainment VM has the chime disk and sound.
  const can = ['-device', 'virtio-serial-pci,id=dev6', '-chardev', 'socket,id=chr6p0,path=/run/avp/cluster/can-vehicle.sock', '-device', 'virtconsole,chardev=chr6p0,bus=dev6.0,name=avp.can.vehicle,id=dev6p0'];
  const chimeAndSound = [
    '-chardev',
    'socket,id=chr4,path=/run/avp/infotainment/chime.sock',
    '-device',
    'vhost-user-blk-pci,chardev=chr4,num-queues=1,id=dev4',
    '-chardev',
    'socket,id=chr5,path=/run/avp/infotainment/sound.sock',
    '-device',
    'vhost-user-snd-pci,chardev=chr5,id=dev5',
  ];
  assert.deepEqual(plan.vms[0]?.argv, [...head('cluster', 256, raw.vms[0]?.boot.script ?? ''), ...devices('cluster', '52:54:00:00:00:02'), ...i2c, ...screen('cluster', 1280, 480, 5), ...can]);
  assert.deepEqual(plan.vms[1]?.argv, [...head('infotainment', 384, raw.vms[1]?.boot.script ?? ''), ...devices('infotainment', '52:54:00:00:00:01'), ...chimeAndSound, ...screen('infotainment', 1024, 600, 6), ...touch]);
});

test('examples/cockpit.yaml: one switch for both net ports, one vsock back-end for the two peers', () => {
  const plan = planPlatform(model(example('cockpit').text), { runDir: RUN, image: IMAGE });
  assert.deepEqual(
    plan.backends.map((b) => [b.id, b.role, b.vms]),
    [
      ['cluster/rng', 'device', ['cluster']],
      ['cluster/blk', 'device', ['cluster']],
      ['vsock/cluster+infotainment', 'vsock-group', ['cluster', 'infotainment']],
      ['cluster/i2c', 'device', ['cluster']],
      ['cluster/screen', 'device', ['cluster']],
      ['infotainment/rng', 'device', ['infotainment']],
      ['infotainment/blk', 'device', ['infotainment']],
      ['infotainment/chime', 'device', ['infotainment']],
      ['infotainment/sound', 'device', ['infotainment']],
      ['infotainment/screen', 'device', ['infotainment']],
      ['infotainment/touch', 'device', ['infotainment']],
      ['switch/backbone', 'switch', ['cluster', 'infotainment']],
      ['canbus/vehicle', 'canbus', ['cluster']],
    ],
  );
  const sw = plan.backends.find((b) => b.id === 'switch/backbone');
  assert.equal(sw?.log, '/run/avp/_switch/backbone.log');
  assert.deepEqual(
    sw?.ports.map((p) => [p.socket, p.spec]),
    [
      ['/run/avp/cluster/net.sock', { kind: 'net', options: { switch: 'backbone', name: 'cluster/net', mac: '52:54:00:00:00:02', priority: 7, mtu: 1500 } }],
      [
        '/run/avp/infotainment/net.sock',
        { kind: 'net', options: { switch: 'backbone', name: 'infotainment/net', mac: '52:54:00:00:00:01', priority: 0, rate: '12500000:20000', mtu: 1500 } },
      ],
    ],
  );
  const vsock = plan.backends.find((b) => b.role === 'vsock-group');
  assert.deepEqual(
    vsock?.ports.map((p) => [p.socket, p.spec]),
    [
      ['/run/avp/cluster/vsock.sock', { kind: 'vsock', options: { guestCid: 4, udsPath: '/run/avp/cluster/vsock.vsock', allowPeer: [3] } }],
      ['/run/avp/infotainment/vsock.sock', { kind: 'vsock', options: { guestCid: 3, udsPath: '/run/avp/infotainment/vsock.vsock', allowPeer: [4] } }],
    ],
  );
  assert.deepEqual(plan.hostSockets, ['/run/avp/cluster/vsock.vsock', '/run/avp/cluster/screen.ctl', '/run/avp/infotainment/vsock.vsock', '/run/avp/infotainment/screen.ctl', '/run/avp/infotainment/touch.ctl', '/run/avp/_canbus/vehicle.sock']);
  assert.deepEqual(plan.backends.find((b) => b.id === 'cluster/screen')?.ports[0]?.spec, {
    kind: 'gpu',
    options: { width: 1280, height: 480, snapshotDir: '/run/avp/cluster', snapshotPrefix: 'screen', controlSocket: '/run/avp/cluster/screen.ctl' },
  });
  assert.deepEqual(plan.dirs, ['/run/avp', '/run/avp/cluster', '/run/avp/infotainment', '/run/avp/_switch', '/run/avp/_vsock', '/run/avp/_canbus']);
  assert.deepEqual(
    plan.vms.map((v) => v.backends),
    [
      ['cluster/rng', 'cluster/blk', 'switch/backbone', 'vsock/cluster+infotainment', 'cluster/i2c', 'cluster/screen', 'canbus/vehicle'],
      ['infotainment/rng', 'infotainment/blk', 'switch/backbone', 'vsock/cluster+infotainment', 'infotainment/chime', 'infotainment/sound', 'infotainment/screen', 'infotainment/touch'],
    ],
  );
});

test('restart: on-failure makes QEMU reconnect; isolation and restart reach the back-end plan', () => {
  const m = model('name: p\nvms:\n  - name: a\n    devices:\n      - {kind: rng, isolation: process}\n      - {kind: blk, size: 1M, readOnly: true, numQueues: 2, restart: on-failure}\n');
  const plan = planPlatform(m, { runDir: RUN, image: IMAGE, accel: 'kvm' });
  const argv = plan.vms[0]?.argv ?? [];
  assert.deepEqual(argv.slice(-8), [
    '-chardev',
    'socket,id=chr0,path=/run/avp/a/rng.sock',
    '-device',
    'vhost-user-rng-pci,chardev=chr0,id=dev0',
    '-chardev',
    'socket,id=chr1,path=/run/avp/a/blk.sock,reconnect=1',
    '-device',
    'vhost-user-blk-pci,chardev=chr1,num-queues=2,id=dev1',
  ]);
  assert.equal(argv[argv.indexOf('-accel') + 1], 'kvm');
  assert.deepEqual(
    plan.backends.map((b) => [b.id, b.isolation, b.restart, b.ports[0]?.spec.options]),
    [
      ['a/rng', 'process', 'no', {}],
      ['a/blk', 'shared', 'on-failure', { image: '/run/avp/a/blk.img', readOnly: true, numQueues: 2 }],
    ],
  );
});

test('own kernel: its paths, its parameters, no script', () => {
  const m = model("name: p\nvms:\n  - name: a\n    memory: 512\n    cpus: 2\n    boot: {kernel: /k/bz, initrd: /k/rd, cmdline: 'root=/dev/vda rw', ready: 'login:'}\n");
  const plan = planPlatform(m, { runDir: RUN });
  const argv = plan.vms[0]?.argv ?? [];
  assert.deepEqual(
    [argv[argv.indexOf('-kernel') + 1], argv[argv.indexOf('-initrd') + 1], argv[argv.indexOf('-append') + 1], argv[argv.indexOf('-smp') + 1], argv[argv.indexOf('-m') + 1]],
    ['/k/bz', '/k/rd', 'console=ttyS0 panic=-1 quiet root=/dev/vda rw', '2', '512M'],
  );
  assert.equal(plan.vms[0]?.builtin, false);
});

test('a socket path longer than a Unix address holds is refused, naming the fix', () => {
  const m = model('name: p\nvms:\n  - name: a\n    devices: [{kind: rng}]\n');
  assert.throws(
    () => planPlatform(m, { runDir: `/${'x'.repeat(100)}`, image: IMAGE }),
    (e: unknown) => hasCode(e, 'PLATFORM_PLAN_INVALID') && /is 112 bytes, over the 107 .*--run-dir/.test((e as Error).message),
  );
});

test('the built-in image must be given; the run directory must be absolute', () => {
  const m = model('name: p\nvms:\n  - name: a\n');
  assert.throws(() => planPlatform(m, { runDir: RUN }), (e: unknown) => hasCode(e, 'PLATFORM_PLAN_INVALID'));
  assert.throws(() => planPlatform(m, { runDir: 'rel', image: IMAGE }), (e: unknown) => hasCode(e, 'PLATFORM_PLAN_INVALID'));
});

test('vsockGroups: the connected parts of allowedPeers', () => {
  const m = model(`name: p
vms:
  - {name: a, devices: [{kind: vsock, cid: 3, allowedPeers: [b]}]}
  - {name: b, devices: [{kind: vsock, cid: 4, allowedPeers: [a, c]}]}
  - {name: c, devices: [{kind: vsock, cid: 5, allowedPeers: [b]}]}
  - {name: d, devices: [{kind: vsock, cid: 6}]}
  - {name: e}
`);
  assert.deepEqual(Object.fromEntries(vsockGroups(m)), { a: ['a', 'b', 'c'], b: ['a', 'b', 'c'], c: ['a', 'b', 'c'], d: ['d'] });
  const plan = planPlatform(m, { runDir: RUN, image: IMAGE });
  assert.deepEqual(
    plan.backends.map((b) => b.id),
    ['vsock/a+b+c', 'd/vsock'],
  );
});

test('commandLine quotes what the shell would split or expand', () => {
  assert.equal(commandLine('qemu', ['-append', 'console=ttyS0 quiet', '-name', 'a', 'romfile=', "it's"]), "qemu -append 'console=ttyS0 quiet' -name a romfile= 'it'\\''s'");
});

test('defaultRunDir: .avp/runs/<platform>-<UTC time>', () => {
  assert.equal(defaultRunDir('cockpit', '/w', new Date('2025-01-02T03:04:05.678Z')), '/w/.avp/runs/cockpit-20250102-030405');
});

test('ring: packed asks QEMU for packed virtqueues (packed=on) on that device only, a switch port included; a bad layout is named', () => {
  const text = `name: p
switches: [{name: lan}]
vms:
  - name: a
    devices:
      - {kind: rng, ring: packed}
      - {kind: blk, size: 1M}
      - {kind: net, switch: lan, ring: packed}
`;
  const argv = planPlatform(model(text), { runDir: RUN, image: IMAGE }).vms[0]?.argv ?? [];
  const device = (qemuDevice: string): string => argv.find((a) => a.startsWith(`${qemuDevice},`)) ?? '';
  assert.match(device('vhost-user-rng-pci'), /,packed=on(,|$)/);
  assert.doesNotMatch(device('vhost-user-blk-pci'), /packed/);
  assert.match(device('virtio-net-pci'), /,packed=on(,|$)/);
  const bad = parseManifest(text.replace('ring: packed}', 'ring: ring}'), { baseDir: '/m', fileExists: () => true });
  assert.deepEqual(
    bad.issues.map((i) => [i.path, i.message]),
    [['vms[0].devices[0].ring', `expected 'split' or 'packed'; got "ring"`]],
  );
});
