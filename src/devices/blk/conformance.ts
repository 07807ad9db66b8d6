// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk's part of the conformance suite (VIRTIO 1.3 §5.2; AVPS-BLK-02, AVPS-BLK-03 in
 * shared/reference/avps-and-virtio-catalog.md §2.3), written against the transport-agnostic
 * `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe request (a one-sector read), the wrong-direction request (a read whose data
 * buffer is device-readable), and the blk checks: capacity in config space, read/write round trip,
 * used length of a read, FLUSH, GET_ID, DISCARD and WRITE_ZEROES semantics and their flag rules,
 * out-of-range sectors, read-only behaviour, unsupported request types, arbitrary descriptor
 * layouts, and the read-only capacity field under SET_CONFIG.
 * Does not own: running checks or any transport.
 *
 * The checks write to the image: sectors 8-15, 64-71 and the last sector. Each check reads what
 * was there first and writes it back at the end, so an image keeps its contents (discarded ranges
 * are rewritten too).
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { hasFeature } from '../../spec/virtio.js';
import {
  BLK_DEVICE_ID,
  VIRTIO_BLK_CONFIG_OFF,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_F_ZONED,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
  virtioBlkConfig,
  virtioBlkDiscardWriteZeroes,
  virtioBlkReqHeader,
} from './spec.js';

const OP = 'VIRTIO 1.3 §5.2.6 Device Operation';
const OP_DEV = 'VIRTIO 1.3 §5.2.6.2 Device Requirements: Device Operation';
/** Value writable buffers are primed with, so untouched bytes show. */
const FILL = 0xee;
/** VIRTIO_BLK_T_ZONE_REPORT (§5.2.6, zoned devices only). */
const VIRTIO_BLK_T_ZONE_REPORT = 16;
/** Where read/write checks work (4 KiB in), and where discard checks work. */
const RW_SECTOR = 8;
const RANGE_SECTOR = 64;

const STATUS_NAMES: Readonly<Record<number, string>> = { [VIRTIO_BLK_S_OK]: 'OK', [VIRTIO_BLK_S_IOERR]: 'IOERR', [VIRTIO_BLK_S_UNSUPP]: 'UNSUPP', [FILL]: 'not written' };

function statusName(s: number): string {
  return STATUS_NAMES[s] ?? `status ${s}`;
}

function header(type: number, sector: number): Uint8Array {
  const b = new Uint8Array(virtioBlkReqHeader.size);
  virtioBlkReqHeader.encode({ type, reserved: 0, sector }, new DataView(b.buffer), 0);
  return b;
}

function segment(sector: number, numSectors: number, flags: number): Uint8Array {
  const b = new Uint8Array(virtioBlkDiscardWriteZeroes.size);
  virtioBlkDiscardWriteZeroes.encode({ sector, numSectors, flags }, new DataView(b.buffer), 0);
  return b;
}

/** A pattern that differs per byte and per seed. */
function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + (i >> 8)) & 0xff);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface Reply {
  status: number;
  len: number;
  data: Uint8Array;
}

/** Sends one request: header, optional readable data, optional writable data, status byte. */
function submit(d: ConformanceDriver, type: number, sector: number, opts: { out?: Uint8Array; inLen?: number } = {}): Reply {
  const bufs: DriverBuffer[] = [d.out(header(type, sector))];
  if (opts.out !== undefined) bufs.push(d.out(opts.out));
  const data = opts.inLen !== undefined ? d.in(opts.inLen, FILL) : undefined;
  if (data !== undefined) bufs.push(data);
  const status = d.in(1, FILL);
  bufs.push(status);
  const used = d.request(bufs);
  return { status: d.bytes(status)[0] ?? FILL, len: used.len, data: data === undefined ? new Uint8Array(0) : d.bytes(data) };
}

const read = (d: ConformanceDriver, sector: number, len: number) => submit(d, VIRTIO_BLK_T_IN, sector, { inLen: len });
const write = (d: ConformanceDriver, sector: number, data: Uint8Array) => submit(d, VIRTIO_BLK_T_OUT, sector, { out: data });
const ranges = (d: ConformanceDriver, type: number, sector: number, n: number, flags: number) => submit(d, type, 0, { out: segment(sector, n, flags) });

/** Capacity in sectors from config space, or why it cannot be read. */
function capacity(d: ConformanceDriver): number | string {
  if (!d.hasConfigAccess) return 'config space cannot be read over this connection (no CONFIG protocol feature)';
  const raw = d.readConfig(0, VIRTIO_BLK_CONFIG_SIZE);
  if (raw === null || raw.length < 8) return 'GET_CONFIG of the virtio-blk config space failed';
  return virtioBlkConfig.decode(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), 0).capacity;
}

const offers = (d: ConformanceDriver, bit: number): boolean => hasFeature(d.offeredFeatures, bit);

/** Reads `len` bytes at `sector` expecting OK; the data or why not. */
function readOk(d: ConformanceDriver, sector: number, len: number): Uint8Array | string {
  const r = read(d, sector, len);
  return r.status === VIRTIO_BLK_S_OK ? r.data : `read of sector ${sector} answered ${statusName(r.status)}`;
}

/** Runs `body` with the original contents of [sector, +len) written back afterwards. */
function preserving(d: ConformanceDriver, sector: number, len: number, body: () => CheckOutcome): CheckOutcome {
  const saved = readOk(d, sector, len);
  if (typeof saved === 'string') return fail(saved);
  const result = body();
  const restored = write(d, sector, saved);
  if (restored.status !== VIRTIO_BLK_S_OK && result.verdict === 'PASS') return fail(`restoring sector ${sector} answered ${statusName(restored.status)}`);
  return result;
}

/**
 * A write the device must refuse: it is answered IOERR and the `watched` bytes at `sector` read
 * the same before and after. `say` words the two failures.
 */
function refusedWrite(d: ConformanceDriver, w: { sector: number; data: Uint8Array; watched: number }, say: { status: (name: string) => string; changed: string }): CheckOutcome {
  const before = readOk(d, w.sector, w.watched);
  if (typeof before === 'string') return fail(before);
  const r = write(d, w.sector, w.data);
  if (r.status !== VIRTIO_BLK_S_IOERR) return fail(say.status(statusName(r.status)));
  const after = readOk(d, w.sector, w.watched);
  if (typeof after === 'string') return fail(after);
  return sameBytes(before, after) ? pass() : fail(say.changed);
}

function needsWritable(d: ConformanceDriver): CheckOutcome | null {
  return offers(d, VIRTIO_BLK_F_RO) ? skip('the device is read-only (VIRTIO_BLK_F_RO)') : null;
}

/** DISCARD and WRITE_ZEROES change data: on a read-only device they are writes (IOERR, see blk.read-only). */
function needsRangeOp(d: ConformanceDriver, bit: number, name: string): CheckOutcome | null {
  if (!offers(d, bit)) return skip(`${name} is not offered`);
  return needsWritable(d);
}

const checks: DeviceCheck[] = [
  {
    id: 'blk.config.capacity',
    title: 'Config space gives a non-zero capacity, and its last sector can be read',
    source: 'VIRTIO 1.3 §5.2.4 Device configuration layout (capacity in 512-byte sectors)',
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const cap = capacity(d);
      if (typeof cap === 'string') return skip(cap);
      if (cap < 1) return fail(`capacity is ${cap}`);
      const last = readOk(d, cap - 1, VIRTIO_BLK_SECTOR_SIZE);
      if (typeof last === 'string') return fail(last);
      return pass(`capacity ${cap} sectors (${(cap * VIRTIO_BLK_SECTOR_SIZE) / (1 << 20)} MiB)`);
    },
  },
  {
    id: 'blk.read-write',
    title: 'Data written with OUT reads back the same with IN',
    source: `${OP} (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT); AVPS-BLK-03`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const ro = needsWritable(d);
      if (ro !== null) return ro;
      return preserving(d, RW_SECTOR, 4096, () => {
        const data = pattern(4096, 1);
        const w = write(d, RW_SECTOR, data);
        if (w.status !== VIRTIO_BLK_S_OK) return fail(`write answered ${statusName(w.status)}`);
        const back = readOk(d, RW_SECTOR, 4096);
        if (typeof back === 'string') return fail(back);
        return sameBytes(back, data) ? pass('4 KiB at sector 8') : fail('the data read back differs from the data written');
      });
    },
  },
  {
    id: 'blk.read.used-len',
    title: 'The used length of a 4 KiB read is 4097: the data and the status byte',
    source: 'VIRTIO 1.3 §2.7.8 The Virtqueue Used Ring (len: "the total of bytes written into the buffer"); §5.2.6',
    level: 'SHOULD',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const r = read(d, 0, 4096);
      if (r.status !== VIRTIO_BLK_S_OK) return fail(`read answered ${statusName(r.status)}`);
      if (r.len > 4097) return fail(`used length ${r.len} is more than the 4097 writable bytes`);
      return r.len === 4097 ? pass() : fail(`used length ${r.len}; the device wrote 4096 data bytes and the status byte`);
    },
  },
  {
    id: 'blk.flush',
    title: 'With VIRTIO_BLK_F_FLUSH, a FLUSH request completes OK',
    source: `${OP_DEV} (stable writes after a completed VIRTIO_BLK_T_FLUSH); AVPS-BLK-03`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      if (!offers(d, VIRTIO_BLK_F_FLUSH)) return skip('VIRTIO_BLK_F_FLUSH is not offered');
      const r = submit(d, VIRTIO_BLK_T_FLUSH, 0);
      return r.status === VIRTIO_BLK_S_OK ? pass() : fail(`FLUSH answered ${statusName(r.status)}`);
    },
  },
  {
    id: 'blk.get-id',
    title: 'GET_ID returns a NUL-padded ASCII string of at most 20 bytes',
    source: `${OP} ("The device ID string is a NUL-padded ASCII string up to 20 bytes long")`,
    level: 'SHOULD',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const r = submit(d, VIRTIO_BLK_T_GET_ID, 0, { inLen: VIRTIO_BLK_ID_BYTES });
      if (r.status === VIRTIO_BLK_S_UNSUPP) return skip('GET_ID answered UNSUPP');
      if (r.status !== VIRTIO_BLK_S_OK) return fail(`GET_ID answered ${statusName(r.status)}`);
      const nul = r.data.indexOf(0);
      const text = nul < 0 ? r.data : r.data.subarray(0, nul);
      if (!text.every((c) => c >= 0x20 && c < 0x7f)) return fail(`the ID holds non-printable bytes: [${[...r.data].join(',')}]`);
      if (nul >= 0 && !r.data.subarray(nul).every((c) => c === 0)) return fail(`the ID is not NUL-padded after byte ${nul}: [${[...r.data].join(',')}]`);
      return pass(`ID ${JSON.stringify(String.fromCharCode(...text))}`);
    },
  },
  {
    id: 'blk.discard',
    title: 'With VIRTIO_BLK_F_DISCARD, a DISCARD (TRIM) of 8 sectors completes OK',
    source: `AVPS-BLK-02 (the back-end shall carry out block-erase/TRIM commands); ${OP} (VIRTIO_BLK_T_DISCARD)`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const no = needsRangeOp(d, VIRTIO_BLK_F_DISCARD, 'VIRTIO_BLK_F_DISCARD');
      if (no !== null) return no;
      return preserving(d, RANGE_SECTOR, 4096, () => {
        const r = ranges(d, VIRTIO_BLK_T_DISCARD, RANGE_SECTOR, 8, 0);
        return r.status === VIRTIO_BLK_S_OK ? pass() : fail(`DISCARD answered ${statusName(r.status)}`);
      });
    },
  },
  {
    id: 'blk.discard.unmap-flag',
    title: 'A DISCARD with the unmap flag set is answered UNSUPP',
    source: `${OP_DEV} ("the device MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard commands if the unmap flag is set")`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const no = needsRangeOp(d, VIRTIO_BLK_F_DISCARD, 'VIRTIO_BLK_F_DISCARD');
      if (no !== null) return no;
      return preserving(d, RANGE_SECTOR, 4096, () => {
        const r = ranges(d, VIRTIO_BLK_T_DISCARD, RANGE_SECTOR, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
        return r.status === VIRTIO_BLK_S_UNSUPP ? pass() : fail(`answered ${statusName(r.status)}`);
      });
    },
  },
  {
    id: 'blk.write-zeroes',
    title: 'With VIRTIO_BLK_F_WRITE_ZEROES, written sectors read back as zeros after WRITE_ZEROES (with and without unmap)',
    source: `${OP_DEV} ("After a write zeroes command is completed, reads of the specified ranges of sectors MUST return zeroes ... independent of whether unmap was set")`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const no = needsRangeOp(d, VIRTIO_BLK_F_WRITE_ZEROES, 'VIRTIO_BLK_F_WRITE_ZEROES');
      if (no !== null) return no;
      return preserving(d, RANGE_SECTOR, 4096, () => {
        for (const flags of [0, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP]) {
          const w = write(d, RANGE_SECTOR, pattern(4096, 2 + flags));
          if (w.status !== VIRTIO_BLK_S_OK) return fail(`write answered ${statusName(w.status)}`);
          const z = ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, RANGE_SECTOR, 8, flags);
          if (z.status !== VIRTIO_BLK_S_OK) return fail(`WRITE_ZEROES (flags ${flags}) answered ${statusName(z.status)}`);
          const back = readOk(d, RANGE_SECTOR, 4096);
          if (typeof back === 'string') return fail(back);
          if (!back.every((b) => b === 0)) return fail(`after WRITE_ZEROES (flags ${flags}) the range does not read as zeros`);
        }
        return pass('8 sectors, unmap 0 and 1');
      });
    },
  },
  {
    id: 'blk.reserved-flags',
    title: 'DISCARD / WRITE_ZEROES with a reserved flag bit set are answered UNSUPP',
    source: `${OP_DEV} ("MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard, secure erase and write zeroes commands if any unknown flag is set")`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const types = [
        [VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_T_DISCARD, 'DISCARD'],
        [VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_T_WRITE_ZEROES, 'WRITE_ZEROES'],
      ] as const;
      const tried = types.filter(([bit]) => offers(d, bit));
      if (tried.length === 0) return skip('neither DISCARD nor WRITE_ZEROES is offered');
      const ro = needsWritable(d);
      if (ro !== null) return ro;
      return preserving(d, RANGE_SECTOR, 4096, () => {
        for (const [, type, name] of tried) {
          const r = ranges(d, type, RANGE_SECTOR, 8, 0x2);
          if (r.status !== VIRTIO_BLK_S_UNSUPP) return fail(`${name} with flag bit 1 answered ${statusName(r.status)}`);
        }
        return pass(tried.map(([, , n]) => n).join(' and '));
      });
    },
  },
  {
    id: 'blk.out-of-range.read',
    title: 'Reads at the capacity, or across it, are answered IOERR',
    source: `${OP} (VIRTIO_BLK_S_IOERR "for device or driver error"); VIRTIO 1.3 §5.2.6.1 (a driver MUST NOT read or write beyond capacity)`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const cap = capacity(d);
      if (typeof cap === 'string') return skip(cap);
      for (const [sector, len] of [
        [cap, 512],
        [cap - 1, 1024],
        [cap + 1_000_000, 512],
      ] as const) {
        const r = read(d, sector, len);
        if (r.status !== VIRTIO_BLK_S_IOERR) return fail(`read of ${len} bytes at sector ${sector} (capacity ${cap}) answered ${statusName(r.status)}`);
      }
      return pass(`capacity ${cap}: reads at ${cap}, ${cap - 1} (+2 sectors) and ${cap + 1_000_000} answered IOERR`);
    },
  },
  {
    id: 'blk.out-of-range.write',
    title: 'A write across the capacity is answered IOERR and writes nothing',
    source: `${OP} (VIRTIO_BLK_S_IOERR "for device or driver error"); VIRTIO 1.3 §5.2.6.1`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const ro = needsWritable(d);
      if (ro !== null) return ro;
      const cap = capacity(d);
      if (typeof cap === 'string') return skip(cap);
      return preserving(d, cap - 1, 512, () =>
        refusedWrite(d, { sector: cap - 1, data: pattern(1024, 3), watched: 512 }, {
          status: (s) => `a 2-sector write at sector ${cap - 1} (capacity ${cap}) answered ${s}`,
          changed: 'the last sector changed although the write was refused',
        }),
      );
    },
  },
  {
    id: 'blk.read-only',
    title: 'With VIRTIO_BLK_F_RO, a write is answered IOERR and changes nothing',
    source: `${OP_DEV} ("A device MUST set the status byte to VIRTIO_BLK_S_IOERR for a write request if the VIRTIO_BLK_F_RO feature if offered, and MUST NOT write any data")`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      if (!offers(d, VIRTIO_BLK_F_RO)) return skip('the device is writable (VIRTIO_BLK_F_RO not offered)');
      return refusedWrite(d, { sector: RW_SECTOR, data: pattern(4096, 4), watched: 4096 }, {
        status: (s) => `write answered ${s}`,
        changed: 'the data changed although the device is read-only',
      });
    },
  },
  {
    id: 'blk.unsupported-type',
    title: 'A zoned request type without VIRTIO_BLK_F_ZONED is answered UNSUPP',
    source: `${OP_DEV} ("If the VIRTIO_BLK_F_ZONED feature is not negotiated, the device MUST reject VIRTIO_BLK_T_ZONE_REPORT ... with VIRTIO_BLK_S_UNSUPP status")`,
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      if (hasFeature(d.features, VIRTIO_BLK_F_ZONED)) return skip('VIRTIO_BLK_F_ZONED is negotiated');
      const r = submit(d, VIRTIO_BLK_T_ZONE_REPORT, 0, { inLen: 4096 });
      return r.status === VIRTIO_BLK_S_UNSUPP ? pass() : fail(`ZONE_REPORT answered ${statusName(r.status)}`);
    },
  },
  {
    id: 'blk.layout.any',
    title: 'A read laid out over many descriptors (split header, split data, status sharing the last data descriptor) is served',
    source: 'VIRTIO 1.3 §2.7.4.1 Device Requirements: Message Framing ("The device MUST NOT make assumptions about the particular arrangement of descriptors")',
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const plain = readOk(d, 0, 4096);
      if (typeof plain === 'string') return fail(plain);
      const hdr = header(VIRTIO_BLK_T_IN, 0);
      const a = d.in(1000, FILL);
      const b = d.in(3097, FILL);
      const used = d.request([d.out(hdr.subarray(0, 4)), d.out(hdr.subarray(4, 16)), a, b]);
      const data = new Uint8Array([...d.bytes(a), ...d.bytes(b)]);
      const status = data[4096];
      if (status !== VIRTIO_BLK_S_OK) return fail(`answered ${statusName(status ?? FILL)} (header in 4 + 12 bytes, data + status in 1000 + 3097 bytes)`);
      if (!sameBytes(data.subarray(0, 4096), plain)) return fail('the data differs from the same read laid out plainly');
      return used.len <= 4097 ? pass(`used length ${used.len}`) : fail(`used length ${used.len} of 4097 writable bytes`);
    },
  },
  {
    id: 'blk.config.capacity-readonly',
    title: 'SET_CONFIG cannot change the read-only capacity field',
    source: 'vhost-user.rst VHOST_USER_SET_CONFIG ("back-ends MUST NOT accept SET_CONFIG for read-only configuration space fields unless the live migration bit is set"); VIRTIO 1.3 §5.2.4',
    level: 'MUST',
    group: 'device',
    devices: ['blk'],
    run(d) {
      d.start();
      const cap = capacity(d);
      if (typeof cap === 'string') return skip(cap);
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(cap) + 1000n, true);
      const how = d.writeConfig(VIRTIO_BLK_CONFIG_OFF.capacity, bytes);
      if (how === 'closed') return reject('the back-end answered the write to capacity by closing the connection');
      const after = capacity(d);
      if (typeof after === 'string') return fail(`after SET_CONFIG: ${after}`);
      if (after !== cap) return fail(`capacity changed from ${cap} to ${after}`);
      return pass(how === 'refused' ? 'the write was refused (failure ack); capacity unchanged' : `capacity unchanged (the write was ${how}${how === 'accepted' ? ' with ack 0, though nothing changed' : ''})`);
    },
  },
];

export const blkConformance: DeviceConformance = {
  device: 'blk',
  deviceId: BLK_DEVICE_ID,
  configSize: VIRTIO_BLK_CONFIG_SIZE,
  probeQueue: 0,
  probe(d) {
    const status = d.in(1, FILL);
    const buffers = [d.out(header(VIRTIO_BLK_T_IN, 0)), d.in(VIRTIO_BLK_SECTOR_SIZE, FILL), status];
    return {
      buffers,
      verify(used) {
        const s = d.bytes(status)[0] ?? FILL;
        if (s !== VIRTIO_BLK_S_OK) return `a read of sector 0 answered ${statusName(s)}`;
        return used.len <= VIRTIO_BLK_SECTOR_SIZE + 1 ? null : `used length ${used.len} of ${VIRTIO_BLK_SECTOR_SIZE + 1} writable bytes`;
      },
    };
  },
  wrongDirection(d) {
    // A read whose data buffer is device-readable: the device must not write into it (§2.7.5.1).
    const status = d.in(1, FILL);
    const buffers = [d.out(header(VIRTIO_BLK_T_IN, 0)), d.out(new Uint8Array(VIRTIO_BLK_SECTOR_SIZE).fill(0x5c)), status];
    return {
      buffers,
      judge(used) {
        if (used === null) return reject('the read with a device-readable data buffer was not returned; the device kept serving');
        return pass(`answered ${statusName(d.bytes(status)[0] ?? FILL)}; the device-readable data buffer was left alone`);
      },
    };
  },
  checks,
};
