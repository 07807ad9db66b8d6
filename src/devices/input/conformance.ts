// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-input's part of the conformance suite (VIRTIO 1.3 §5.8), written against the
 * transport-agnostic `ConformanceDriver`, replaying what Linux's virtio_input does at probe (the
 * select/subsel queries for name, serial, ids, property bits, event bits per type and absolute
 * axis info) and at run time (event buffers of 8 bytes, LED events on the status queue), plus a
 * hostile driver: buffers too small for an event, selects that do not exist, select and subsel
 * written in either order and as QEMU writes them (the whole 136 bytes).
 *
 * Owns: the probe (a status event: the device consumes it at once), the wrong-direction request,
 * the input checks; layouts read with DataView here, independently of the device's code.
 * `input.events` needs a back-end that produces events without a host at hand: AVP's set-ups give
 * a script (a key press, a touch) that starts when the driver posts buffers.
 * Does not own: running checks, transports.
 */
import { fail, pass, reject, skip, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';

const SPEC = 'VIRTIO 1.3 §5.8';
const EVENTQ = 0;
const STATUSQ = 1;
const SEL = { UNSET: 0, NAME: 1, SERIAL: 2, DEVIDS: 3, PROP: 0x10, EV: 0x11, ABS: 0x12 };
const EV = { SYN: 0, KEY: 1, REL: 2, ABS: 3, LED: 0x11 };
const FILL = 0xee;

/** Selects an item the way Linux does (select, then subsel, one byte each) and reads size and u. */
function query(d: ConformanceDriver, select: number, subsel: number): { size: number; u: Uint8Array } | string {
  const w = d.writeConfig(0, Uint8Array.of(select));
  if (w === 'refused' || w === 'closed') return `writing select ${select}: ${w}`;
  d.writeConfig(1, Uint8Array.of(subsel));
  const c = d.readConfig(0, 136);
  if (c === null) return 'the config space could not be read';
  return { size: c[2] ?? 0, u: c.slice(8, 8 + (c[2] ?? 0)) };
}

/** The set bits of a bitmap. */
function bits(u: Uint8Array): number[] {
  const out: number[] = [];
  u.forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) out.push(i * 8 + b);
  });
  return out;
}

/** Receives one event in a fresh 8-byte buffer. */
function receive(d: ConformanceDriver): { type: number; code: number; value: number } | string {
  const buf = d.in(8, FILL);
  const used = d.request([buf], { queue: EVENTQ });
  if (used.len !== 8) return `event buffer used with length ${used.len}, expected 8`;
  const v = new DataView(d.bytes(buf).buffer);
  return { type: v.getUint16(0, true), code: v.getUint16(2, true), value: v.getInt32(4, true) };
}

const status = (type: number, code: number, value: number): Uint8Array => {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, type, true);
  v.setUint16(2, code, true);
  v.setInt32(4, value, true);
  return b;
};

const base = { level: 'MUST' as const, group: 'device' as const, devices: ['input'] };
const hostile = { level: 'MUST' as const, group: 'hostile' as const, devices: ['input'] };
const setup = { queueSize: 16 };

const checks: DeviceCheck[] = [
  {
    ...base,
    id: 'input.config.ids',
    title: 'ID_NAME and ID_SERIAL are strings, ID_DEVIDS is 8 bytes; their subsel 1 is unsupported (size 0)',
    source: `${SPEC}.4 (virtio_input_config select values; "the device MUST set the size field to zero" for unsupported pairs)`,
    run(d) {
      d.start(setup);
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      const name = query(d, SEL.NAME, 0);
      if (typeof name === 'string') return fail(name);
      if (name.size === 0 || name.size > 128) return fail(`ID_NAME size ${name.size}`);
      const text = new TextDecoder().decode(name.u);
      const serial = query(d, SEL.SERIAL, 0);
      const ids = query(d, SEL.DEVIDS, 0);
      if (typeof serial === 'string' || typeof ids === 'string') return fail(typeof serial === 'string' ? serial : String(ids));
      if (serial.size > 128) return fail(`ID_SERIAL size ${serial.size}`);
      if (ids.size !== 8) return fail(`ID_DEVIDS size ${ids.size}, expected 8 (bustype, vendor, product, version)`);
      for (const sel of [SEL.NAME, SEL.SERIAL, SEL.DEVIDS]) {
        const r = query(d, sel, 1);
        if (typeof r === 'string' || r.size !== 0) return fail(`select 0x${sel.toString(16)} subsel 1: size ${typeof r === 'string' ? r : r.size}, expected 0`);
      }
      return pass(`"${text}", serial "${new TextDecoder().decode(serial.u)}"`);
    },
  },
  {
    ...base,
    id: 'input.config.unsupported',
    title: 'UNSET and selects that do not exist answer size 0',
    source: `${SPEC}.4 ("VIRTIO_INPUT_CFG_UNSET ... size 0"; unsupported pairs size 0)`,
    run(d) {
      d.start(setup);
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      for (const [sel, sub] of [[SEL.UNSET, 0], [0x04, 0], [0x13, 0], [0x7f, 3], [0xff, 0xff]] as const) {
        const r = query(d, sel, sub);
        if (typeof r === 'string') return fail(r);
        if (r.size !== 0) return fail(`select 0x${sel.toString(16)} subsel ${sub}: size ${r.size}, expected 0`);
      }
      return pass('all size 0');
    },
  },
  {
    ...base,
    id: 'input.config.ev-abs',
    title: 'Event bits describe a usable device; every announced axis has ABS_INFO with min <= max, others size 0',
    source: `${SPEC}.4 (VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_CFG_ABS_INFO); Linux virtio_input probe`,
    run(d) {
      d.start(setup);
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      const types: string[] = [];
      for (const t of [EV.KEY, EV.REL, EV.ABS]) {
        const r = query(d, SEL.EV, t);
        if (typeof r === 'string') return fail(r);
        if (r.size > 0) types.push(`type ${t}: ${bits(r.u).length} codes`);
      }
      if (types.length === 0) return fail('no EV_KEY, EV_REL or EV_ABS bits: the device can report nothing');
      const abs = query(d, SEL.EV, EV.ABS);
      if (typeof abs === 'string') return fail(abs);
      const axes = bits(abs.u);
      for (const a of axes) {
        const r = query(d, SEL.ABS, a);
        if (typeof r === 'string') return fail(r);
        if (r.size !== 20) return fail(`axis ${a} is announced but ABS_INFO has size ${r.size}, expected 20`);
        const v = new DataView(r.u.buffer);
        if (v.getInt32(0, true) > v.getInt32(4, true)) return fail(`axis ${a}: min ${v.getInt32(0, true)} > max ${v.getInt32(4, true)}`);
      }
      const none = Array.from({ length: 64 }, (_, i) => i).find((a) => !axes.includes(a));
      if (none !== undefined) {
        const r = query(d, SEL.ABS, none);
        if (typeof r === 'string' || r.size !== 0) return fail(`axis ${none} is not announced but ABS_INFO has size ${typeof r === 'string' ? r : r.size}`);
      }
      return pass(`${types.join(', ')}${axes.length > 0 ? `; axes ${axes.join(', ')}` : ''}`);
    },
  },
  {
    ...base,
    id: 'input.config.write-forms',
    title: 'subsel written before select, and QEMU-style whole 136-byte writes, select the same item',
    source: `${SPEC}.4 (the driver writes select and subsel); QEMU vhost-user-input SET_CONFIG of the whole config`,
    run(d) {
      d.start(setup);
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      const want = query(d, SEL.NAME, 0);
      if (typeof want === 'string') return fail(want);
      d.writeConfig(0, Uint8Array.of(0));
      d.writeConfig(1, Uint8Array.of(0));
      d.writeConfig(0, Uint8Array.of(SEL.NAME));
      const a = d.readConfig(2, 1);
      const whole = new Uint8Array(136).fill(0x5a);
      whole[0] = SEL.NAME;
      whole[1] = 0;
      d.writeConfig(0, whole);
      const b = d.readConfig(0, 136);
      if (a === null || b === null) return fail('config could not be read');
      if (a[0] !== want.size) return fail(`after subsel then select: size ${a[0]}, expected ${want.size}`);
      if (b[2] !== want.size || !want.u.every((x, i) => b[8 + i] === x)) return fail(`after a whole 136-byte write: size ${b[2]}, expected ${want.size}`);
      return pass('same item either way');
    },
  },
  {
    ...base,
    id: 'input.events',
    title: 'Events arrive one per 8-byte buffer, of announced types and codes, in frames ending with SYN_REPORT',
    source: `${SPEC}.6 (virtio_input_event; evdev frames end with EV_SYN/SYN_REPORT)`,
    run(d) {
      d.start({ ...setup, queueSize: 64 });
      const announced = new Map<number, number[]>();
      for (const t of [EV.KEY, EV.REL, EV.ABS]) {
        const r = d.hasConfigAccess ? query(d, SEL.EV, t) : null;
        if (r !== null && typeof r !== 'string') announced.set(t, bits(r.u));
      }
      const seen: string[] = [];
      let frames = 0;
      let inFrame = 0;
      for (let i = 0; i < 32 && frames < 2; i++) {
        const e = receive(d);
        if (typeof e === 'string') return fail(e);
        seen.push(`${e.type}:${e.code}:${e.value}`);
        if (e.type === EV.SYN) {
          if (e.code !== 0) return fail(`EV_SYN code ${e.code}, expected SYN_REPORT (0)`);
          if (inFrame === 0) return fail('an empty frame (SYN_REPORT with no event before it)');
          frames++;
          inFrame = 0;
          continue;
        }
        inFrame++;
        if (d.hasConfigAccess && announced.get(e.type)?.includes(e.code) !== true) return fail(`event type ${e.type} code ${e.code} was not announced in EV_BITS`);
      }
      return frames >= 1 ? pass(`${frames} frame(s): ${seen.join(' ')}`) : fail(`no SYN_REPORT in ${seen.length} events: ${seen.join(' ')}`);
    },
  },
  {
    ...base,
    id: 'input.status',
    title: 'LED events on the status queue are consumed (used length 0) and the device goes on',
    source: `${SPEC}.6 (statusq: "the driver ... sends ... LED state")`,
    run(d) {
      d.start(setup);
      for (const e of [status(EV.LED, 1, 1), status(EV.SYN, 0, 0), status(EV.LED, 1, 0), status(EV.SYN, 0, 0)]) {
        const used = d.request([d.out(e)], { queue: STATUSQ });
        if (used.len !== 0) return fail(`status event used with length ${used.len}: the device must not write`);
      }
      return pass('4 status events consumed');
    },
  },
  {
    ...hostile,
    id: 'input.hostile.short-buffers',
    title: 'An event buffer of 4 bytes and a status buffer of 2 are returned with used length 0; the device goes on',
    source: `${SPEC}.6; AVP: guest buffers are checked before use`,
    run(d) {
      d.start(setup);
      const small = d.request([d.in(4, FILL)], { queue: EVENTQ });
      if (small.len !== 0) return fail(`a 4-byte event buffer used with length ${small.len}`);
      const st = d.request([d.out(Uint8Array.of(0x11, 0))], { queue: STATUSQ });
      if (st.len !== 0) return fail(`a 2-byte status buffer used with length ${st.len}`);
      const after = d.request([d.out(status(EV.SYN, 0, 0))], { queue: STATUSQ });
      return after.len === 0 ? pass('both returned; a status event after them is consumed') : fail(`status after them: used length ${after.len}`);
    },
  },
];

export const inputConformance: DeviceConformance = {
  device: 'input',
  deviceId: 18,
  configSize: 136,
  probeQueue: STATUSQ,
  queues: [EVENTQ, STATUSQ],
  probe(d) {
    return { buffers: [d.out(status(EV.SYN, 0, 0))], verify: (used) => (used.len === 0 ? null : `status event used with length ${used.len}`) };
  },
  wrongDirection(d) {
    // A device-writable buffer on the status queue: the device has nothing to read.
    const buf = d.in(8, 0x5c);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('the chain was not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a status chain the device must only read`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
