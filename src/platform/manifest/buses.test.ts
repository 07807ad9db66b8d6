// SPDX-License-Identifier: Apache-2.0
/**
 * CAN buses in the manifest: the rules (names, buses that exist, one slcan port per bus and VM,
 * filters, replay files), the plan (the bus back-end with its nodes and config, each VM's
 * virtio-serial controller with a virtconsole port per bus, reconnect for a restartable bus, the
 * run-directory layout) and the `avp canbus` command line a process-isolated bus runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest, planPlatform } from './index.js';
import { canbusArgv } from '../run/canbus-backend.js';

const IMAGE = { kernel: '/img/vmlinuz', initramfs: '/img/initramfs.cpio.gz' };

const MANIFEST = `
name: car
buses:
  - name: vehicle
    bitrate: 250000
    replay: { file: traces/speed.candump, loop: true }
    socketcan: vcan0
  - name: body
    log: false
    hostSocket: false
    isolation: process
    restart: on-failure
vms:
  - name: cluster
    can:
      - bus: vehicle
        receive: ["100:700", "12345678:1FFFFFFF"]
      - bus: body
  - name: ivi
    can:
      - bus: vehicle
        send: ["400:700"]
        rateLimit: 100
        rateBurst: 10
`;

function issues(text: string, exists = true): string[] {
  return parseManifest(text, { baseDir: '/m', fileExists: () => exists }).issues.map((i) => `${i.path}: ${i.message}`);
}

test('buses: rules across entries are checked with their paths', () => {
  const bad = `
name: car
buses:
  - name: vehicle
  - name: vehicle
vms:
  - name: a
    can:
      - bus: vehicle
      - bus: vehicle
        receive: ["1:7FF"]
      - bus: chassis
        rateBurst: 3
`;
  const got = issues(bad);
  assert.ok(got.includes("buses[1].name: duplicate bus name 'vehicle' (also buses[0].name)"), got.join('\n'));
  assert.ok(got.includes("vms[0].can[1].bus: VM 'a' already joins bus 'vehicle' (can[0])"), got.join('\n'));
  assert.ok(got.includes("vms[0].can[2].bus: unknown bus 'chassis'; buses: vehicle, vehicle"), got.join('\n'));
  assert.ok(got.includes('vms[0].can[2].rateBurst: rateBurst goes with rateLimit'), got.join('\n'));
  assert.deepEqual(issues('name: car\nbuses:\n  - name: b\nvms:\n  - name: a\n    can:\n      - bus: b\n        send: ["1:7FF", "xyz"]\n'), ['vms[0].can[0].send[1]: expected <id>:<mask> or <id>~<mask> in hex, e.g. "100:7FF"; got "xyz"']);
  assert.deepEqual(issues('name: car\nvms:\n  - name: a\n    can:\n      - bus: x\n'), ["vms[0].can[0].bus: unknown bus 'x': no buses are defined (add it under buses:)"]);
  assert.deepEqual(issues('name: car\nbuses:\n  - name: b\n    bitrate: 12\nvms:\n  - name: a\n'), ['buses[0].bitrate: expected an integer from 1000 to 10000000; got 12']);
  assert.deepEqual(issues('name: car\nbuses:\n  - name: b\n    speed: 1\nvms:\n  - name: a\n'), ["buses[0].speed: unknown key 'speed'; expected one of: name, bitrate, dataBitrate, log, replay, socketcan, hostSocket, isolation, restart"]);
  assert.deepEqual(issues(MANIFEST, false).filter((i) => i.startsWith('buses')), ['buses[0].replay.file: file not found: /m/traces/speed.candump']);
});

test('buses: the plan has one bus back-end per bus, its nodes in VM order, and a virtconsole port per bus in each VM', () => {
  const r = parseManifest(MANIFEST, { baseDir: '/m', fileExists: () => true });
  assert.deepEqual(r.issues, []);
  assert.ok(r.model !== undefined);
  const plan = planPlatform(r.model, { runDir: '/run/car', image: IMAGE });
  const vehicle = plan.backends.find((b) => b.id === 'canbus/vehicle');
  assert.ok(vehicle !== undefined);
  assert.deepEqual(
    { role: vehicle.role, kind: vehicle.kind, isolation: vehicle.isolation, restart: vehicle.restart, log: vehicle.log, vms: vehicle.vms, sockets: vehicle.ports.map((p) => [p.name, p.socket]) },
    {
      role: 'canbus',
      kind: 'canbus',
      isolation: 'thread',
      restart: 'no',
      log: '/run/car/_canbus/vehicle.log',
      vms: ['cluster', 'ivi'],
      sockets: [
        ['cluster/can-vehicle', '/run/car/cluster/can-vehicle.sock'],
        ['ivi/can-vehicle', '/run/car/ivi/can-vehicle.sock'],
      ],
    },
  );
  assert.deepEqual(vehicle.canbus, {
    name: 'vehicle',
    bitrate: 250_000,
    nodes: [
      { name: 'cluster', socket: '/run/car/cluster/can-vehicle.sock', receive: [{ id: 0x100, mask: 0x700, invert: false }, { id: 0x92345678, mask: 0x1fffffff, invert: false }], send: [] },
      { name: 'ivi', socket: '/run/car/ivi/can-vehicle.sock', receive: [], send: [{ id: 0x400, mask: 0x700, invert: false }], rate: { framesPerSecond: 100, burst: 10 } },
    ],
    hostSocket: '/run/car/_canbus/vehicle.sock',
    log: '/run/car/_canbus/vehicle.candump',
    replay: { file: '/m/traces/speed.candump', loop: true, start: 'all-open' },
    socketcan: 'vcan0',
  });
  const body = plan.backends.find((b) => b.id === 'canbus/body');
  assert.deepEqual(body?.canbus, { name: 'body', bitrate: 500_000, nodes: [{ name: 'cluster', socket: '/run/car/cluster/can-body.sock', receive: [], send: [] }] });
  assert.ok(plan.dirs.includes('/run/car/_canbus'));
  assert.ok(plan.hostSockets.includes('/run/car/_canbus/vehicle.sock'));
  assert.ok(plan.sockets.includes('/run/car/ivi/can-vehicle.sock'));
  const cluster = plan.vms.find((v) => v.name === 'cluster');
  assert.deepEqual(cluster?.backends, ['canbus/vehicle', 'canbus/body']);
  const argv = cluster?.argv ?? [];
  const tail = argv.slice(argv.indexOf('-no-reboot') + 1);
  assert.deepEqual(tail, [
    '-device',
    'virtio-serial-pci,id=dev0',
    '-chardev',
    'socket,id=chr0p0,path=/run/car/cluster/can-vehicle.sock',
    '-device',
    'virtconsole,chardev=chr0p0,bus=dev0.0,name=avp.can.vehicle,id=dev0p0',
    '-chardev',
    // The body bus restarts on failure: QEMU reconnects to it.
    'socket,id=chr0p1,path=/run/car/cluster/can-body.sock,reconnect=1',
    '-device',
    'virtconsole,chardev=chr0p1,bus=dev0.0,name=avp.can.body,id=dev0p1',
  ]);
});

test('buses: a process-isolated bus runs avp canbus with the same config', () => {
  const r = parseManifest(MANIFEST, { baseDir: '/m', fileExists: () => true });
  assert.ok(r.model !== undefined);
  const plan = planPlatform(r.model, { runDir: '/run/car', image: IMAGE });
  // Safe: the manifest has both buses.
  assert.deepEqual(canbusArgv(plan.backends.find((b) => b.id === 'canbus/vehicle')!), [
    'canbus',
    '--name',
    'vehicle',
    '--bitrate',
    '250000',
    '--node',
    'socket=/run/car/cluster/can-vehicle.sock,name=cluster,receive=100:700+12345678:1FFFFFFF',
    '--node',
    'socket=/run/car/ivi/can-vehicle.sock,name=ivi,send=400:700,rate=100:10',
    '--host-socket',
    '/run/car/_canbus/vehicle.sock',
    '--log',
    '/run/car/_canbus/vehicle.candump',
    '--replay',
    '/m/traces/speed.candump',
    '--replay-start',
    'all-open',
    '--replay-loop',
    '--socketcan',
    'vcan0',
  ]);
  assert.deepEqual(canbusArgv(plan.backends.find((b) => b.id === 'canbus/body')!), ['canbus', '--name', 'body', '--bitrate', '500000', '--node', 'socket=/run/car/cluster/can-body.sock,name=cluster']);
});
