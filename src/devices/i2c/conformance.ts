// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-i2c's part of the conformance suite (VIRTIO 1.3 §5.21; AVPS sensors behind I2C), written
 * against the transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * The checks do not assume what is on the bus (a back-end may pass a real bus through): they scan
 * it with zero-length writes (SMBus Quick, what i2cdetect does) and use what answers.
 * Owns: the probe (a zero-length write), the wrong-direction request (the header in a
 * device-writable buffer), and the checks: the scan's protocol (every segment completes with the
 * status byte as the only byte written), a NACKed address NACKs reads too, a register write-read
 * group on a device that answers, FAIL_NEXT failing the rest of a group without running it and
 * nothing after the group, refusals of reserved flags, of M_RD against the buffer's direction, of
 * 10-bit addresses and of a huge read, and the mandatory ZERO_LENGTH_REQUEST feature. Only the
 * register pointer is ever written, so devices (EEPROMs) keep their contents.
 * Does not own: running checks or any transport.
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { DEFAULT_DRIVER_FEATURES } from '../../device/conformance.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { featureBit, hasFeature } from '../../spec/virtio.js';
import { I2C_DEVICE_ID, I2C_REQUESTQ, VIRTIO_I2C_F_ZERO_LENGTH_REQUEST } from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.21.6';
// Written out from the spec, not taken from spec.ts: FAIL_NEXT bit 0, M_RD bit 1; OK 0, ERR 1.
const FAIL_NEXT = 1;
const M_RD = 2;
const OK = 0;
const ERR = 1;
const FILL = 0xa5;

function header(addr7: number, flags: number, rawAddr?: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, rawAddr ?? addr7 << 1, true);
  v.setUint32(4, flags, true);
  return b;
}

interface Segment {
  readonly buffers: DriverBuffer[];
  readonly status: DriverBuffer;
  readonly data?: DriverBuffer;
  /** The length the used element must have: the read's data and the status byte. */
  readonly usedLen: number;
}

function writeSeg(d: ConformanceDriver, addr: number, bytes: Uint8Array, flags = 0): Segment {
  const status = d.in(1, FILL);
  const buffers = [d.out(header(addr, flags)), ...(bytes.length > 0 ? [d.out(bytes)] : []), status];
  return { buffers, status, usedLen: 1 };
}

function readSeg(d: ConformanceDriver, addr: number, n: number, flags = 0): Segment {
  const status = d.in(1, FILL);
  const data = n > 0 ? d.in(n, FILL) : undefined;
  return { buffers: [d.out(header(addr, flags | M_RD)), ...(data === undefined ? [] : [data]), status], status, ...(data === undefined ? {} : { data }), usedLen: n + 1 };
}

/** Sends one segment and returns its status, or a protocol problem. */
function run(d: ConformanceDriver, seg: Segment): number | string {
  const used = d.request(seg.buffers, { queue: I2C_REQUESTQ });
  const status = d.bytes(seg.status)[0] ?? -1;
  if (status !== OK && status !== ERR) return `status byte ${status} (expected 0 or 1)`;
  if (used.len !== seg.usedLen && !(status === ERR && used.len <= seg.usedLen)) return `used length ${used.len}, expected ${seg.usedLen}`;
  return status;
}

/** Sends a group at once (one kick) and waits for all of it, in order. */
function runGroup(d: ConformanceDriver, segs: readonly Segment[]): Array<number | string> {
  const tokens = segs.map((s) => d.post(s.buffers, { queue: I2C_REQUESTQ }));
  return tokens.map((t, i) => {
    // Safe: one token per segment.
    const seg = segs[i]!;
    const used = d.wait(t, { queue: I2C_REQUESTQ });
    const status = d.bytes(seg.status)[0] ?? -1;
    if (status !== OK && status !== ERR) return `status byte ${status}`;
    if (used.len > seg.usedLen) return `used length ${used.len} past the ${seg.usedLen} bytes`;
    return status;
  });
}

/** Addresses 0x03-0x77 that acknowledge a zero-length write, and those that do not. */
function scan(d: ConformanceDriver): { acked: number[]; nacked: number[] } | string {
  const acked: number[] = [];
  const nacked: number[] = [];
  for (let a = 0x03; a <= 0x77; a++) {
    const s = run(d, writeSeg(d, a, new Uint8Array(0)));
    if (typeof s === 'string') return `address 0x${a.toString(16)}: ${s}`;
    (s === OK ? acked : nacked).push(a);
  }
  return { acked, nacked };
}

const hex = (a: number): string => `0x${a.toString(16).padStart(2, '0')}`;

/** Starts and scans, or says why the check cannot go on. */
function startAndScan(d: ConformanceDriver): { acked: number[]; nacked: number[] } | CheckOutcome {
  d.start({ queueSize: 64 });
  const s = scan(d);
  return typeof s === 'string' ? fail(s) : s;
}

const checks: DeviceCheck[] = [
  {
    id: 'i2c.quick-scan',
    title: 'Zero-length writes to every 7-bit address complete with a status byte and nothing else written',
    source: `${SPEC} ("The buf is optional and will not be present for a zero-length request, like the SMBus Quick command"); VIRTIO 1.3 §5.21.3 ZERO_LENGTH_REQUEST`,
    level: 'MUST',
    group: 'device',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      return pass(`${s.acked.length} device(s) answer: ${s.acked.map(hex).join(' ') || 'none'}`);
    },
  },
  {
    id: 'i2c.nack',
    title: 'An address nothing answers also NACKs a read, and its buffer is not used',
    source: `${SPEC} ("either VIRTIO_I2C_MSG_OK for success or VIRTIO_I2C_MSG_ERR for error"); "A device SHOULD keep consistent behaviors with the hardware"`,
    level: 'SHOULD',
    group: 'device',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      const a = s.nacked[0];
      if (a === undefined) return skip('every address answers a zero-length write');
      const r = run(d, readSeg(d, a, 2));
      if (typeof r === 'string') return fail(`read from ${hex(a)}: ${r}`);
      return r === ERR ? pass(`${hex(a)}: NACK for a quick write and a 2-byte read`) : fail(`${hex(a)} NACKs a quick write but acknowledged a read`);
    },
  },
  {
    id: 'i2c.write-read',
    title: 'A register write-read group (write the pointer, read 2 bytes) on a device that answers',
    source: `${SPEC} ("The virtio I2C protocol supports write-read requests ... by grouping a list of requests together using the VIRTIO_I2C_FLAGS_FAIL_NEXT flag")`,
    level: 'MUST',
    group: 'device',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      const a = s.acked[0];
      if (a === undefined) return skip('no device answers on the bus');
      const rd = readSeg(d, a, 2);
      const [w, r] = runGroup(d, [writeSeg(d, a, Uint8Array.of(0), FAIL_NEXT), rd]);
      if (typeof w === 'string' || typeof r === 'string') return fail(`${hex(a)}: ${typeof w === 'string' ? w : r}`);
      if (w !== OK) return skip(`${hex(a)} refuses a 1-byte register write`);
      if (r !== OK) return fail(`${hex(a)}: the read after an acknowledged pointer write failed`);
      return pass(`${hex(a)}: register 0 reads ${[...d.bytes(rd.data!)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
    },
  },
  {
    id: 'i2c.fail-next',
    title: 'After a failed request with FAIL_NEXT, the next request of the group fails without running; a request after the group runs',
    source: `${SPEC} ("If this bit is set and a device fails to process the current request, it needs to fail the next request instead of attempting to execute it")`,
    level: 'MUST',
    group: 'device',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      const bad = s.nacked[0];
      const good = s.acked[0];
      if (bad === undefined || good === undefined) return skip('needs an address that answers and one that does not');
      const [first, second, after] = runGroup(d, [readSeg(d, bad, 1, FAIL_NEXT), readSeg(d, good, 2), readSeg(d, good, 2)]);
      for (const x of [first, second, after]) if (typeof x === 'string') return fail(x);
      if (first !== ERR) return fail(`the read from ${hex(bad)} (nothing there) did not fail`);
      if (second !== ERR) return fail(`the request after it, in the same group, was run (status OK) instead of failed`);
      if (after !== OK) return fail(`the request after the group failed too: FAIL_NEXT leaked past the group`);
      return pass('first ERR, the rest of the group ERR, the next request OK');
    },
  },
  {
    id: 'i2c.reserved-flags',
    title: 'A request with reserved flag bits set completes with a status',
    source: `${SPEC} ("Other bits of flags are currently reserved as zero"; "A driver MUST set the reserved bits of flags to be zero")`,
    level: 'MUST',
    group: 'hostile',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      const a = s.acked[0] ?? 0x50;
      const r = run(d, writeSeg(d, a, new Uint8Array(0), 0x80));
      if (typeof r === 'string') return fail(r);
      return r === ERR ? reject(`flags 0x80 to ${hex(a)}: ERR`) : pass(`flags 0x80 to ${hex(a)}: ignored, OK`);
    },
  },
  {
    id: 'i2c.direction-mismatch',
    title: 'M_RD with a device-readable buffer, or a write with a device-writable one, is refused',
    source: `${SPEC} driver requirements ("MUST set the VIRTIO_I2C_FLAGS_M_RD flag for a read operation, where the buffer is write-only for the device"; "MUST NOT set ... for a write operation")`,
    level: 'MUST',
    group: 'hostile',
    devices: ['i2c'],
    run(d) {
      const s = startAndScan(d);
      if ('verdict' in s) return s;
      const a = s.acked[0];
      if (a === undefined) return skip('no device answers on the bus');
      const st1 = d.in(1, FILL);
      const u1 = d.request([d.out(header(a, M_RD)), d.out(Uint8Array.of(0)), st1], { queue: I2C_REQUESTQ });
      const st2 = d.in(1, FILL);
      const data2 = d.in(2, FILL);
      const u2 = d.request([d.out(header(a, 0)), data2, st2], { queue: I2C_REQUESTQ });
      const s1 = d.bytes(st1)[0];
      const s2 = d.bytes(st2)[0];
      if (u1.len !== 1 || s1 !== ERR) return fail(`M_RD with a readable buffer: used length ${u1.len}, status ${s1}; expected 1, ERR`);
      if (u2.len > 3 || d.bytes(st2)[0] !== ERR) return fail(`a write with a writable buffer: used length ${u2.len}, status ${s2}; expected ERR`);
      const still = run(d, writeSeg(d, a, new Uint8Array(0)));
      return still === OK ? reject(`both refused with ERR at ${hex(a)}; the device still answers`) : fail(`${hex(a)} no longer answers: ${still}`);
    },
  },
  {
    id: 'i2c.ten-bit',
    title: 'A 10-bit address completes with a status (a device that does not support them NACKs)',
    source: `${SPEC} (the 10-bit address format: A7..A0 in bits 15-8, 11110 A9 A8 0 in bits 7-0)`,
    level: 'MUST',
    group: 'hostile',
    devices: ['i2c'],
    run(d) {
      d.start();
      const status = d.in(1, FILL);
      // 10-bit address 0x150: A7..A0 = 0x50, bits 7-0 = 11110 01 0.
      const used = d.request([d.out(header(0, 0, (0x50 << 8) | 0xf2)), status], { queue: I2C_REQUESTQ });
      const s = d.bytes(status)[0];
      if (used.len !== 1 || (s !== OK && s !== ERR)) return fail(`used length ${used.len}, status ${s}`);
      return s === ERR ? reject('10-bit address 0x150: ERR (not supported)') : pass('10-bit address 0x150: OK');
    },
  },
  {
    id: 'i2c.huge-read',
    title: 'A read into a 1 MiB buffer completes without overrunning it, and the device goes on',
    source: 'VIRTIO 1.3 §2.7.4 (the device writes only device-writable buffers); AVP: no allocation by a guest-claimed length',
    level: 'MUST',
    group: 'hostile',
    devices: ['i2c'],
    run(d) {
      d.start({ queueSize: 64 });
      const s = scan(d);
      if (typeof s === 'string') return fail(s);
      const a = s.acked[0] ?? 0x50;
      const status = d.in(1, FILL);
      const used = d.request([d.out(header(a, M_RD)), d.in(1 << 20, FILL), status], { queue: I2C_REQUESTQ });
      const st = d.bytes(status)[0];
      if (st !== OK && st !== ERR) return fail(`status byte ${st}`);
      if (used.len > (1 << 20) + 1) return fail(`used length ${used.len} past the buffer`);
      const still = run(d, writeSeg(d, a, new Uint8Array(0)));
      if (typeof still === 'string') return fail(`afterwards: ${still}`);
      return st === ERR ? reject(`refused (ERR), used length ${used.len}; the device still answers`) : pass(`read 1 MiB from ${hex(a)}`);
    },
  },
  {
    id: 'i2c.zero-length-required',
    title: 'A driver that does not accept ZERO_LENGTH_REQUEST is refused',
    source: 'VIRTIO 1.3 §5.21.6 device requirements ("A device MUST offer the VIRTIO_I2C_F_ZERO_LENGTH_REQUEST feature and MUST reject any driver that doesn\'t negotiate this feature")',
    level: 'MUST',
    group: 'device',
    devices: ['i2c'],
    run(d) {
      if (!hasFeature(d.offeredFeatures, VIRTIO_I2C_F_ZERO_LENGTH_REQUEST)) return fail('VIRTIO_I2C_F_ZERO_LENGTH_REQUEST is not offered');
      try {
        d.start({ features: DEFAULT_DRIVER_FEATURES & ~featureBit(VIRTIO_I2C_F_ZERO_LENGTH_REQUEST) });
        const r = run(d, writeSeg(d, 0x50, new Uint8Array(0)));
        return fail(`the device served a driver without the feature (status ${r})`);
      } catch (e: unknown) {
        return reject(`refused: ${e instanceof Error ? e.message.slice(0, 120) : String(e)}`);
      }
    },
  },
];

export const i2cConformance: DeviceConformance = {
  device: 'i2c',
  deviceId: I2C_DEVICE_ID,
  configSize: 0,
  probeQueue: I2C_REQUESTQ,
  probe(d) {
    const seg = writeSeg(d, 0x50, new Uint8Array(0));
    return {
      buffers: seg.buffers,
      verify(used) {
        const s = d.bytes(seg.status)[0];
        if (used.len !== 1) return `used length ${used.len}, expected 1 (the status byte)`;
        return s === OK || s === ERR ? null : `status byte ${s}`;
      },
    };
  },
  wrongDirection(d) {
    // The header itself in a device-writable buffer: nothing to read, so no request.
    const buf = d.in(9, 0x5c);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('not returned; the device kept serving');
        return used.len === 0 ? pass('returned with used length 0') : fail(`used length ${used.len} for a chain without a request header`);
      },
    };
  },
  checks,
};
