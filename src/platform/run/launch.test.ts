// SPDX-License-Identifier: Apache-2.0
/**
 * Back-end launching, the parts without processes: the `avp serve` argv of a device back-end, the
 * `avp switch` / `avp serve vsock --vm` argv of shared back-ends, and the reasons a back-end is not
 * available in this build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findKind } from '../../devices/registry.js';
import { hasCode } from '../../errors.js';
import { parseManifest } from '../manifest/load.js';
import { planPlatform, type BackendPlan } from '../manifest/plan.js';
import { SHARED_PROCESS_COMMANDS, processCreatesSockets, serveArgv, unavailableReason } from './launch.js';

function plan(kind: string, options: Record<string, unknown>, extra: Partial<BackendPlan> = {}): BackendPlan {
  return {
    id: `a/${kind}`,
    role: 'device',
    // Safe for these tests: kinds outside the manifest's list stand for device kinds a build lacks.
    kind: kind as BackendPlan['kind'],
    path: 'vms[0].devices[0]',
    isolation: 'process',
    restart: 'no',
    log: '/r/a.log',
    ports: [{ name: `a/${kind}`, vm: 'a', device: kind, socket: `/r/a/${kind}.sock`, spec: { kind, options } }],
    vms: ['a'],
    ...extra,
  };
}

test('serveArgv: options become the kind’s flags; true is a bare flag, false is left out; sealed memory is required', () => {
  assert.deepEqual(serveArgv(plan('rng', { maxBytes: 4096 })), ['serve', 'rng', '--fd', '3', '--max-bytes', '4096', '--require-sealed-memory']);
  assert.deepEqual(serveArgv(plan('blk', { image: '/d.img', readOnly: true, serial: 'S 1', numQueues: 2 })), [
    'serve',
    'blk',
    '--fd',
    '3',
    '--image',
    '/d.img',
    '--read-only',
    '--serial',
    'S 1',
    '--num-queues',
    '2',
    '--require-sealed-memory',
  ]);
  assert.deepEqual(serveArgv(plan('blk', { image: '/d.img', readOnly: false })), ['serve', 'blk', '--fd', '3', '--image', '/d.img', '--require-sealed-memory']);
});

test('serveArgv: an option without a flag is refused, naming it', () => {
  assert.throws(
    () => serveArgv(plan('rng', { colour: 'red' })),
    (e: unknown) => hasCode(e, 'BACKEND_START_FAILED') && /avp serve rng has no --colour option for 'colour'/.test((e as Error).message),
  );
});

test('serveArgv: lists of scalars are joined with commas', { skip: findKind('vsock') === undefined ? 'no vsock device kind in this build' : false }, () => {
  assert.deepEqual(serveArgv(plan('vsock', { guestCid: 3, udsPath: '/r/v', allowPeer: [4, 5] })), [
    'serve',
    'vsock',
    '--fd',
    '3',
    '--guest-cid',
    '3',
    '--uds-path',
    '/r/v',
    '--allow-peer',
    '4,5',
    '--require-sealed-memory',
  ]);
});

test('unavailableReason: a kind the registry lacks is "not available in this build"', () => {
  assert.equal(
    unavailableReason(plan('hologram', {}, { isolation: 'thread' })),
    "hologram back-ends are not available in this build (there is no 'hologram' device kind in the device registry yet); avp validate and avp qemu-args accept them",
  );
  assert.equal(unavailableReason(plan('rng', {}, { isolation: 'thread' })), undefined);
  assert.equal(unavailableReason(plan('rng', {})), undefined, 'rng as a process: avp serve rng');
});

test('unavailableReason: switches need the net kind (thread) and avp switch (process)', () => {
  const sw = plan('net', { switch: 'lan' }, { id: 'switch/lan', role: 'switch' });
  for (const isolation of ['thread', 'process'] as const) {
    const reason = unavailableReason({ ...sw, isolation });
    if (findKind('net') === undefined) assert.match(reason ?? '', /^virtio-net switches are not available in this build/);
    else assert.equal(reason, undefined);
  }
});

test('SHARED_PROCESS_COMMANDS: avp switch and avp serve vsock --vm for the cockpit example', () => {
  const text = readFileSync(fileURLToPath(new URL('../../../examples/cockpit.yaml', import.meta.url)), 'utf8');
  const r = parseManifest(text, { baseDir: '/m', fileExists: () => true });
  assert.ok(r.model !== undefined);
  const p = planPlatform(r.model, { runDir: '/r', image: { kernel: '/k', initramfs: '/i' } });
  const sw = p.backends.find((b) => b.role === 'switch');
  const vsock = p.backends.find((b) => b.role === 'vsock-group');
  assert.ok(sw !== undefined && vsock !== undefined);
  assert.deepEqual(SHARED_PROCESS_COMMANDS.switch?.argv(sw), [
    'switch',
    '--port',
    'socket=/r/cluster/net.sock,name=cluster/net,mac=52:54:00:00:00:02,priority=7',
    '--port',
    'socket=/r/infotainment/net.sock,name=infotainment/net,mac=52:54:00:00:00:01,priority=0,rate=12500000:20000',
    '--mtu',
    '1500',
    '--require-sealed-memory',
  ]);
  assert.deepEqual(SHARED_PROCESS_COMMANDS['vsock-group']?.argv(vsock), [
    'serve',
    'vsock',
    '--vm',
    'socket=/r/cluster/vsock.sock,cid=4,uds=/r/cluster/vsock.vsock,allow=3',
    '--vm',
    'socket=/r/infotainment/vsock.sock,cid=3,uds=/r/infotainment/vsock.vsock,allow=4',
    '--require-sealed-memory',
  ]);
  assert.deepEqual([processCreatesSockets(sw), processCreatesSockets(vsock), processCreatesSockets({ ...sw, isolation: 'thread' })], [true, true, false]);
  assert.deepEqual(vsock.ports.map((port) => SHARED_PROCESS_COMMANDS['vsock-group']?.portName(port)), ['vsock-4', 'vsock-3']);
});

test('unavailableReason: a device process whose options have no avp serve flag', () => {
  assert.match(unavailableReason(plan('rng', { colour: 'red' })) ?? '', /^isolation: process is not available for this device: .*no --colour option/);
});
