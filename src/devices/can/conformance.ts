// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can's part of the conformance suite (VIRTIO 1.4 "CAN Device"), written against the
 * transport-agnostic `ConformanceDriver` (device/conformance.ts). There is no QEMU front-end and
 * no mainline Linux driver in 6.12, so these checks replay what the Linux driver (7.x,
 * drivers/net/can/virtio_can.c) does: START, transmit one out buffer + a 1-byte result, post
 * receive buffers of header + 8 (or 64) bytes, STOP.
 *
 * Owns: the probe (SET_CTRL_MODE_STOP, always OK), the wrong-direction request (a control request
 * with no device-writable byte), and the checks: the controller starts STOPPED and refuses frames
 * then; START/STOP answer OK and an unknown control message NOT_OK; classic standard and extended
 * frames are sent after START; hostile frames (undefined flags, a wrong msg_type, identifiers out of
 * range, lengths out of range or longer than the buffer, a short header, frame types not
 * negotiated) get NOT_OK and the device keeps working; FD and remote frames when offered; a sent
 * frame comes back on the Rxq as virtio_can_rx when the device's bus loops back (AVP's
 * `--loopback`); bus-off sets CTRL_BUSOFF, stops the controller, and START clears it.
 * Requests are built field by field here.
 * Does not own: running checks, transports.
 */
import { fail, pass, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';

const SPEC = 'VIRTIO 1.4 "CAN Device"';
const DEVICE_ID = 36;
const TXQ = 0;
const RXQ = 1;
const CONTROLQ = 2;
const F_CLASSIC = 1n << 0n;
const F_FD = 1n << 1n;
const F_RTR = 1n << 2n;
const OK = 0;
const NOT_OK = 1;
const START = 0x0201;
const STOP = 0x0202;
const TX = 0x0001;
const RX = 0x0101;
const EXT = 0x8000;
const FD = 0x4000;
const RTR = 0x2000;
const HDR = 16;
const BUSOFF = 1;

const le16 = (n: number) => [n & 0xff, (n >>> 8) & 0xff];
const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** virtio_can_tx_out, field by field. */
function txOut(f: { msgType?: number; length?: number; flags?: number; id: number; sdu?: number[] }): number[] {
  const sdu = f.sdu ?? [];
  return [...le16(f.msgType ?? TX), ...le16(f.length ?? sdu.length), 0, 0, ...le16(0), ...le32(f.flags ?? 0), ...le32(f.id), ...sdu];
}

/** Sends a control message; the 1-byte result (-1 when the device wrote none). */
function control(d: ConformanceDriver, msgType: number): number {
  const res = d.in(1, 0xee);
  const used = d.request([d.out(Uint8Array.from(le16(msgType))), res], { queue: CONTROLQ });
  return used.len < 1 ? -1 : (d.bytes(res)[0] ?? -1);
}

/** Sends one frame; the result byte (-1 when the device wrote none). */
function send(d: ConformanceDriver, bytes: number[]): number {
  const res = d.in(1, 0xee);
  const used = d.request([d.out(Uint8Array.from(bytes)), res], { queue: TXQ });
  return used.len < 1 ? -1 : (d.bytes(res)[0] ?? -1);
}

const name = (r: number) => (r === OK ? 'OK' : r === NOT_OK ? 'NOT_OK' : r < 0 ? 'no result' : `result ${r}`);

/** Runs labelled sends in order; the first unexpected result fails. */
function expectResults(d: ConformanceDriver, steps: Array<[string, number[], number]>): CheckOutcome | null {
  for (const [label, bytes, want] of steps) {
    const r = send(d, bytes);
    if (r !== want) return fail(`${label}: ${name(r)}, expected ${name(want)}`);
  }
  return null;
}

function status(d: ConformanceDriver): number | null {
  const c = d.hasConfigAccess ? d.readConfig(0, 2) : null;
  return c === null ? null : (c[0] ?? 0) | ((c[1] ?? 0) << 8);
}

const base = { level: 'MUST' as const, group: 'device' as const, devices: ['can'] };

const checks: DeviceCheck[] = [
  {
    ...base,
    id: 'can.stopped-at-start',
    title: 'The controller starts STOPPED: a frame before START gets NOT_OK; status has no BUSOFF',
    source: `${SPEC} "Controller Mode" (initially the CAN controller is in the STOPPED state; in STOPPED, frames are NOT_OK)`,
    run(d) {
      d.start();
      const s = status(d);
      if (s !== null && (s & BUSOFF) !== 0) return fail(`status 0x${s.toString(16)} has CTRL_BUSOFF at start`);
      return expectResults(d, [['a standard frame before START', txOut({ id: 0x123, sdu: [1, 2] }), NOT_OK]]) ?? pass('refused with NOT_OK');
    },
  },
  {
    ...base,
    id: 'can.control',
    title: 'START and STOP answer OK; frames go out after START and not after STOP; an unknown control message gets NOT_OK',
    source: `${SPEC} "Controller Mode"`,
    run(d) {
      d.start();
      for (const [label, msg, want] of [['START', START, OK], ['START again', START, OK], ['control message 0x0203', 0x0203, NOT_OK]] as const) {
        const r = control(d, msg);
        if (r !== want) return fail(`${label}: ${name(r)}, expected ${name(want)}`);
      }
      const early = expectResults(d, [['a frame after START', txOut({ id: 0x100, sdu: [7] }), OK]]);
      if (early !== null) return early;
      const r = control(d, STOP);
      if (r !== OK) return fail(`STOP: ${name(r)}`);
      return expectResults(d, [['a frame after STOP', txOut({ id: 0x100, sdu: [7] }), NOT_OK]]) ?? pass('START/STOP OK, frames follow the controller state, unknown message NOT_OK');
    },
  },
  {
    ...base,
    id: 'can.tx-classic',
    title: 'Classic frames with standard and extended identifiers, 0 to 8 bytes, are sent (OK)',
    source: `${SPEC} "CAN Message Transmission" (29-bit identifiers are mandatory)`,
    run(d) {
      d.start();
      if ((d.features & F_CLASSIC) === 0n) return skip('CAN_CLASSIC not offered');
      if (control(d, START) !== OK) return fail('START refused');
      return (
        expectResults(d, [
          ['standard 0x7FF, 8 bytes', txOut({ id: 0x7ff, sdu: [1, 2, 3, 4, 5, 6, 7, 8] }), OK],
          ['extended 0x1FFFFFFF, no data', txOut({ id: 0x1fffffff, flags: EXT }), OK],
        ]) ?? pass('both sent')
      );
    },
  },
  {
    ...base,
    id: 'can.tx-hostile',
    title: 'Malformed frames get NOT_OK and are not sent; the device keeps working',
    source: `${SPEC} "CAN Message Transmission" (the device MUST reject frames with an undefined flag, a type not negotiated, can_id or length out of range)`,
    run(d) {
      d.start({ features: F_CLASSIC | (1n << 32n) | (1n << 28n) | (1n << 29n) });
      if ((d.features & F_CLASSIC) === 0n) return skip('CAN_CLASSIC not offered');
      if (control(d, START) !== OK) return fail('START refused');
      return (
        expectResults(d, [
          ['undefined flag 0x1', txOut({ id: 1, flags: 0x1 }), NOT_OK],
          ['undefined flag 0x80000000', txOut({ id: 1, flags: 0x80000000 }), NOT_OK],
          ['msg_type 0x0101 (RX) on the Txq', txOut({ msgType: RX, id: 1 }), NOT_OK],
          ['standard id 0x800', txOut({ id: 0x800 }), NOT_OK],
          ['extended id 0x20000000 (top bits set)', txOut({ id: 0x20000000, flags: EXT }), NOT_OK],
          ['classic length 9', txOut({ id: 1, length: 9, sdu: [1, 2, 3, 4, 5, 6, 7, 8, 9] }), NOT_OK],
          ['length 8 with 2 bytes of sdu', txOut({ id: 1, length: 8, sdu: [1, 2] }), NOT_OK],
          ['a 10-byte header', txOut({ id: 1 }).slice(0, 10), NOT_OK],
          ['an FD frame, FD not negotiated', txOut({ id: 1, flags: FD, sdu: [1] }), NOT_OK],
          ['a remote frame, RTR not negotiated', txOut({ id: 1, flags: RTR, length: 2 }), NOT_OK],
          ['a valid frame after all that', txOut({ id: 0x321, sdu: [0xaa] }), OK],
        ]) ?? pass('each refused with NOT_OK; a valid frame still goes out')
      );
    },
  },
  {
    ...base,
    id: 'can.fd',
    title: 'CAN FD frames of every FD length are sent; lengths between them and FD remote frames get NOT_OK',
    source: `${SPEC} "Feature bits" (CAN_FD: up to 64 bytes; RTR frames are only supported with classic CAN)`,
    run(d) {
      d.start();
      if ((d.offeredFeatures & F_FD) === 0n) return skip('CAN_FD not offered');
      if (control(d, START) !== OK) return fail('START refused');
      const data = (n: number) => Array.from({ length: n }, (_, i) => i);
      return (
        expectResults(d, [
          ['FD, 64 bytes, extended', txOut({ id: 0x1234567, flags: FD | EXT, sdu: data(64) }), OK],
          ['FD, 12 bytes', txOut({ id: 0x10, flags: FD, sdu: data(12) }), OK],
          ['FD, 13 bytes (no such FD length)', txOut({ id: 0x10, flags: FD, sdu: data(13) }), NOT_OK],
          ['FD, 65 bytes', txOut({ id: 0x10, flags: FD, sdu: data(65) }), NOT_OK],
          ['FD remote frame', txOut({ id: 0x10, flags: FD | RTR, length: 8 }), NOT_OK],
        ]) ?? pass('valid FD frames sent, invalid ones refused')
      );
    },
  },
  {
    ...base,
    id: 'can.rtr',
    title: 'A remote frame (with the length it asks for) is sent when RTR_FRAMES is negotiated',
    source: `${SPEC} "Feature bits" (RTR_FRAMES)`,
    run(d) {
      d.start();
      if ((d.offeredFeatures & F_RTR) === 0n) return skip('RTR_FRAMES not offered');
      if (control(d, START) !== OK) return fail('START refused');
      return expectResults(d, [['standard remote frame asking for 4 bytes', txOut({ id: 0x55, flags: RTR, length: 4 }), OK]]) ?? pass('sent');
    },
  },
  {
    ...base,
    id: 'can.rx-loopback',
    title: 'A frame on the bus arrives on the Rxq as virtio_can_rx: msg_type RX, length, flags, can_id and data',
    source: `${SPEC} "CAN Message Reception"; needs a device whose bus echoes its frames (AVP: --loopback)`,
    run(d) {
      d.start();
      if (control(d, START) !== OK) return fail('START refused');
      const sent = [0xde, 0xad, 0xbe, 0xef];
      if (send(d, txOut({ id: 0x1abcdef, flags: EXT, sdu: sent })) !== OK) return fail('the frame was not sent');
      const buf = d.in(HDR + 64, 0xee);
      const used = d.request([buf], { queue: RXQ });
      const b = d.bytes(buf);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const got = { len: used.len, msgType: v.getUint16(0, true), length: v.getUint16(2, true), flags: v.getUint32(8, true), id: v.getUint32(12, true), sdu: [...b.subarray(HDR, HDR + 4)] };
      const want = { len: HDR + 4, msgType: RX, length: 4, flags: EXT, id: 0x1abcdef, sdu: sent };
      return JSON.stringify(got) === JSON.stringify(want) ? pass('received as sent') : fail(`got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    },
  },
  {
    ...base,
    id: 'can.bus-off',
    title: 'Bus-off sets CTRL_BUSOFF and stops the controller (frames NOT_OK); START restarts it and clears the bit',
    source: `${SPEC} "BusOff Indication" and "Controller Mode" (the device updates status before marking the request used)`,
    run(d) {
      d.start();
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      if (control(d, START) !== OK) return fail('START refused');
      let off = false;
      for (let i = 0; i < 8 && !off; i++) {
        send(d, txOut({ id: 0x200 + i, sdu: [i] }));
        off = ((status(d) ?? 0) & BUSOFF) !== 0;
      }
      if (!off) return skip('the bus never went bus-off in 8 frames (no fault on this bus; AVP: --bus-off-after N)');
      const r = send(d, txOut({ id: 0x300 }));
      if (r !== NOT_OK) return fail(`a frame after bus-off: ${name(r)}, expected NOT_OK (the controller is STOPPED)`);
      if (control(d, START) !== OK) return fail('START after bus-off refused');
      const s = status(d) ?? 0;
      if ((s & BUSOFF) !== 0) return fail(`status 0x${s.toString(16)} still has CTRL_BUSOFF after START`);
      return expectResults(d, [['a frame after the restart', txOut({ id: 0x301 }), OK]]) ?? pass('bus-off seen, frames refused, START restarted the controller');
    },
  },
];

export const canConformance: DeviceConformance = {
  device: 'can',
  deviceId: DEVICE_ID,
  configSize: 2,
  probeQueue: CONTROLQ,
  queues: [TXQ, RXQ, CONTROLQ],
  probe(d) {
    const res = d.in(1, 0xee);
    return {
      buffers: [d.out(Uint8Array.from(le16(STOP))), res],
      verify: (used) => (used.len === 1 && d.bytes(res)[0] === OK ? null : `STOP: used length ${used.len}, result ${d.bytes(res)[0] ?? '-'}`),
    };
  },
  wrongDirection(d) {
    // A control message needs a device-writable result byte; with none the device can say nothing.
    return {
      buffers: [d.out(Uint8Array.from(le16(STOP)))],
      judge(used) {
        if (used === null) return fail('the control message without a result buffer was not returned');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a device-writable byte`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
