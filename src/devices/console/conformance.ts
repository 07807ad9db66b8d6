// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-console's part of the conformance suite (VIRTIO 1.3 §5.3), written against the
 * transport-agnostic `ConformanceDriver`, replaying the multiport sequence of Linux's
 * virtio_console (device-wave-2.md §8c): DEVICE_READY → PORT_ADD per port → PORT_READY →
 * CONSOLE_PORT / PORT_NAME / PORT_OPEN.
 *
 * Owns: the probe (bytes on port 0's transmitq, used length 0), the wrong-direction request (a
 * device-writable buffer on the transmitq, left alone), and the console checks: config, the
 * multiport handshake, PORT_READY answers, a control message for a port that does not exist, a
 * short control message, and emergency write before anything else. Messages are built here.
 * Does not own: running checks, transports.
 */
import { fail, pass, skip, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';

const SPEC = 'VIRTIO 1.3 §5.3';
const F_MULTIPORT = 1n << 1n;
const F_EMERG_WRITE = 1n << 2n;
const [RX0, TX0, CRX, CTX] = [0, 1, 2, 3];
const EV = { DEVICE_READY: 0, DEVICE_ADD: 1, PORT_READY: 3, CONSOLE_PORT: 4, PORT_OPEN: 6, PORT_NAME: 7 } as const;

const msg = (id: number, event: number, value: number) => Uint8Array.of(id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24, event & 0xff, event >> 8, value & 0xff, value >> 8);

/** Sends a control message on the control transmitq. */
function send(d: ConformanceDriver, id: number, event: number, value: number): void {
  d.request([d.out(msg(id, event, value))], { queue: CTX });
}

/** Posts one control receive buffer and decodes the message the device puts there. */
function receive(d: ConformanceDriver): { id: number; event: number; value: number; extra: string } | string {
  const buf = d.in(128, 0xee);
  const used = d.request([buf], { queue: CRX });
  if (used.len < 8 || used.len > 128) return `control message of ${used.len} bytes`;
  const b = d.bytes(buf);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { id: v.getUint32(0, true), event: v.getUint16(4, true), value: v.getUint16(6, true), extra: new TextDecoder().decode(b.subarray(8, used.len)) };
}

function maxPorts(d: ConformanceDriver): number {
  const c = d.hasConfigAccess ? d.readConfig(4, 4) : null;
  return c === null ? 1 : new DataView(c.buffer, c.byteOffset, 4).getUint32(0, true);
}

/** DEVICE_READY, then the PORT_ADDs; returns the port ids added, or what went wrong. */
function handshake(d: ConformanceDriver): number[] | string {
  send(d, 0xffffffff, EV.DEVICE_READY, 1);
  const n = maxPorts(d);
  const ids: number[] = [];
  for (let i = 0; i < Math.min(n, 32); i++) {
    const m = receive(d);
    if (typeof m === 'string') return m;
    if (m.event !== EV.DEVICE_ADD || m.id >= n || ids.includes(m.id)) return `message ${i + 1}: event ${m.event} for port ${m.id} (max_nr_ports ${n})`;
    ids.push(m.id);
  }
  return ids;
}

const base = { level: 'MUST' as const, group: 'device' as const, devices: ['console'] };
const multi = { features: 0xffffffn | (1n << 32n) };

const checks: DeviceCheck[] = [
  {
    ...base,
    id: 'console.multiport-handshake',
    title: 'DEVICE_READY is answered with one PORT_ADD per port, ids below max_nr_ports, none twice',
    source: `${SPEC}.6.2 ("The device MUST NOT specify a port which exists" / "id ... less than max_nr_ports")`,
    run(d) {
      if ((d.offeredFeatures & F_MULTIPORT) === 0n) return skip('MULTIPORT not offered');
      d.start(multi);
      const ids = handshake(d);
      return typeof ids === 'string' ? fail(ids) : pass(`ports ${ids.join(', ')} added`);
    },
  },
  {
    ...base,
    id: 'console.port-ready',
    title: 'PORT_READY for port 0 is answered about port 0 (CONSOLE_PORT, PORT_NAME or PORT_OPEN)',
    source: `${SPEC}.6.2 and Linux virtio_console's port bring-up`,
    run(d) {
      if ((d.offeredFeatures & F_MULTIPORT) === 0n) return skip('MULTIPORT not offered');
      d.start(multi);
      const ids = handshake(d);
      if (typeof ids === 'string') return fail(ids);
      send(d, 0, EV.PORT_READY, 1);
      const m = receive(d);
      if (typeof m === 'string') return fail(m);
      if (m.id !== 0 || ![EV.CONSOLE_PORT, EV.PORT_NAME, EV.PORT_OPEN].includes(m.event as 4 | 6 | 7)) return fail(`answered with event ${m.event} for port ${m.id}`);
      return pass(`event ${m.event} for port 0${m.extra === '' ? '' : ` (${m.extra})`}`);
    },
  },
  {
    ...base,
    id: 'console.bad-control',
    title: 'A control message for a port that does not exist, and a short one, are ignored; the device keeps serving',
    source: `${SPEC}.6.2 (ids below max_nr_ports); hostile driver`,
    run(d) {
      if ((d.offeredFeatures & F_MULTIPORT) === 0n) return skip('MULTIPORT not offered');
      d.start(multi);
      const ids = handshake(d);
      if (typeof ids === 'string') return fail(ids);
      send(d, 0x7fffffff, EV.PORT_READY, 1);
      send(d, 0xffffffff, EV.PORT_OPEN, 1);
      d.request([d.out(Uint8Array.of(0, 0, 0))], { queue: CTX });
      send(d, 0, EV.PORT_READY, 1);
      const m = receive(d);
      if (typeof m === 'string') return fail(m);
      return m.id === 0 ? pass('ignored; PORT_READY for port 0 still answered') : fail(`next message is about port ${m.id}`);
    },
  },
  {
    ...base,
    id: 'console.emerg-write',
    title: 'A write to emerg_wr is accepted, even before the driver set up the device',
    source: `${SPEC}.5.1 ("the device MUST accept a write to emerg_wr ... even before the device is configured")`,
    run(d) {
      if ((d.offeredFeatures & F_EMERG_WRITE) === 0n) return skip('EMERG_WRITE not offered');
      d.start();
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      const r = d.writeConfig(8, Uint8Array.of(0x21, 0, 0, 0));
      if (r === 'refused' || r === 'closed') return fail(`emerg_wr write ${r}`);
      return pass(`emerg_wr write ${r}`);
    },
  },
  {
    ...base,
    id: 'console.tx',
    title: 'Bytes on port 0 transmitq are taken with used length 0',
    source: `${SPEC}.6.1 (transmitq buffers are device-readable)`,
    run(d) {
      d.start();
      const used = d.request([d.out(new TextEncoder().encode('hello from the driver\n'))], { queue: TX0 });
      return used.len === 0 ? pass() : fail(`used length ${used.len}`);
    },
  },
];

export const consoleConformance: DeviceConformance = {
  device: 'console',
  deviceId: 3,
  configSize: 12,
  probeQueue: TX0,
  queues: [RX0, TX0, CRX, CTX],
  probe(d) {
    return { buffers: [d.out(Uint8Array.of(0x2e))], verify: (used) => (used.len === 0 ? null : `used length ${used.len} on a transmitq`) };
  },
  wrongDirection(d) {
    const buf = d.in(32, 0xee);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return fail('a transmitq chain with only a device-writable buffer was not returned');
        if (used.len > 0) return fail(`used length ${used.len}`);
        return d.bytes(buf).every((b) => b === 0xee) ? pass('returned with used length 0, buffer untouched') : fail('the device wrote into a transmitq buffer');
      },
    };
  },
  checks,
};
