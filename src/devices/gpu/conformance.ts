// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu's part of the conformance suite (VIRTIO 1.3 §5.7), written against the
 * transport-agnostic `ConformanceDriver`, replaying what Linux's virtio-gpu driver sends (display
 * info, EDID, a framebuffer resource: create, attach backing, set scanout, transfer, flush) plus a
 * hostile driver: resources too large for any host, rectangles and offsets outside the resource or
 * its backing, backing pages outside guest memory, short requests and short response buffers,
 * unknown and 3D commands.
 *
 * Owns: the probe (GET_DISPLAY_INFO), the wrong-direction request, the gpu checks. Requests and
 * responses are built and read here with DataView, independently of the device's code.
 * Does not own: running checks, transports.
 *
 * Only responses can be judged over the transport: 2D has no way to read a resource back, so
 * pixels are checked by the model's unit tests and the real-guest e2e test.
 */
import { fail, pass, reject, skip, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import { gpuRequest, memEntries } from './driver-wire.js';

const SPEC = 'VIRTIO 1.3 §5.7';
const DEVICE_ID = 16;
const F_EDID = 1n << 1n;
const CONTROLQ = 0;
const CURSORQ = 1;
const CMD = { GET_DISPLAY_INFO: 0x100, CREATE_2D: 0x101, UNREF: 0x102, SET_SCANOUT: 0x103, FLUSH: 0x104, TRANSFER: 0x105, ATTACH: 0x106, DETACH: 0x107, GET_EDID: 0x10a, CTX_CREATE: 0x200, UPDATE_CURSOR: 0x300, MOVE_CURSOR: 0x301 } as const;
const RESP = { OK_NODATA: 0x1100, OK_DISPLAY_INFO: 0x1101, OK_EDID: 0x1104, ERR_UNSPEC: 0x1200, ERR_OUT_OF_MEMORY: 0x1201, ERR_INVALID_SCANOUT_ID: 0x1202, ERR_INVALID_RESOURCE_ID: 0x1203, ERR_INVALID_PARAMETER: 0x1205 } as const;
const NAMES: Record<number, string> = Object.fromEntries(Object.entries(RESP).map(([k, v]) => [v, k]));
const B8G8R8X8 = 2;
const FORMATS = [1, 2, 3, 4, 67, 68, 121, 134];
/** What writable buffers are primed with. */
const FILL = 0xee;

const name = (t: number): string => NAMES[t] ?? `0x${t.toString(16)}`;

/** A request: the 24-byte header (`type`, `flags`, `fence_id`) and u32 fields after it. */
function req(type: number, fields: readonly number[] = [], opts: { flags?: number; fenceId?: bigint; extra?: Uint8Array } = {}): Uint8Array {
  return gpuRequest(type, fields, opts.extra, opts);
}

interface Reply {
  type: number;
  flags: number;
  fenceId: bigint;
  len: number;
  bytes: Uint8Array;
}

/** Sends `request` (plus more readable buffers) with a `respLen`-byte response buffer. */
function send(d: ConformanceDriver, request: Uint8Array, respLen = 24, more: readonly DriverBuffer[] = []): Reply {
  const resp = d.in(respLen, FILL);
  const used = d.request([d.out(request), ...more, resp], { queue: CONTROLQ });
  const bytes = d.bytes(resp);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { type: used.len >= 4 ? v.getUint32(0, true) : -1, flags: used.len >= 8 ? v.getUint32(4, true) : 0, fenceId: used.len >= 16 ? v.getBigUint64(8, true) : 0n, len: used.len, bytes };
}

/** Checks a sequence of [what, reply, expected type]; returns the first mismatch. */
function expectAll(steps: ReadonlyArray<readonly [string, Reply, number]>): string | null {
  for (const [what, r, want] of steps) {
    if (r.type !== want) return `${what}: got ${name(r.type)} (used length ${r.len}), expected ${name(want)}`;
    if (r.len < 24) return `${what}: used length ${r.len}, a response is at least 24 bytes`;
  }
  return null;
}

/** A backing buffer of `bytes` (device-readable: the device only reads backing pages). */
function backing(d: ConformanceDriver, bytes: number): DriverBuffer {
  return d.out(new Uint8Array(bytes).map((_, i) => (i * 7) & 0xff));
}

/** One `virtio_gpu_mem_entry`: addr u64, length u32, padding. */
function entry(addr: bigint, length: number): Uint8Array {
  return memEntries([{ addr, length }]);
}

/** Creates resource `id` of `w` × `h` B8G8R8X8 with a backing; returns the first failure. */
function makeResource(d: ConformanceDriver, id: number, w: number, h: number): string | null {
  const buf = backing(d, w * h * 4);
  return expectAll([
    ['RESOURCE_CREATE_2D', send(d, req(CMD.CREATE_2D, [id, B8G8R8X8, w, h])), RESP.OK_NODATA],
    ['RESOURCE_ATTACH_BACKING', send(d, req(CMD.ATTACH, [id, 1], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.OK_NODATA],
  ]);
}

function numScanouts(d: ConformanceDriver): number {
  const c = d.readConfig(8, 4);
  return c === null ? 1 : new DataView(c.buffer, c.byteOffset, 4).getUint32(0, true);
}

const base = { level: 'MUST' as const, group: 'device' as const, devices: ['gpu'] };
const hostile = { level: 'MUST' as const, group: 'hostile' as const, devices: ['gpu'] };
const both = { queueSize: 16 };

const checks: DeviceCheck[] = [
  {
    ...base,
    id: 'gpu.config',
    title: 'Config: num_scanouts from 1 to 16, no pending events, no capsets without VIRGL',
    source: `${SPEC}.4 ("num_scanouts ... The minimum value is 1, the maximum value is 16")`,
    run(d) {
      d.start(both);
      const c = d.readConfig(0, 16);
      if (c === null) return fail('config space could not be read');
      const v = new DataView(c.buffer, c.byteOffset, 16);
      const [events, scanouts, capsets] = [v.getUint32(0, true), v.getUint32(8, true), v.getUint32(12, true)];
      if (scanouts < 1 || scanouts > 16) return fail(`num_scanouts ${scanouts}`);
      if (events !== 0) return fail(`events_read 0x${events.toString(16)} right after start`);
      if (capsets !== 0 && (d.features & 1n) === 0n) return fail(`num_capsets ${capsets} without VIRGL`);
      return pass(`${scanouts} scanout(s)`);
    },
  },
  {
    ...base,
    id: 'gpu.display-info',
    title: 'GET_DISPLAY_INFO returns OK_DISPLAY_INFO: an enabled mode for each scanout, none past num_scanouts',
    source: `${SPEC}.6.8 VIRTIO_GPU_CMD_GET_DISPLAY_INFO`,
    run(d) {
      d.start(both);
      const n = numScanouts(d);
      const r = send(d, req(CMD.GET_DISPLAY_INFO), 408);
      if (r.type !== RESP.OK_DISPLAY_INFO || r.len !== 408) return fail(`${name(r.type)}, used length ${r.len} (expected OK_DISPLAY_INFO, 408)`);
      const v = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
      const modes: string[] = [];
      for (let i = 0; i < 16; i++) {
        const o = 24 + 24 * i;
        const [w, h, enabled] = [v.getUint32(o + 8, true), v.getUint32(o + 12, true), v.getUint32(o + 16, true)];
        if (i >= n && enabled !== 0) return fail(`scanout ${i} is enabled but num_scanouts is ${n}`);
        if (i < n && enabled !== 0 && (w === 0 || h === 0)) return fail(`scanout ${i} is enabled with size ${w}x${h}`);
        if (i < n) modes.push(`${w}x${h}${enabled ? '' : ' (disabled)'}`);
      }
      return pass(modes.join(', '));
    },
  },
  {
    ...base,
    id: 'gpu.edid',
    title: 'GET_EDID returns a valid EDID block for each scanout and refuses a scanout that does not exist',
    source: `${SPEC}.6.8 VIRTIO_GPU_CMD_GET_EDID; VESA E-EDID header and checksum`,
    run(d) {
      if ((d.offeredFeatures & F_EDID) === 0n) return skip('VIRTIO_GPU_F_EDID not offered');
      d.start(both);
      const n = numScanouts(d);
      for (let i = 0; i < n; i++) {
        const r = send(d, req(CMD.GET_EDID, [i, 0]), 1056);
        if (r.type !== RESP.OK_EDID || r.len !== 1056) return fail(`scanout ${i}: ${name(r.type)}, used length ${r.len}`);
        const size = new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint32(24, true);
        const e = r.bytes.subarray(32, 32 + Math.min(size, 1024));
        const header = [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0];
        if (size < 128 || size > 1024 || size % 128 !== 0) return fail(`scanout ${i}: EDID size ${size}`);
        if (!header.every((b, k) => e[k] === b)) return fail(`scanout ${i}: no EDID header`);
        if (e.subarray(0, 128).reduce((s, b) => s + b, 0) % 256 !== 0) return fail(`scanout ${i}: EDID checksum does not add up`);
      }
      const bad = send(d, req(CMD.GET_EDID, [n, 0]), 1056);
      if (bad.type < RESP.ERR_UNSPEC) return fail(`GET_EDID for scanout ${n} (num_scanouts ${n}) answered ${name(bad.type)}`);
      return pass(`${n} EDID block(s); scanout ${n} refused with ${name(bad.type)}`);
    },
  },
  {
    ...base,
    id: 'gpu.framebuffer',
    title: "Linux's framebuffer sequence: create, attach backing, set scanout, transfer, flush, then tear down, each OK_NODATA",
    source: `${SPEC}.6.8 (RESOURCE_CREATE_2D, ATTACH_BACKING, SET_SCANOUT, TRANSFER_TO_HOST_2D, RESOURCE_FLUSH, DETACH_BACKING, UNREF)`,
    run(d) {
      d.start(both);
      const made = makeResource(d, 7, 64, 32);
      if (made !== null) return fail(made);
      const bad = expectAll([
        ['SET_SCANOUT', send(d, req(CMD.SET_SCANOUT, [0, 0, 64, 32, 0, 7])), RESP.OK_NODATA],
        ['TRANSFER_TO_HOST_2D (whole)', send(d, req(CMD.TRANSFER, [0, 0, 64, 32, 0, 0, 7, 0])), RESP.OK_NODATA],
        ['TRANSFER_TO_HOST_2D (8x4+16+8, offset x·4 + y·pitch)', send(d, req(CMD.TRANSFER, [16, 8, 8, 4, 16 * 4 + 8 * 256, 0, 7, 0])), RESP.OK_NODATA],
        ['RESOURCE_FLUSH', send(d, req(CMD.FLUSH, [0, 0, 64, 32, 7, 0])), RESP.OK_NODATA],
        ['SET_SCANOUT to resource 0 (disable)', send(d, req(CMD.SET_SCANOUT, [0, 0, 0, 0, 0, 0])), RESP.OK_NODATA],
        ['RESOURCE_DETACH_BACKING', send(d, req(CMD.DETACH, [7, 0])), RESP.OK_NODATA],
        ['RESOURCE_UNREF', send(d, req(CMD.UNREF, [7, 0])), RESP.OK_NODATA],
      ]);
      return bad === null ? pass('every step OK_NODATA') : fail(bad);
    },
  },
  {
    ...base,
    id: 'gpu.formats',
    title: 'RESOURCE_CREATE_2D accepts the eight 2D formats and refuses an unknown one with ERR_INVALID_PARAMETER',
    source: `${SPEC}.6.8 (enum virtio_gpu_formats)`,
    run(d) {
      d.start(both);
      for (const [i, f] of FORMATS.entries()) {
        const r = send(d, req(CMD.CREATE_2D, [100 + i, f, 16, 16]));
        if (r.type !== RESP.OK_NODATA) return fail(`format ${f}: ${name(r.type)}`);
      }
      const bad = send(d, req(CMD.CREATE_2D, [200, 5, 16, 16]));
      if (bad.type !== RESP.ERR_INVALID_PARAMETER) return fail(`format 5 (none): ${name(bad.type)}, expected ERR_INVALID_PARAMETER`);
      const zero = send(d, req(CMD.CREATE_2D, [201, B8G8R8X8, 0, 16]));
      if (zero.type !== RESP.ERR_INVALID_PARAMETER) return fail(`width 0: ${name(zero.type)}, expected ERR_INVALID_PARAMETER`);
      return pass(`formats ${FORMATS.join(', ')} created; format 5 and width 0 refused`);
    },
  },
  {
    ...base,
    id: 'gpu.resource-ids',
    title: 'Resource id 0, a used id, and unknown ids get ERR_INVALID_RESOURCE_ID from every command',
    source: `${SPEC}.6.8 (VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID)`,
    run(d) {
      d.start(both);
      const made = makeResource(d, 3, 16, 16);
      if (made !== null) return fail(made);
      const buf = backing(d, 1024);
      const bad = expectAll([
        ['CREATE_2D id 0', send(d, req(CMD.CREATE_2D, [0, B8G8R8X8, 16, 16])), RESP.ERR_INVALID_RESOURCE_ID],
        ['CREATE_2D of a used id', send(d, req(CMD.CREATE_2D, [3, B8G8R8X8, 16, 16])), RESP.ERR_INVALID_RESOURCE_ID],
        ['UNREF unknown', send(d, req(CMD.UNREF, [99, 0])), RESP.ERR_INVALID_RESOURCE_ID],
        ['ATTACH_BACKING unknown', send(d, req(CMD.ATTACH, [99, 1], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.ERR_INVALID_RESOURCE_ID],
        ['DETACH_BACKING unknown', send(d, req(CMD.DETACH, [99, 0])), RESP.ERR_INVALID_RESOURCE_ID],
        ['SET_SCANOUT unknown', send(d, req(CMD.SET_SCANOUT, [0, 0, 16, 16, 0, 99])), RESP.ERR_INVALID_RESOURCE_ID],
        ['TRANSFER unknown', send(d, req(CMD.TRANSFER, [0, 0, 16, 16, 0, 0, 99, 0])), RESP.ERR_INVALID_RESOURCE_ID],
        ['FLUSH unknown', send(d, req(CMD.FLUSH, [0, 0, 16, 16, 99, 0])), RESP.ERR_INVALID_RESOURCE_ID],
        ['UNREF of an unreferenced resource', (send(d, req(CMD.UNREF, [3, 0])), send(d, req(CMD.UNREF, [3, 0]))), RESP.ERR_INVALID_RESOURCE_ID],
      ]);
      return bad === null ? pass('all refused with ERR_INVALID_RESOURCE_ID') : fail(bad);
    },
  },
  {
    ...base,
    id: 'gpu.scanout-ids',
    title: 'SET_SCANOUT to a scanout id at or past num_scanouts gets ERR_INVALID_SCANOUT_ID',
    source: `${SPEC}.6.8 (VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID)`,
    run(d) {
      d.start(both);
      const n = numScanouts(d);
      const made = makeResource(d, 4, 32, 32);
      if (made !== null) return fail(made);
      const bad = expectAll([
        [`SET_SCANOUT ${n}`, send(d, req(CMD.SET_SCANOUT, [0, 0, 32, 32, n, 4])), RESP.ERR_INVALID_SCANOUT_ID],
        ['SET_SCANOUT 0xffffffff', send(d, req(CMD.SET_SCANOUT, [0, 0, 32, 32, 0xffffffff, 4])), RESP.ERR_INVALID_SCANOUT_ID],
      ]);
      return bad === null ? pass(`scanouts ${n} and 0xffffffff refused`) : fail(bad);
    },
  },
  {
    ...base,
    id: 'gpu.fence',
    title: 'A fenced command is answered with VIRTIO_GPU_FLAG_FENCE and its fence_id',
    source: `${SPEC}.6.7 ("If the driver sets VIRTIO_GPU_FLAG_FENCE ... the device MUST set VIRTIO_GPU_FLAG_FENCE ... and copy fence_id")`,
    run(d) {
      d.start(both);
      const fenceId = 0x1122_3344_5566_7788n;
      const r = send(d, req(CMD.CREATE_2D, [9, B8G8R8X8, 16, 16], { flags: 1, fenceId }));
      if (r.type !== RESP.OK_NODATA) return fail(`fenced RESOURCE_CREATE_2D: ${name(r.type)}`);
      if ((r.flags & 1) === 0 || r.fenceId !== fenceId) return fail(`response flags 0x${r.flags.toString(16)}, fence_id 0x${r.fenceId.toString(16)}`);
      return pass('FENCE flag and fence_id echoed');
    },
  },
  {
    ...base,
    id: 'gpu.cursor',
    title: 'UPDATE_CURSOR with a 64x64 resource and MOVE_CURSOR are consumed on the cursor queue; the device goes on',
    source: `${SPEC}.6.10 (cursorq: "The cursor image is 64x64")`,
    run(d) {
      d.start(both);
      const made = makeResource(d, 5, 64, 64);
      if (made !== null) return fail(made);
      const t = expectAll([['TRANSFER cursor image', send(d, req(CMD.TRANSFER, [0, 0, 64, 64, 0, 0, 5, 0])), RESP.OK_NODATA]]);
      if (t !== null) return fail(t);
      for (const [what, type, res] of [['UPDATE_CURSOR', CMD.UPDATE_CURSOR, 5], ['MOVE_CURSOR', CMD.MOVE_CURSOR, 5], ['UPDATE_CURSOR to resource 0 (hide)', CMD.UPDATE_CURSOR, 0]] as const) {
        const used = d.request([d.out(req(type, [0, 10, 20, 0, res, 1, 2, 0]))], { queue: CURSORQ });
        if (used.len !== 0) return fail(`${what}: used length ${used.len} for a chain without writable buffers`);
      }
      const after = send(d, req(CMD.GET_DISPLAY_INFO), 408);
      return after.type === RESP.OK_DISPLAY_INFO ? pass('cursor commands consumed') : fail(`GET_DISPLAY_INFO after the cursor commands: ${name(after.type)}`);
    },
  },
  {
    ...hostile,
    id: 'gpu.hostile.huge-resource',
    title: 'A 65535x65535 resource (16 GiB) is refused with ERR_OUT_OF_MEMORY; the device goes on',
    source: `${SPEC}.6.8 (VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY); AVP: every guest-claimed allocation is capped`,
    run(d) {
      d.start(both);
      const r = send(d, req(CMD.CREATE_2D, [11, B8G8R8X8, 65535, 65535]));
      if (r.type === RESP.OK_NODATA) return fail('a 16 GiB resource was accepted');
      if (r.type !== RESP.ERR_OUT_OF_MEMORY) return fail(`${name(r.type)}, expected ERR_OUT_OF_MEMORY`);
      const after = send(d, req(CMD.CREATE_2D, [11, B8G8R8X8, 16, 16]));
      return after.type === RESP.OK_NODATA ? pass('refused with ERR_OUT_OF_MEMORY; a small resource is still created') : fail(`a small resource after it: ${name(after.type)}`);
    },
  },
  {
    ...hostile,
    id: 'gpu.hostile.rects',
    title: 'Rectangles outside the resource (including u32 wrap-around) are refused with ERR_INVALID_PARAMETER by SET_SCANOUT, TRANSFER and FLUSH',
    source: `${SPEC}.6.8; QEMU virtio_gpu_transfer_to_host_2d / resource_flush / set_scanout bounds checks`,
    run(d) {
      d.start(both);
      const made = makeResource(d, 6, 32, 32);
      if (made !== null) return fail(made);
      const P = RESP.ERR_INVALID_PARAMETER;
      const bad = expectAll([
        ['SET_SCANOUT 33 wide', send(d, req(CMD.SET_SCANOUT, [0, 0, 33, 32, 0, 6])), P],
        ['SET_SCANOUT x 0xfffffff0 (wraps)', send(d, req(CMD.SET_SCANOUT, [0xfffffff0, 0, 32, 32, 0, 6])), P],
        ['TRANSFER 32x33', send(d, req(CMD.TRANSFER, [0, 0, 32, 33, 0, 0, 6, 0])), P],
        ['TRANSFER x 0xffffffff width 2 (wraps)', send(d, req(CMD.TRANSFER, [0xffffffff, 0, 2, 1, 0, 0, 6, 0])), P],
        ['FLUSH y 31 height 2', send(d, req(CMD.FLUSH, [0, 31, 32, 2, 6, 0])), P],
        ['FLUSH width 0xffffffff', send(d, req(CMD.FLUSH, [1, 0, 0xffffffff, 1, 6, 0])), P],
      ]);
      const ok = send(d, req(CMD.TRANSFER, [0, 0, 32, 32, 0, 0, 6, 0]));
      if (bad !== null) return fail(bad);
      return ok.type === RESP.OK_NODATA ? pass('every rectangle refused; a valid transfer still succeeds') : fail(`a valid transfer after them: ${name(ok.type)}`);
    },
  },
  {
    ...hostile,
    id: 'gpu.hostile.backing',
    title: 'Transfers past the backing, backing pages outside guest memory, too few or too many entries are refused',
    source: `${SPEC}.6.8 (RESOURCE_ATTACH_BACKING, TRANSFER_TO_HOST_2D); AVP: every guest address is checked before use`,
    run(d) {
      d.start(both);
      const made = makeResource(d, 8, 32, 32);
      if (made !== null) return fail(made);
      const buf = backing(d, 4096);
      const bad = expectAll([
        ['TRANSFER offset past the backing', send(d, req(CMD.TRANSFER, [0, 0, 32, 1, 4096, 0, 8, 0])), RESP.ERR_INVALID_PARAMETER],
        ['TRANSFER offset 2^63', send(d, req(CMD.TRANSFER, [0, 0, 1, 1, 0, 0x80000000, 8, 0])), RESP.ERR_INVALID_PARAMETER],
        ['ATTACH_BACKING a second time', send(d, req(CMD.ATTACH, [8, 1], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.ERR_UNSPEC],
        ['CREATE_2D for the next checks', send(d, req(CMD.CREATE_2D, [12, B8G8R8X8, 32, 32])), RESP.OK_NODATA],
        ['ATTACH_BACKING at 2^48 (outside guest memory)', send(d, req(CMD.ATTACH, [12, 1], { extra: entry(1n << 48n, 4096) })), RESP.ERR_UNSPEC],
        ['ATTACH_BACKING at 2^64 - 4096', send(d, req(CMD.ATTACH, [12, 1], { extra: entry((1n << 64n) - 4096n, 4096) })), RESP.ERR_UNSPEC],
        ['ATTACH_BACKING with 2 entries announced, 1 sent', send(d, req(CMD.ATTACH, [12, 2], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.ERR_UNSPEC],
        ['ATTACH_BACKING with 0x7fffffff entries announced', send(d, req(CMD.ATTACH, [12, 0x7fffffff], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.ERR_UNSPEC],
        ['DETACH_BACKING without a backing', send(d, req(CMD.DETACH, [12, 0])), RESP.ERR_UNSPEC],
        ['TRANSFER without a backing', send(d, req(CMD.TRANSFER, [0, 0, 32, 32, 0, 0, 12, 0])), RESP.ERR_UNSPEC],
        ['ATTACH_BACKING after the refusals', send(d, req(CMD.ATTACH, [12, 1], { extra: entry(BigInt(buf.addr), buf.len) })), RESP.OK_NODATA],
        ['TRANSFER within it', send(d, req(CMD.TRANSFER, [0, 0, 32, 32, 0, 0, 12, 0])), RESP.OK_NODATA],
      ]);
      return bad === null ? pass('every bad backing refused; a good one then works') : fail(bad);
    },
  },
  {
    ...hostile,
    id: 'gpu.hostile.short',
    title: 'Short requests, unknown and 3D commands get ERR_UNSPEC; a response buffer too small for the reply gets a bare ERR_UNSPEC',
    source: `${SPEC}.6.7 (VIRTIO_GPU_RESP_ERR_UNSPEC); QEMU VIRTIO_GPU_FILL_CMD size check`,
    run(d) {
      d.start(both);
      const bad = expectAll([
        ['RESOURCE_CREATE_2D of 28 bytes', send(d, req(CMD.CREATE_2D, [13])), RESP.ERR_UNSPEC],
        ['SET_SCANOUT of 24 bytes', send(d, req(CMD.SET_SCANOUT)), RESP.ERR_UNSPEC],
        ['command 0', send(d, req(0, [0, 0])), RESP.ERR_UNSPEC],
        ['CTX_CREATE (3D) on a 2D device', send(d, req(CMD.CTX_CREATE, [1, 0, 0])), RESP.ERR_UNSPEC],
        ['GET_DISPLAY_INFO with a 24-byte response buffer', send(d, req(CMD.GET_DISPLAY_INFO), 24), RESP.ERR_UNSPEC],
      ]);
      if (bad !== null) return fail(bad);
      const hdrOnly = send(d, new Uint8Array(8), 24);
      if (hdrOnly.type !== RESP.ERR_UNSPEC) return fail(`an 8-byte request: ${name(hdrOnly.type)}`);
      return pass('all answered ERR_UNSPEC');
    },
  },
];

export const gpuConformance: DeviceConformance = {
  device: 'gpu',
  deviceId: DEVICE_ID,
  configSize: 16,
  probeQueue: CONTROLQ,
  queues: [CONTROLQ, CURSORQ],
  probe(d) {
    const resp = d.in(408, FILL);
    return {
      buffers: [d.out(req(CMD.GET_DISPLAY_INFO)), resp],
      verify(used) {
        const b = d.bytes(resp);
        const type = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
        return used.len === 408 && type === RESP.OK_DISPLAY_INFO ? null : `GET_DISPLAY_INFO: used length ${used.len}, type ${name(type)}`;
      },
    };
  },
  wrongDirection(d) {
    // A request with no device-writable buffer: there is nowhere to put a response.
    const buf = d.out(req(CMD.GET_DISPLAY_INFO));
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('the chain without a response buffer was not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a device-writable byte`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
