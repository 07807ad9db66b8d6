// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-vsock's part of the conformance suite (VIRTIO 1.3 §5.10), written against the
 * transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe (an RST for a flow that does not exist, on the tx queue: the device must take it
 * and answer nothing, so probes never pile up replies), the wrong-direction request (a tx chain with
 * no device-readable header), and the vsock checks: the config space holds a usable guest CID, the
 * offered features, RST answers to a packet of unknown type and to a connection request nobody
 * listens for, and hostile headers (truncated, lying about their length, a spoofed source CID)
 * that must neither crash nor wedge the device; and vsock headers built and read field by field
 * (also used by the unit tests, through testing.ts).
 * Does not own: running checks, transports.
 *
 * Replies come on the rx queue, into buffers the driver posts; a driver request blocks until the
 * buffer is used, so a check posts an rx buffer only when the device owes it a packet. Checks need
 * config access (the guest CID is the source CID of every packet) and skip without it.
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { featureBit } from '../../spec/virtio.js';
import {
  VIRTIO_VSOCK_CONFIG_SIZE,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_SEQPACKET,
  VIRTIO_VSOCK_F_STREAM,
  VSOCK_DEVICE_ID,
  VSOCK_EVENT_QUEUE,
  VSOCK_RX_QUEUE,
  VSOCK_TX_QUEUE,
  type VirtioVsockHdr,
} from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.10';
const HDR = 44;
const TYPE_STREAM = 1;
/** A host port nobody is expected to listen on. */
const UNUSED_PORT = 0xffff_ff00;

/** A vsock header as plain numbers: the spec struct's fields (its bytes are built here, never by the codec under test). */
export type Hdr = VirtioVsockHdr;

/** `op` values (§5.10.6). */
export const OP = { REQUEST: 1, RESPONSE: 2, RST: 3, SHUTDOWN: 4, RW: 5, CREDIT_UPDATE: 6, CREDIT_REQUEST: 7 } as const;

/** `struct virtio_vsock_hdr` bytes, each offset written out (§5.10.6), independent of the device's codec in spec.ts. */
export function hdrBytes(h: Hdr): Uint8Array {
  const b = new Uint8Array(HDR);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, h.src_cid, true);
  v.setBigUint64(8, h.dst_cid, true);
  v.setUint32(16, h.src_port, true);
  v.setUint32(20, h.dst_port, true);
  v.setUint32(24, h.len, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags, true);
  v.setUint32(36, h.buf_alloc, true);
  v.setUint32(40, h.fwd_cnt, true);
  return b;
}

/** The header at the start of `b`, field by field. */
export function parseHdr(b: Uint8Array): Hdr {
  const v = new DataView(b.buffer, b.byteOffset, HDR);
  return {
    src_cid: v.getBigUint64(0, true),
    dst_cid: v.getBigUint64(8, true),
    src_port: v.getUint32(16, true),
    dst_port: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    buf_alloc: v.getUint32(36, true),
    fwd_cnt: v.getUint32(40, true),
  };
}

/** A packet header from a driver without credit state (flags 0, buf_alloc 64 KiB, fwd_cnt 0). */
function packet(h: Omit<Hdr, 'flags' | 'buf_alloc' | 'fwd_cnt'>): Uint8Array {
  return hdrBytes({ flags: 0, buf_alloc: 65536, fwd_cnt: 0, ...h });
}

/** The guest CID from config space, or a reason it cannot be used. */
function guestCid(d: ConformanceDriver): bigint | string {
  if (!d.hasConfigAccess) return 'no config access over this transport';
  const cfg = d.readConfig(0, VIRTIO_VSOCK_CONFIG_SIZE);
  if (cfg === null || cfg.length !== VIRTIO_VSOCK_CONFIG_SIZE) return 'the device did not return its 8-byte config space';
  return new DataView(cfg.buffer, cfg.byteOffset, 8).getBigUint64(0, true);
}

/** Sends one packet on tx; the device must complete it with used length 0 (it writes nothing). */
function send(d: ConformanceDriver, bytes: Uint8Array): string | null {
  const used = d.request([d.out(bytes)], { queue: VSOCK_TX_QUEUE });
  return used.len === 0 ? null : `tx chain completed with used length ${used.len}; the device writes nothing into tx buffers`;
}

/** Posts one rx buffer and returns the packet the device put there. */
function receive(d: ConformanceDriver): Hdr | string {
  const buf = d.in(HDR + 4096, 0xee);
  const used = d.request([buf], { queue: VSOCK_RX_QUEUE });
  if (used.len < HDR || used.len > buf.len) return `rx buffer used with length ${used.len}`;
  return parseHdr(d.bytes(buf).subarray(0, HDR));
}

/** Runs `body` with the started driver and the guest CID, or skips without config access. */
function withCid(d: ConformanceDriver, body: (cid: bigint) => CheckOutcome): CheckOutcome {
  d.start();
  const cid = guestCid(d);
  return typeof cid === 'string' ? skip(cid) : body(cid);
}

/** An RST is owed for the flow (cid:srcPort → dst): is the packet received it? */
function isRstFor(h: Hdr | string, cid: bigint, srcPort: number): string | null {
  if (typeof h === 'string') return h;
  if (h.op !== OP.RST) return `expected RST, got op ${h.op}`;
  if (h.dst_cid !== cid || h.dst_port !== srcPort) return `RST addressed to ${h.dst_cid}:${h.dst_port}, not to the sender ${cid}:${srcPort}`;
  return null;
}

const checks: DeviceCheck[] = [
  {
    id: 'vsock.config-cid',
    title: 'guest_cid is a usable CID: not 0, 1, 2 or 0xffffffff, upper 32 bits zero',
    source: `${SPEC}.4 ("The guest_cid configuration field MUST NOT contain a reserved CID"; "The upper 32 bits of the CID are reserved and zeroed")`,
    level: 'MUST',
    group: 'device',
    devices: ['vsock'],
    run: (d) =>
      withCid(d, (cid) => {
        if (cid >> 32n !== 0n) return fail(`guest_cid 0x${cid.toString(16)} has upper bits set`);
        if (cid <= 2n || cid === 0xffff_ffffn) return fail(`guest_cid ${cid} is reserved`);
        return pass(`guest_cid ${cid}`);
      }),
  },
  {
    id: 'vsock.features',
    title: 'The device offers NO_IMPLIED_STREAM, and a socket type (STREAM, SEQPACKET, or none: stream implied)',
    source: `${SPEC}.3.2 ("The device SHOULD offer the VIRTIO_VSOCK_F_NO_IMPLIED_STREAM feature")`,
    level: 'SHOULD',
    group: 'device',
    devices: ['vsock'],
    run(d) {
      const f = d.offeredFeatures;
      const has = (bit: number): boolean => (f & featureBit(bit)) !== 0n;
      if (has(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM) && !has(VIRTIO_VSOCK_F_STREAM) && !has(VIRTIO_VSOCK_F_SEQPACKET)) return fail('NO_IMPLIED_STREAM without STREAM or SEQPACKET leaves no socket type');
      if (!has(VIRTIO_VSOCK_F_NO_IMPLIED_STREAM)) return fail('NO_IMPLIED_STREAM is not offered');
      return pass(`offered 0x${f.toString(16)}`);
    },
  },
  {
    id: 'vsock.rst-unknown-type',
    title: 'A packet of unknown type gets an RST reply',
    source: `${SPEC}.6.4.2 Device Requirements ("A VIRTIO_VSOCK_OP.RST reply MUST be sent if a packet is received with an unknown type value")`,
    level: 'MUST',
    group: 'device',
    devices: ['vsock'],
    run: (d) =>
      withCid(d, (cid) => {
        const bad = send(d, packet({ src_cid: cid, dst_cid: 2n, src_port: 40_001, dst_port: UNUSED_PORT, len: 0, type: 0x99, op: OP.REQUEST }));
        if (bad !== null) return fail(bad);
        const why = isRstFor(receive(d), cid, 40_001);
        return why === null ? pass('RST') : fail(why);
      }),
  },
  {
    id: 'vsock.rst-no-listener',
    title: 'A connection request to a host port nobody listens on gets an RST',
    source: `${SPEC}.6.5 Stream Sockets ("A VIRTIO_VSOCK_OP.RST reply is sent if a listening socket does not exist on the destination")`,
    level: 'MUST',
    group: 'device',
    devices: ['vsock'],
    run: (d) =>
      withCid(d, (cid) => {
        const bad = send(d, packet({ src_cid: cid, dst_cid: 2n, src_port: 40_002, dst_port: UNUSED_PORT, len: 0, type: TYPE_STREAM, op: OP.REQUEST }));
        if (bad !== null) return fail(bad);
        const why = isRstFor(receive(d), cid, 40_002);
        return why === null ? pass('RST') : fail(why);
      }),
  },
  {
    id: 'vsock.hostile-headers',
    title: 'Truncated headers, lengths beyond the buffer and spoofed source CIDs are refused; the device goes on',
    source: `${SPEC}.6 (len is the payload size); ${SPEC}.6.4.1 ("guest_cid ... MUST be used as the source CID"); DESIGN.md "Guest input is hostile"`,
    level: 'MUST',
    group: 'hostile',
    devices: ['vsock'],
    run: (d) =>
      withCid(d, (cid) => {
        const problems = [
          send(d, new Uint8Array(10)),
          send(d, packet({ src_cid: cid, dst_cid: 2n, src_port: 40_003, dst_port: UNUSED_PORT, len: 1 << 20, type: TYPE_STREAM, op: 5 })),
          send(d, packet({ src_cid: cid + 1n, dst_cid: 2n, src_port: 40_004, dst_port: UNUSED_PORT, len: 0, type: TYPE_STREAM, op: OP.REQUEST })),
        ].filter((p): p is string => p !== null);
        if (problems.length > 0) return fail(problems.join('; '));
        // Drain what the device owes (an RST each for the bad length and the spoofed source, at
        // most), then show it still answers: a request to a closed port gets its RST.
        const marker = send(d, packet({ src_cid: cid, dst_cid: 2n, src_port: 40_005, dst_port: UNUSED_PORT, len: 0, type: TYPE_STREAM, op: OP.REQUEST }));
        if (marker !== null) return fail(marker);
        for (let i = 0; i < 3; i++) {
          const h = receive(d);
          if (typeof h === 'string') return fail(h);
          if (h.op !== OP.RST) return fail(`a hostile packet was answered with op ${h.op}, not RST`);
          if (h.dst_port === 40_005) return reject(`refused (${i} RST before the marker's); the device still serves`);
        }
        return fail('no answer to a valid request after the hostile packets');
      }),
  },
];

export const vsockConformance: DeviceConformance = {
  device: 'vsock',
  deviceId: VSOCK_DEVICE_ID,
  configSize: VIRTIO_VSOCK_CONFIG_SIZE,
  probeQueue: VSOCK_TX_QUEUE,
  // Replies come on rx; the event queue is set up as a driver does, though no check uses it.
  queues: [VSOCK_RX_QUEUE, VSOCK_TX_QUEUE, VSOCK_EVENT_QUEUE],
  probe(d) {
    // An RST for no flow: the device takes it and owes nothing back (never RST an RST).
    const cid = d.hasConfigAccess ? guestCid(d) : 3n;
    const buf = d.out(packet({ src_cid: typeof cid === 'string' ? 3n : cid, dst_cid: 2n, src_port: 40_000, dst_port: UNUSED_PORT, len: 0, type: TYPE_STREAM, op: OP.RST }));
    return { buffers: [buf], verify: (used) => (used.len === 0 ? null : `tx chain used with length ${used.len}`) };
  },
  wrongDirection(d) {
    // A tx chain with only a device-writable buffer: no header to read, nothing to write.
    const buf = d.in(64, 0x5c);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('the chain without a header was not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a tx chain; the device writes nothing into tx buffers`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
