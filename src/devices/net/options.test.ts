// SPDX-License-Identifier: Apache-2.0
/** Building switches from plain options: parsing, grouping, conflicts, the uplink capability. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeUplink } from './testing.js';
import { createNetGroup, parsePortOptions } from './options.js';

test('net options: rate and burst take BYTES[:PACKETS] with k/M/G suffixes; 0 or - means none', () => {
  assert.deepEqual(parsePortOptions({ rate: '125k' }), { shaping: { bytesPerSec: 125_000 } });
  assert.deepEqual(parsePortOptions({ rate: '1.5M:1000', burst: '64k:10', ratePolicy: 'drop' }), {
    shaping: { bytesPerSec: 1_500_000, packetsPerSec: 1000, burstBytes: 64_000, burstPackets: 10, policy: 'drop' },
  });
  assert.deepEqual(parsePortOptions({ rate: '-:500' }), { shaping: { packetsPerSec: 500 } });
  assert.deepEqual(parsePortOptions({ rate: '0' }), {});
  assert.deepEqual(parsePortOptions({ mac: '52:54:00:00:00:01', priority: '5', link: 'down', name: 'x' }), { name: 'x', mac: '52:54:00:00:00:01', priority: 5, linkUp: false });
});

test('net options: bad values name the option', () => {
  assert.throws(() => parsePortOptions({ rate: 'fast' }), { code: 'NET_BAD_OPTION', message: /--rate must be/ });
  assert.throws(() => parsePortOptions({ rate: '1:2:3' }), { code: 'NET_BAD_OPTION' });
  assert.throws(() => parsePortOptions({ priority: 8 }), { code: 'NET_BAD_OPTION', message: /--priority must be an integer from 0 to 7/ });
  assert.throws(() => parsePortOptions({ link: 'sideways' }), { code: 'NET_BAD_OPTION', message: /--link/ });
  assert.throws(() => parsePortOptions({ burst: '10k' }), { code: 'NET_BAD_OPTION', message: /only together with --rate/ });
  assert.throws(() => parsePortOptions({ rate: '1k', ratePolicy: 'maybe' }), { code: 'NET_BAD_OPTION', message: /--rate-policy/ });
  assert.throws(() => createNetGroup([{ mac: '01:00:00:00:00:01' }]), { code: 'NET_BAD_OPTION', message: /unicast/ });
  assert.throws(() => createNetGroup([{ mac: 'nope' }]), { code: 'NET_BAD_OPTION', message: /MAC must look like/ });
  assert.throws(() => createNetGroup([{ mtu: '67' }]), { code: 'NET_BAD_OPTION', message: /--mtu must be an integer from 68 to 65535/ });
  assert.throws(() => createNetGroup([{ name: 'a' }, { name: 'a' }]), { code: 'NET_BAD_OPTION', message: /two ports are named a/ });
});

test('net options: ports of one switch share it; switch-wide options must agree; switch names split groups', () => {
  const ports = createNetGroup([{ mtu: 9000 }, {}, { switch: 'other' }]);
  assert.equal(ports.length, 3);
  assert.equal(ports[0]?.metrics().switch.mtu, 9000);
  assert.equal(ports[1]?.metrics().switch.mtu, 9000);
  assert.equal(ports[1]?.index, 1);
  assert.equal(ports[2]?.metrics().switch.mtu, 1500);
  assert.equal(ports[2]?.metrics().switch.name, 'other');
  assert.equal(ports[2]?.index, 0);
  assert.throws(() => createNetGroup([{ mtu: 9000 }, { mtu: 1500 }]), { code: 'NET_CONFLICTING_OPTION', message: /ports disagree on --mtu/ });
});

test('net options: an uplink needs the openTap capability and is opened at once', () => {
  assert.throws(() => createNetGroup([{ uplinkTap: 'tap0' }]), { code: 'NET_UPLINK_UNAVAILABLE' });
  assert.throws(
    () => createNetGroup([{ uplinkTap: 'tap0' }], { openTap: () => { throw new Error('EPERM'); } }),
    { code: 'NET_UPLINK_UNAVAILABLE', message: '--uplink-tap tap0: EPERM' },
  );
  const up = new FakeUplink('tap0');
  const ports = createNetGroup([{ uplinkTap: 'tap0' }], { openTap: () => up });
  assert.equal(ports[0]?.metrics().switch.uplink?.name, 'tap0');
  const closed = new FakeUplink('tap1');
  assert.throws(() => createNetGroup([{ uplinkTap: 'tap1', mac: 'nope' }], { openTap: () => closed }), { code: 'NET_BAD_OPTION' });
  assert.equal(closed.closed, true, 'the TAP is closed again when a port is refused');
});
