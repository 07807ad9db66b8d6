// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rpmb's part of the conformance suite (VIRTIO 1.3 §5.19), written against the
 * transport-agnostic `ConformanceDriver`. RPMB has no QEMU front-end and no mainline Linux driver,
 * so this is its functional test: key programming, the write counter, authenticated write and read
 * with HMAC-SHA256, and the negatives that make it replay-protected (a replayed write, a bad MAC,
 * a second key, an address past the end).
 *
 * Frames are built here with their own DataView code and node:crypto's HMAC, independently of the
 * model's spec.ts/frames.ts. Every check programs the same conformance key first and accepts
 * GENERAL_FAILURE for it (the key was programmed by an earlier check of the same back-end: a key
 * can be programmed only once), so checks do not depend on their order. A back-end that holds a
 * different key fails the MAC checks: run it on a fresh state.
 */
import { createHmac } from 'node:crypto';
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { RPMB_DEVICE_ID, RPMB_REQUESTQ } from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.19.6 RPMB Device Operation';
const FRAME = 512;
/** The conformance suite's key (32 bytes, 0x00..0x1f). */
export const CONFORMANCE_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

interface Fields {
  req: number;
  counter?: number;
  address?: number;
  blocks?: number;
  result?: number;
  nonce?: number;
  data?: number;
}

/** A 512-byte frame: big-endian fields at 500..511, nonce at 484, data at 228 filled with `data`. */
function frame(f: Fields): Uint8Array {
  const b = new Uint8Array(FRAME);
  const v = new DataView(b.buffer);
  if (f.data !== undefined) b.fill(f.data, 228, 484);
  if (f.nonce !== undefined) b.fill(f.nonce, 484, 500);
  v.setUint32(500, f.counter ?? 0);
  v.setUint16(504, f.address ?? 0);
  v.setUint16(506, f.blocks ?? 0);
  v.setUint16(508, f.result ?? 0);
  v.setUint16(510, f.req);
  return b;
}

function mac(frames: Uint8Array[]): Buffer {
  const h = createHmac('sha256', CONFORMANCE_KEY);
  for (const f of frames) h.update(f.subarray(228, 512));
  return h.digest();
}

interface Resp {
  req: number;
  result: number;
  counter: number;
  address: number;
  nonce: number;
  data: Uint8Array;
  macOk: boolean;
}

function parse(all: Uint8Array, i: number, frames: Uint8Array[]): Resp {
  const f = all.subarray(i * FRAME, (i + 1) * FRAME);
  const v = new DataView(f.buffer, f.byteOffset, FRAME);
  return {
    req: v.getUint16(510),
    result: v.getUint16(508),
    counter: v.getUint32(500),
    address: v.getUint16(504),
    nonce: f[484] ?? 0,
    data: f.subarray(228, 484),
    macOk: Buffer.from(f.subarray(196, 228)).equals(mac(frames)),
  };
}

/** Sends request frames with room for `respFrames` responses; returns them (or a failure text). */
function send(d: ConformanceDriver, out: Uint8Array[], respFrames: number): Resp[] | string {
  const req = new Uint8Array(out.length * FRAME);
  out.forEach((f, i) => req.set(f, i * FRAME));
  const bufs = [d.out(req)];
  const inBuf = respFrames > 0 ? d.in(respFrames * FRAME, 0xee) : undefined;
  if (inBuf !== undefined) bufs.push(inBuf);
  const used = d.request(bufs);
  if (inBuf === undefined) return used.len === 0 ? [] : `used length ${used.len} with no response buffer`;
  if (used.len !== respFrames * FRAME) return `used length ${used.len}, expected ${respFrames * FRAME} (${respFrames} response frame(s))`;
  const all = d.bytes(inBuf);
  const frames = Array.from({ length: respFrames }, (_, i) => all.slice(i * FRAME, (i + 1) * FRAME));
  return frames.map((_, i) => parse(all, i, frames));
}

/** Programs the conformance key: OK, or GENERAL_FAILURE when a key is already there. */
function programKey(d: ConformanceDriver): string | null {
  const keyFrame = frame({ req: 0x0001, blocks: 1 });
  keyFrame.set(CONFORMANCE_KEY, 196);
  const r = send(d, [keyFrame, frame({ req: 0x0005 })], 1);
  if (typeof r === 'string') return `PROGRAM_KEY: ${r}`;
  const resp = r[0];
  if (resp?.req !== 0x0100) return `PROGRAM_KEY response type 0x${resp?.req.toString(16)}, expected 0x0100`;
  if (resp.result !== 0 && resp.result !== 1) return `PROGRAM_KEY result ${resp.result}`;
  return null;
}

function counter(d: ConformanceDriver, nonce = 0x5a): Resp | string {
  const r = send(d, [frame({ req: 0x0002, nonce })], 1);
  if (typeof r === 'string') return `GET_WRITE_COUNTER: ${r}`;
  // Safe: send returned one frame for respFrames = 1.
  return r[0]!;
}

/** A signed DATA_WRITE of `blocks` blocks at `address` with counter `count`, plus RESULT_READ. */
function write(d: ConformanceDriver, address: number, count: number, fill: number, opts: { badMac?: boolean } = {}): Resp | string {
  const data = [frame({ req: 0x0003, counter: count, address, blocks: 1, data: fill, nonce: 0 })];
  const sig = mac(data);
  if (opts.badMac === true) sig[0] = (sig[0] ?? 0) ^ 1;
  data[0]?.set(sig, 196);
  const r = send(d, [...data, frame({ req: 0x0005 })], 1);
  if (typeof r === 'string') return `DATA_WRITE: ${r}`;
  return r[0]!;
}

function read(d: ConformanceDriver, address: number, nonce: number): Resp | string {
  const req = frame({ req: 0x0004, address, blocks: 1, nonce });
  const inBuf = d.in(FRAME, 0xee);
  const used = d.request([d.out(req), inBuf]);
  if (used.len !== FRAME) return `DATA_READ: used length ${used.len}, expected ${FRAME}`;
  const all = d.bytes(inBuf);
  return parse(all, 0, [all.slice()]);
}

/** Starts the driver, programs the key and reads the counter. */
function ready(d: ConformanceDriver): { counter: number } | CheckOutcome {
  d.start();
  const k = programKey(d);
  if (k !== null) return fail(k);
  const c = counter(d);
  if (typeof c === 'string') return fail(c);
  if (c.result !== 0) return fail(`GET_WRITE_COUNTER result ${c.result} after programming the key`);
  if (!c.macOk) return fail('GET_WRITE_COUNTER response MAC does not verify with the programmed key (a different key already held?)');
  return { counter: c.counter };
}

const checks: DeviceCheck[] = [
  {
    id: 'rpmb.config',
    title: 'The configuration space gives capacity (1..0x80 units of 128 KiB), max_wr_cnt and max_rd_cnt',
    source: 'VIRTIO 1.3 §5.19.4 Device configuration layout',
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      d.start();
      if (!d.hasConfigAccess) return skip('no config access over this transport');
      const c = d.readConfig(0, 3);
      if (c === null) return fail('reading the 3-byte config failed');
      const [cap = 0, wr = 0, rd = 0] = c;
      if (cap < 1 || cap > 0x80) return fail(`capacity ${cap}`);
      return pass(`capacity ${cap} × 128 KiB, max_wr_cnt ${wr}, max_rd_cnt ${rd}`);
    },
  },
  {
    id: 'rpmb.no-key',
    title: 'Before a key is programmed, GET_WRITE_COUNTER answers NO_AUTH_KEY',
    source: `${SPEC} (Get Write Counter: "If the key is not programmed, the device MUST set result to VIRTIO_RPMB_RES_NO_AUTH_KEY")`,
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      d.start();
      const c = counter(d);
      if (typeof c === 'string') return fail(c);
      if (c.req !== 0x0200) return fail(`response type 0x${c.req.toString(16)}, expected 0x0200`);
      if (c.result === 0) return skip('a key is already programmed on this back-end (an earlier check programmed it)');
      return c.result === 7 ? pass('NO_AUTH_KEY') : fail(`result ${c.result}, expected NO_AUTH_KEY (7)`);
    },
  },
  {
    id: 'rpmb.program-key',
    title: 'A key is programmed once; a second PROGRAM_KEY is refused with GENERAL_FAILURE',
    source: `${SPEC} (Program Key: "If the key is already programmed, the device MUST set result to VIRTIO_RPMB_RES_GENERAL_FAILURE")`,
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const other = frame({ req: 0x0001, blocks: 1 });
      other.fill(0x99, 196, 228);
      const again = send(d, [other, frame({ req: 0x0005 })], 1);
      if (typeof again === 'string') return fail(again);
      if (again[0]?.result !== 1) return fail(`a second PROGRAM_KEY got result ${again[0]?.result}, expected GENERAL_FAILURE (1)`);
      const c = counter(d);
      if (typeof c === 'string') return fail(c);
      return c.macOk ? pass('second key refused; the first key still signs responses') : fail('the second PROGRAM_KEY replaced the key');
    },
  },
  {
    id: 'rpmb.counter',
    title: 'GET_WRITE_COUNTER echoes the nonce and is signed with the key',
    source: `${SPEC} (Get Write Counter)`,
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const c = counter(d, 0x33);
      if (typeof c === 'string') return fail(c);
      if (c.nonce !== 0x33) return fail(`nonce byte 0x${c.nonce.toString(16)}, expected 0x33`);
      return c.macOk ? pass(`counter ${c.counter}, nonce echoed, MAC verifies`) : fail('MAC does not verify');
    },
  },
  {
    id: 'rpmb.write-read',
    title: 'An authenticated write increments the counter; an authenticated read returns the data with the nonce and a valid MAC',
    source: `${SPEC} (Data Write, Data Read)`,
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const w = write(d, 3, r.counter, 0xa5);
      if (typeof w === 'string') return fail(w);
      if (w.req !== 0x0300 || w.result !== 0) return fail(`DATA_WRITE response 0x${w.req.toString(16)} result ${w.result}`);
      if (w.counter !== r.counter + 1) return fail(`counter ${w.counter} after the write, expected ${r.counter + 1}`);
      if (!w.macOk) return fail('DATA_WRITE result frame MAC does not verify');
      const rd = read(d, 3, 0x77);
      if (typeof rd === 'string') return fail(rd);
      if (rd.req !== 0x0400 || rd.result !== 0) return fail(`DATA_READ response 0x${rd.req.toString(16)} result ${rd.result}`);
      if (!rd.data.every((b) => b === 0xa5)) return fail('DATA_READ returned other data than written');
      if (rd.nonce !== 0x77 || !rd.macOk) return fail('DATA_READ nonce or MAC wrong');
      return pass(`block 3 written (counter ${w.counter}) and read back`);
    },
  },
  {
    id: 'rpmb.replay',
    title: 'A replayed write (same frame, old counter) is refused with COUNT_FAILURE and changes nothing',
    source: `${SPEC} (Data Write: "If the write counter does not match, the device MUST set result to VIRTIO_RPMB_RES_COUNT_FAILURE")`,
    level: 'MUST',
    group: 'device',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const w = write(d, 5, r.counter, 0x11);
      if (typeof w === 'string' || w.result !== 0) return fail(`the first write failed: ${typeof w === 'string' ? w : w.result}`);
      const again = write(d, 5, r.counter, 0x22);
      if (typeof again === 'string') return fail(again);
      if (again.result !== 3) return fail(`replay got result ${again.result}, expected COUNT_FAILURE (3)`);
      const rd = read(d, 5, 1);
      if (typeof rd === 'string') return fail(rd);
      if (!rd.data.every((b) => b === 0x11)) return fail('the replayed write changed the data');
      return reject('replay refused with COUNT_FAILURE; data and counter unchanged');
    },
  },
  {
    id: 'rpmb.bad-mac',
    title: 'A write with a wrong MAC is refused with AUTH_FAILURE; the counter does not move',
    source: `${SPEC} (Data Write: "If the MAC does not match, the device MUST set result to VIRTIO_RPMB_RES_AUTH_FAILURE")`,
    level: 'MUST',
    group: 'hostile',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const w = write(d, 1, r.counter, 0x42, { badMac: true });
      if (typeof w === 'string') return fail(w);
      if (w.result !== 2) return fail(`result ${w.result}, expected AUTH_FAILURE (2)`);
      const c = counter(d);
      if (typeof c === 'string') return fail(c);
      return c.counter === r.counter ? reject('AUTH_FAILURE; counter unchanged') : fail(`counter moved to ${c.counter}`);
    },
  },
  {
    id: 'rpmb.address',
    title: 'A write or read past the end of the partition is refused with ADDR_FAILURE',
    source: `${SPEC} (Data Write/Read: address out of range → VIRTIO_RPMB_RES_ADDR_FAILURE)`,
    level: 'MUST',
    group: 'hostile',
    devices: ['rpmb'],
    run(d) {
      const r = ready(d);
      if ('verdict' in r) return r;
      const w = write(d, 0xffff, r.counter, 0x42);
      if (typeof w === 'string') return fail(w);
      if (w.result !== 4) return fail(`write at 0xffff: result ${w.result}, expected ADDR_FAILURE (4)`);
      const rd = read(d, 0xffff, 2);
      if (typeof rd === 'string') return fail(rd);
      return rd.result === 4 ? reject('ADDR_FAILURE for both') : fail(`read at 0xffff: result ${rd.result}`);
    },
  },
];

export const rpmbConformance: DeviceConformance = {
  device: 'rpmb',
  deviceId: RPMB_DEVICE_ID,
  configSize: 3,
  probeQueue: RPMB_REQUESTQ,
  probe(d) {
    const out = d.out(frame({ req: 0x0002, nonce: 9 }));
    const inBuf = d.in(FRAME, 0xee);
    return {
      buffers: [out, inBuf],
      verify(used) {
        if (used.len !== FRAME) return `used length ${used.len}, expected ${FRAME}`;
        const b = d.bytes(inBuf);
        const req = ((b[510] ?? 0) << 8) | (b[511] ?? 0);
        return req === 0x0200 ? null : `response type 0x${req.toString(16)}, expected 0x0200`;
      },
    };
  },
  wrongDirection(d) {
    // A GET_WRITE_COUNTER with no room for its response: nothing may be written.
    const out = d.out(frame({ req: 0x0002 }));
    return {
      buffers: [out],
      judge(used) {
        if (used === null) return reject('the chain without a response buffer was not returned');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a device-writable byte`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};

/** Exported for the unit tests: the frame builders above, so tests use the same independent code. */
export const rpmbConformanceFrames = { frame, mac, send, programKey, counter, write, read };
export type { Resp as RpmbConformanceResponse };
