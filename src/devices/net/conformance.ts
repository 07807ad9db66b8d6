// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-net's part of the conformance suite (VIRTIO 1.3 §5.1), written against the
 * transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe request (one valid Ethernet frame on transmitq1, returned with used length 0),
 * the wrong-direction request (a transmit chain whose only buffer is device-writable: nothing may
 * be written into it), and the net checks: the config layout of the offered features, transmit
 * chains in any descriptor arrangement, and hostile transmit chains (too short for the header, a
 * GSO type or NEEDS_CSUM that was not negotiated, a frame above the MTU), each of which must be
 * returned without a stray write while the device keeps serving.
 * Does not own: running checks or any transport.
 *
 * What is not checked here: the receive path. A conformance run drives one back-end port alone,
 * and the driver interface has no way to make a frame arrive at it; receive (MRG_RXBUF spanning,
 * num_buffers, buffer exhaustion) is covered by the switch's unit tests and the two-guest e2e test.
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { VIRTIO_F_INDIRECT_DESC, hasFeature } from '../../spec/virtio.js';
import {
  ETH_HLEN,
  NET_DEVICE_ID,
  NET_MAX_MTU,
  NET_MIN_MTU,
  NET_TX_QUEUE,
  VIRTIO_NET_CONFIG_OFF,
  VIRTIO_NET_CONFIG_SIZE,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_S_ANNOUNCE,
  VIRTIO_NET_S_LINK_UP,
} from './spec.js';

const LAYOUT = 'VIRTIO 1.3 §5.1.4.1 Device Requirements: Device configuration layout';
const TX = 'VIRTIO 1.3 §5.1.6.2 Packet Transmission';
const RING = 'VIRTIO 1.3 §2.7';

/** A frame to a locally administered unicast address, from another one, EtherType 0x88b5. */
function testFrame(payload: number): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + payload);
  f.set([0x02, 0x00, 0x5e, 0xc0, 0xff, 0x01], 0);
  f.set([0x02, 0x00, 0x5e, 0xc0, 0xff, 0x02], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  for (let i = ETH_HLEN; i < f.length; i++) f[i] = i & 0xff;
  return f;
}

/** The 12-byte header (flags, gso_type; the rest zero) followed by `frame`. */
function packet(frame: Uint8Array, flags = 0, gsoType = 0): Uint8Array {
  const p = new Uint8Array(VIRTIO_NET_HDR_SIZE + frame.length);
  p[0] = flags;
  p[1] = gsoType;
  p.set(frame, VIRTIO_NET_HDR_SIZE);
  return p;
}

/** Cuts `bytes` into device-readable buffers of the given sizes (the rest in the last one). */
function split(d: ConformanceDriver, bytes: Uint8Array, sizes: readonly number[]): DriverBuffer[] {
  const out: DriverBuffer[] = [];
  let off = 0;
  for (const n of sizes) {
    if (off >= bytes.length) break;
    out.push(d.out(bytes.subarray(off, Math.min(bytes.length, off + n))));
    off += n;
  }
  if (off < bytes.length) out.push(d.out(bytes.subarray(off)));
  return out;
}

/**
 * Sends one transmit chain and a valid frame after it. Returns the failure, or null when both were
 * returned with used length 0 and nothing outside a device-writable buffer changed.
 */
function transmit(d: ConformanceDriver, buffers: readonly DriverBuffer[]): CheckOutcome | null {
  const used = d.request(buffers, { queue: NET_TX_QUEUE });
  if (used.len !== 0) return fail(`transmit chain returned with used length ${used.len}: the device writes nothing into a transmit buffer (§2.7.8.2)`);
  const stray = d.strayWrites();
  if (stray !== null) return fail(`stray write: ${stray}`);
  const after = d.request([d.out(packet(testFrame(46)))], { queue: NET_TX_QUEUE });
  if (after.len !== 0) return fail(`the valid frame after it came back with used length ${after.len}`);
  return null;
}

const checks: DeviceCheck[] = [
  {
    id: 'net.config-layout',
    title: 'Config space: a unicast MAC with VIRTIO_NET_F_MAC, a defined status with VIRTIO_NET_F_STATUS, an MTU of 68-65535 with VIRTIO_NET_F_MTU',
    source: `${LAYOUT} ("The device MUST set mtu to between 68 and 65535 inclusive, if VIRTIO_NET_F_MTU is set"); §5.1.4 (status bits LINK_UP, ANNOUNCE)`,
    level: 'MUST',
    group: 'device',
    devices: ['net'],
    run(d) {
      d.start();
      if (!d.hasConfigAccess) return skip('the transport gives no config access');
      const c = d.readConfig(0, VIRTIO_NET_CONFIG_SIZE);
      if (c === null) return fail(`reading the ${VIRTIO_NET_CONFIG_SIZE}-byte config space failed`);
      const v = new DataView(c.buffer, c.byteOffset, c.byteLength);
      const notes: string[] = [];
      if (hasFeature(d.offeredFeatures, VIRTIO_NET_F_MAC)) {
        const mac = [...c.subarray(0, 6)];
        if ((mac[0] ?? 0) & 1) return fail(`mac ${mac.map((b) => b.toString(16).padStart(2, '0')).join(':')} is a multicast address`);
        if (mac.every((b) => b === 0)) return fail('mac is all zeros');
        notes.push(`mac ${mac.map((b) => b.toString(16).padStart(2, '0')).join(':')}`);
      }
      if (hasFeature(d.offeredFeatures, VIRTIO_NET_F_STATUS)) {
        const status = v.getUint16(VIRTIO_NET_CONFIG_OFF.status, true);
        if (status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE)) return fail(`status 0x${status.toString(16)} has undefined bits`);
        notes.push(`status ${status}`);
      }
      if (hasFeature(d.offeredFeatures, VIRTIO_NET_F_MTU)) {
        const mtu = v.getUint16(VIRTIO_NET_CONFIG_OFF.mtu, true);
        if (mtu < NET_MIN_MTU || mtu > NET_MAX_MTU) return fail(`mtu ${mtu} is outside 68..65535`);
        notes.push(`mtu ${mtu}`);
      }
      return pass(notes.join(', '));
    },
  },
  {
    id: 'net.tx-layouts',
    title: 'Transmit chains are taken whatever the descriptor layout: header and frame in one buffer, split inside the header, one byte per buffer, indirect',
    source: `${RING}.4 ("the device MUST NOT make assumptions about the particular arrangement of descriptors"); ${TX}`,
    level: 'MUST',
    group: 'device',
    devices: ['net'],
    run(d) {
      // 64 entries: the 1-byte layout takes 17 descriptors.
      d.start({ queueSize: 64 });
      const p = packet(testFrame(100));
      const layouts: Array<[string, DriverBuffer[], boolean]> = [
        ['one buffer', [d.out(p)], false],
        ['header split at byte 5', split(d, p, [5]), false],
        ['header and frame apart', split(d, p, [VIRTIO_NET_HDR_SIZE]), false],
        ['1-byte buffers for the first 16 bytes', split(d, p, Array<number>(16).fill(1)), false],
      ];
      if (hasFeature(d.features, VIRTIO_F_INDIRECT_DESC)) layouts.push(['indirect, split at 7 and 30', split(d, p, [7, 23]), true]);
      for (const [name, bufs, indirect] of layouts) {
        const used = d.request(bufs, { queue: NET_TX_QUEUE, indirect });
        if (used.len !== 0) return fail(`${name}: used length ${used.len}, expected 0 (nothing is written into a transmit chain)`);
      }
      const stray = d.strayWrites();
      return stray === null ? pass(`${layouts.length} layouts returned with used length 0`) : fail(`stray write: ${stray}`);
    },
  },
  ...(
    [
      ['net.tx-short', 'A transmit chain shorter than the 12-byte header', () => new Uint8Array(7), () => null],
      ['net.tx-no-ethernet-header', 'A transmit chain with the header and 10 bytes: no complete Ethernet header', () => new Uint8Array(VIRTIO_NET_HDR_SIZE + 10), () => null],
      [
        'net.tx-gso-not-negotiated',
        'A frame with gso_type TCPV4 although no TSO feature was negotiated',
        () => packet(testFrame(46), 0, VIRTIO_NET_HDR_GSO_TCPV4),
        (d: ConformanceDriver) => (hasFeature(d.features, VIRTIO_NET_F_HOST_TSO4) ? 'HOST_TSO4 is negotiated: the header is valid' : null),
      ],
      [
        'net.tx-csum-not-negotiated',
        'A frame with NEEDS_CSUM although VIRTIO_NET_F_CSUM was not negotiated',
        () => packet(testFrame(46), VIRTIO_NET_HDR_F_NEEDS_CSUM),
        (d: ConformanceDriver) => (hasFeature(d.features, VIRTIO_NET_F_CSUM) ? 'CSUM is negotiated: the header is valid' : null),
      ],
      [
        'net.tx-oversize',
        'A frame 1 byte longer than the MTU allows (MTU + 14 + 1 bytes)',
        (d: ConformanceDriver) => {
          const c = d.hasConfigAccess ? d.readConfig(VIRTIO_NET_CONFIG_OFF.mtu, 2) : null;
          const mtu = c === null ? 1500 : new DataView(c.buffer, c.byteOffset, 2).getUint16(0, true);
          return packet(testFrame(mtu + 1));
        },
        (d: ConformanceDriver) => (hasFeature(d.offeredFeatures, VIRTIO_NET_F_MTU) ? null : 'VIRTIO_NET_F_MTU is not offered: no MTU to exceed'),
      ],
    ] as const
  ).map(
    ([id, title, bytes, skipWhy]): DeviceCheck => ({
      id,
      title: `${title} is returned without a stray write, and the device keeps transmitting`,
      source: `${TX}.1 Driver Requirements (a driver that breaks them is hostile); DESIGN.md "Guest input is hostile"`,
      level: 'MUST',
      group: 'hostile',
      devices: ['net'],
      run(d) {
        d.start();
        const why = skipWhy(d);
        if (why !== null) return skip(why);
        return transmit(d, [d.out(bytes(d))]) ?? reject('returned with used length 0 (dropped); a valid frame after it was taken');
      },
    }),
  ),
];

export const netConformance: DeviceConformance = {
  device: 'net',
  deviceId: NET_DEVICE_ID,
  configSize: VIRTIO_NET_CONFIG_SIZE,
  probeQueue: NET_TX_QUEUE,
  probe(d) {
    return {
      buffers: [d.out(packet(testFrame(46)))],
      verify: (used) => (used.len === 0 ? null : `transmit chain returned with used length ${used.len}, expected 0`),
    };
  },
  wrongDirection(d) {
    // A transmit chain is device-readable only (§5.1.6.2); a device-writable buffer there carries no frame.
    const buf = d.in(64, 0xee);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('the transmit chain with only a device-writable buffer was not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a transmit chain: the device wrote into it`);
        return pass('returned with used length 0 and left alone');
      },
    };
  },
  checks,
};
