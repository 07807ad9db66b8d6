// SPDX-License-Identifier: Apache-2.0
/**
 * vhost-user message payloads as codecs, and the typed front-end request and back-end reply unions
 * with their encoders and decoders (QEMU `docs/interop/vhost-user.rst`, "Message Specification"
 * and "Front-end message types").
 *
 * Owns: the byte layout of every payload AVP uses (explicit little-endian: the document says
 * "machine native byte order", and every platform AVP runs on is little-endian); the per-type rules
 * for payload size and attached fds; `encodeRequest`/`decodeRequest` (front-end sends, back-end
 * receives) and `encodeReply`/`decodeReply` (back-end sends, front-end receives).
 * Does not own: stream framing and fd ownership across chunks (`parser.ts`); semantic checks that
 * need connection state or guest memory (negotiated features, ring alignment, region overlap,
 * `num` of SET_VRING_ENABLE being 0 or 1): those belong to the back-end and the memory layer.
 *
 * Addresses and sizes inside payloads are JS numbers read with `getU64`: a value >= 2^53 comes back
 * as a non-safe integer that the memory layer rejects. Feature words and other u64 values that are
 * bit sets are `bigint`, like the feature words in `spec/virtio.ts`, so no bit is ever lost.
 *
 * Decoders throw `VhostUserProtocolError` (never anything else for any input). Encoders throw it
 * with the same codes when given a message the decoder would reject, or
 * `VHOST_USER_UNENCODABLE` for a value the field cannot carry.
 */
import { type Codec, getU64, setU64 } from '../spec/codec.js';
import { VhostUserProtocolError } from './errors.js';
import {
  FRONTEND_REQUEST_CODES,
  type FrontendRequestName,
  frontendRequestName,
  frontendRequestNameOf,
  VHOST_MEMORY_BASELINE_NREGIONS,
  VHOST_USER_CONFIG_HDR_SIZE,
  VHOST_USER_HDR_SIZE,
  type VhostUserHeader,
  VHOST_USER_MAX_CONFIG_SIZE,
  VHOST_USER_MAX_PAYLOAD,
  VHOST_USER_MAX_SESSION_SIZE,
  VHOST_USER_MIN_SESSION_SIZE,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_REPLY_MASK,
  VHOST_USER_RESERVED_FLAGS_MASK,
  VHOST_USER_VERSION,
  VHOST_USER_VERSION_MASK,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
} from './protocol.js';

/* ------------------------------------------------------------------------------------------ */
/* Value checks for encoders                                                                   */
/* ------------------------------------------------------------------------------------------ */

const TWO_POW_64 = 1n << 64n;

function unencodable(what: string, value: unknown): VhostUserProtocolError {
  return new VhostUserProtocolError('VHOST_USER_UNENCODABLE', `${what} = ${String(value)} does not fit its field`);
}

function checkUint(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw unencodable(what, value);
}

const checkU16 = (what: string, v: number): void => checkUint(what, v, 0xffff);
const checkU32 = (what: string, v: number): void => checkUint(what, v, 0xffff_ffff);
/** A u64 given as a number must be a safe integer: `setU64` cannot write larger values exactly. */
const checkU64Number = (what: string, v: number): void => checkUint(what, v, Number.MAX_SAFE_INTEGER);

function checkU64Bigint(what: string, v: bigint): void {
  if (v < 0n || v >= TWO_POW_64) throw unencodable(what, v);
}

/* ------------------------------------------------------------------------------------------ */
/* Header and payload struct codecs ("Header", "Payload")                                      */
/* ------------------------------------------------------------------------------------------ */

/** The 12-byte header: `u32 request @0, u32 flags @4, u32 size @8`. */
export const vhostUserHeader: Codec<VhostUserHeader> = {
  size: VHOST_USER_HDR_SIZE,
  decode(view, off) {
    return {
      request: view.getUint32(off, true),
      flags: view.getUint32(off + 4, true),
      size: view.getUint32(off + 8, true),
    };
  },
  encode(h, view, off) {
    checkU32('request', h.request);
    checkU32('flags', h.flags);
    checkU32('size', h.size);
    view.setUint32(off, h.request, true);
    view.setUint32(off + 4, h.flags, true);
    view.setUint32(off + 8, h.size, true);
  },
};

/** "A single 64-bit integer". A bigint, so feature words keep all 64 bits. */
export const vhostUserU64: Codec<bigint> = {
  size: 8,
  decode: (view, off) => view.getBigUint64(off, true),
  encode(v, view, off) {
    checkU64Bigint('u64', v);
    view.setBigUint64(off, v, true);
  },
};

/** "A vring state description": also the split/packed ring base and SET_VRING_ENABLE's 0/1. */
export interface VringState {
  readonly index: number;
  readonly num: number;
}

export const vringState: Codec<VringState> = {
  size: 8,
  decode: (view, off) => ({ index: view.getUint32(off, true), num: view.getUint32(off + 4, true) }),
  encode(v, view, off) {
    checkU32('index', v.index);
    checkU32('num', v.num);
    view.setUint32(off, v.index, true);
    view.setUint32(off + 4, v.num, true);
  },
};

/**
 * "A vring address description". The document's table lists a `size` field that the wire struct
 * (`struct vhost_vring_addr`) does not have; QEMU 7.2 sends exactly these 40 bytes.
 * `desc`, `used` and `avail` are front-end virtual addresses (IOVAs with IOMMU_PLATFORM).
 */
export interface VringAddr {
  readonly index: number;
  /** Bit `VHOST_VRING_F_LOG` (0): `log` holds a valid used-ring log address. */
  readonly flags: number;
  readonly desc: number;
  readonly used: number;
  readonly avail: number;
  /** Guest address used to compute the log offset of used-ring writes. */
  readonly log: number;
}

export const vringAddr: Codec<VringAddr> = {
  size: 40,
  decode(view, off) {
    return {
      index: view.getUint32(off, true),
      flags: view.getUint32(off + 4, true),
      desc: getU64(view, off + 8),
      used: getU64(view, off + 16),
      avail: getU64(view, off + 24),
      log: getU64(view, off + 32),
    };
  },
  encode(v, view, off) {
    checkU32('index', v.index);
    checkU32('flags', v.flags);
    checkU64Number('desc', v.desc);
    checkU64Number('used', v.used);
    checkU64Number('avail', v.avail);
    checkU64Number('log', v.log);
    view.setUint32(off, v.index, true);
    view.setUint32(off + 4, v.flags, true);
    setU64(view, off + 8, v.desc);
    setU64(view, off + 16, v.used);
    setU64(view, off + 24, v.avail);
    setU64(view, off + 32, v.log);
  },
};

/** "Memory region description" (32 bytes; the 40-byte XEN_MMAP form is not supported). */
export interface MemoryRegion {
  /** Guest-physical address of the region (descriptor addresses are in this space). */
  readonly guestAddr: number;
  readonly size: number;
  /** Front-end virtual address of the region (vring addresses are in this space). */
  readonly userAddr: number;
  /** Where the region starts inside the mapping of its fd. */
  readonly mmapOffset: number;
}

export const memoryRegion: Codec<MemoryRegion> = {
  size: 32,
  decode(view, off) {
    return {
      guestAddr: getU64(view, off),
      size: getU64(view, off + 8),
      userAddr: getU64(view, off + 16),
      mmapOffset: getU64(view, off + 24),
    };
  },
  encode(v, view, off) {
    checkU64Number('guestAddr', v.guestAddr);
    checkU64Number('size', v.size);
    checkU64Number('userAddr', v.userAddr);
    checkU64Number('mmapOffset', v.mmapOffset);
    setU64(view, off, v.guestAddr);
    setU64(view, off + 8, v.size);
    setU64(view, off + 16, v.userAddr);
    setU64(view, off + 24, v.mmapOffset);
  },
};

/**
 * "Single memory region description" (ADD_MEM_REG, REM_MEM_REG): `u64 padding @0, region @8`.
 * The padding is written as 0 and ignored when read, as QEMU, libvhost-user and rust-vmm do.
 */
export const singleMemoryRegion: Codec<MemoryRegion> = {
  size: 40,
  decode: (view, off) => memoryRegion.decode(view, off + 8),
  encode(v, view, off) {
    setU64(view, off, 0);
    memoryRegion.encode(v, view, off + 8);
  },
};

/**
 * "Multiple Memory regions description" (SET_MEM_TABLE): `u32 num @0, u32 padding @4`, then
 * `num` regions at `8 + 32·i`, one fd per region in the same order.
 */
export interface VhostUserMemory {
  readonly regions: readonly MemoryRegion[];
}

/** "Log description" (SET_LOG_BASE). */
export interface VhostUserLog {
  readonly mmapSize: number;
  readonly mmapOffset: number;
}

export const vhostUserLog: Codec<VhostUserLog> = {
  size: 16,
  decode: (view, off) => ({ mmapSize: getU64(view, off), mmapOffset: getU64(view, off + 8) }),
  encode(v, view, off) {
    checkU64Number('mmapSize', v.mmapSize);
    checkU64Number('mmapOffset', v.mmapOffset);
    setU64(view, off, v.mmapSize);
    setU64(view, off + 8, v.mmapOffset);
  },
};

/**
 * "Virtio device config space" (GET_CONFIG, SET_CONFIG): `u32 offset, u32 size, u32 flags`, then
 * `size` bytes. `size` is not stored: it is `payload.length`.
 */
export interface VhostUserConfig {
  readonly offset: number;
  /** `VHOST_SET_CONFIG_TYPE_FRONTEND` (0) or `VHOST_SET_CONFIG_TYPE_MIGRATION` (1); not checked here. */
  readonly flags: number;
  /** The config bytes (a copy; GET_CONFIG requests carry `size` placeholder bytes, zeros from QEMU). */
  readonly payload: Uint8Array;
}

/**
 * "Inflight description". The C struct (`VhostUserInflight`, not packed) is 24 bytes: two u64,
 * two u16 and 4 bytes of tail padding; QEMU, libvhost-user and rust-vmm all send 24.
 */
export interface VhostUserInflight {
  readonly mmapSize: number;
  readonly mmapOffset: number;
  readonly numQueues: number;
  readonly queueSize: number;
}

export const vhostUserInflight: Codec<VhostUserInflight> = {
  size: 24,
  decode(view, off) {
    return {
      mmapSize: getU64(view, off),
      mmapOffset: getU64(view, off + 8),
      numQueues: view.getUint16(off + 16, true),
      queueSize: view.getUint16(off + 18, true),
    };
  },
  encode(v, view, off) {
    checkU64Number('mmapSize', v.mmapSize);
    checkU64Number('mmapOffset', v.mmapOffset);
    checkU16('numQueues', v.numQueues);
    checkU16('queueSize', v.queueSize);
    setU64(view, off, v.mmapSize);
    setU64(view, off + 8, v.mmapOffset);
    view.setUint16(off + 16, v.numQueues, true);
    view.setUint16(off + 18, v.queueSize, true);
    view.setUint32(off + 20, 0, true);
  },
};

/**
 * The u64 of SET_VRING_KICK/CALL/ERR: "Bits (0-7) of the payload contain the vring index. Bit 8 is
 * the invalid FD flag." The other bits have no meaning; like libvhost-user and rust-vmm we ignore
 * them when reading and write them as 0.
 */
export interface VringFd {
  readonly index: number;
  /** Bit 8 set: no fd is attached and the ring is polled instead. */
  readonly noFd: boolean;
}

function decodeIndexAndNoFd(view: DataView, off: number): VringFd {
  // Only the low word carries defined bits (0-8).
  const lo = view.getUint32(off, true);
  return { index: lo & VHOST_USER_VRING_IDX_MASK, noFd: (lo & VHOST_USER_VRING_NOFD_MASK) !== 0 };
}

function encodeIndexAndNoFd(v: VringFd, view: DataView, off: number): void {
  checkUint('vring index', v.index, VHOST_USER_VRING_IDX_MASK);
  view.setUint32(off, v.index | (v.noFd ? VHOST_USER_VRING_NOFD_MASK : 0), true);
  view.setUint32(off + 4, 0, true);
}

export const vringFd: Codec<VringFd> = {
  size: 8,
  decode: decodeIndexAndNoFd,
  encode: encodeIndexAndNoFd,
};

/**
 * "Vring area description" (BACKEND_VRING_HOST_NOTIFIER_MSG, back-end channel): `u64 index/flags,
 * u64 size, u64 offset`. The u64 uses the same index and no-fd bits as SET_VRING_KICK.
 */
export interface VringArea extends VringFd {
  readonly size: number;
  readonly offset: number;
}

export const vringArea: Codec<VringArea> = {
  size: 24,
  decode: (view, off) => ({
    ...decodeIndexAndNoFd(view, off),
    size: getU64(view, off + 8),
    offset: getU64(view, off + 16),
  }),
  encode(v, view, off) {
    checkU64Number('size', v.size);
    checkU64Number('offset', v.offset);
    encodeIndexAndNoFd(v, view, off);
    setU64(view, off + 8, v.size);
    setU64(view, off + 16, v.offset);
  },
};

/** SEND_RARP's u64: "The first 6 bytes of the payload contain the mac address of the guest". */
export interface RarpPayload {
  readonly mac: Uint8Array;
}

export const rarpPayload: Codec<RarpPayload> = {
  size: 8,
  // A copy, so the message never aliases a parser or socket buffer.
  decode: (view, off) => ({ mac: new Uint8Array(view.buffer, view.byteOffset + off, 6).slice() }),
  encode(v, view, off) {
    if (v.mac.length !== 6) throw unencodable('mac length', v.mac.length);
    for (let i = 0; i < 6; i++) view.setUint8(off + i, v.mac[i] ?? 0);
    view.setUint16(off + 6, 0, true);
  },
};

/* ------------------------------------------------------------------------------------------ */
/* Typed front-end requests                                                                   */
/* ------------------------------------------------------------------------------------------ */

type NoFds = readonly [];
type OneFd = readonly [number];
type MaybeFd = readonly [] | readonly [number];

interface Req<T extends FrontendRequestName, B, F extends readonly number[]> {
  readonly type: T;
  /** Header flags as received: version 1, NEED_REPLY possibly set (REPLY and reserved bits never). */
  readonly flags: number;
  /** NEED_REPLY was set: with REPLY_ACK negotiated the back-end must answer (§ REPLY_ACK). */
  readonly needReply: boolean;
  readonly body: B;
  /** The fds this message owns, in ancillary-data order. The receiver must close them. */
  readonly fds: F;
}

/**
 * Every request QEMU can send to an AVP back-end (crypto sessions included). Messages without payload
 * have `body: null`. The fd tuple types state how many fds each type owns after validation.
 */
export type FrontendRequest =
  | Req<'GET_FEATURES', null, NoFds>
  | Req<'SET_FEATURES', bigint, NoFds>
  | Req<'SET_OWNER', null, NoFds>
  | Req<'RESET_OWNER', null, NoFds>
  | Req<'SET_MEM_TABLE', VhostUserMemory, readonly number[]>
  /** The fd is present when LOG_SHMFD is negotiated (the codec cannot know, so 0 or 1). */
  | Req<'SET_LOG_BASE', VhostUserLog, MaybeFd>
  | Req<'SET_LOG_FD', null, OneFd>
  | Req<'SET_VRING_NUM', VringState, NoFds>
  | Req<'SET_VRING_ADDR', VringAddr, NoFds>
  | Req<'SET_VRING_BASE', VringState, NoFds>
  | Req<'GET_VRING_BASE', VringState, NoFds>
  | Req<'SET_VRING_KICK', VringFd, MaybeFd>
  | Req<'SET_VRING_CALL', VringFd, MaybeFd>
  | Req<'SET_VRING_ERR', VringFd, MaybeFd>
  | Req<'GET_PROTOCOL_FEATURES', null, NoFds>
  | Req<'SET_PROTOCOL_FEATURES', bigint, NoFds>
  | Req<'GET_QUEUE_NUM', null, NoFds>
  | Req<'SET_VRING_ENABLE', VringState, NoFds>
  | Req<'SEND_RARP', RarpPayload, NoFds>
  | Req<'NET_SET_MTU', bigint, NoFds>
  | Req<'SET_BACKEND_REQ_FD', null, OneFd>
  | Req<'GET_CONFIG', VhostUserConfig, NoFds>
  | Req<'SET_CONFIG', VhostUserConfig, NoFds>
  | Req<'RESET_DEVICE', null, NoFds>
  | Req<'GET_MAX_MEM_SLOTS', null, NoFds>
  | Req<'ADD_MEM_REG', MemoryRegion, OneFd>
  /** An fd sent with it is accepted and closed by the parser, never handed over (see REM_MEM_REG). */
  | Req<'REM_MEM_REG', MemoryRegion, NoFds>
  | Req<'SET_STATUS', bigint, NoFds>
  | Req<'GET_STATUS', null, NoFds>
  | Req<'GET_INFLIGHT_FD', VhostUserInflight, NoFds>
  | Req<'SET_INFLIGHT_FD', VhostUserInflight, OneFd>
  /**
   * The front-end's session description, untouched (see SESSION_PAYLOAD): with
   * PROTOCOL_F_CRYPTO_SESSION, QEMU's virtio-crypto forwards the guest's CREATE_SESSION here.
   */
  | Req<'CREATE_CRYPTO_SESSION', Uint8Array, NoFds>
  /** The id of the session to close (QEMU waits for no reply). */
  | Req<'CLOSE_CRYPTO_SESSION', bigint, NoFds>
  /** vhost-user-gpu: the display socket QEMU hands over at each DRIVER_OK (no payload, one fd). */
  | Req<'GPU_SET_SOCKET', null, OneFd>;

export type FrontendRequestType = FrontendRequest['type'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What `encodeRequest` takes: a request without the derived header flags. */
export type FrontendRequestInit = DistributiveOmit<FrontendRequest, 'flags' | 'needReply'> & {
  /** Sets NEED_REPLY (only meaningful once REPLY_ACK is negotiated). Default false. */
  readonly needReply?: boolean;
};

/** Bytes ready for one `sendmsg`: header + payload, and the fds to attach as SCM_RIGHTS. */
export interface EncodedMessage {
  readonly bytes: Uint8Array;
  readonly fds: readonly number[];
}

/* ------------------------------------------------------------------------------------------ */
/* Per-type rules: payload shape and fds                                                       */
/* ------------------------------------------------------------------------------------------ */

// Method syntax (not function-typed properties) on purpose: methods are bivariant in their
// parameters, which lets the per-type table be read through `PayloadSpec<unknown>`. That is safe
// because a body is only ever passed back to the spec of the same message type.
interface PayloadSpec<B> {
  /** What the size should be when `size` is wrong for this payload, judged from the header alone. */
  sizeProblem(size: number): string | null;
  sizeOf(body: B): number;
  /** Writes the body; throws for values the wire (or the decoder) would not accept. */
  encode(body: B, view: DataView, off: number, header: VhostUserHeader): void;
  /** Reads a body of `size` bytes that already passed `sizeProblem`. */
  decode(view: DataView, off: number, size: number, header: VhostUserHeader): B;
}

interface MessageSpec<B> {
  readonly payload: PayloadSpec<B>;
  /** Checks the attached fds against the body and returns the ones the message keeps. */
  fds(body: B, fds: readonly number[], header: VhostUserHeader): readonly number[];
}

function nameOf(header: VhostUserHeader): string {
  return frontendRequestName(header.request);
}

function badSize(header: VhostUserHeader, expected: string): VhostUserProtocolError {
  return new VhostUserProtocolError(
    'VHOST_USER_BAD_SIZE',
    `${nameOf(header)}: payload size ${header.size} is wrong, expected ${expected}`,
    header,
  );
}

function unexpectedFds(header: VhostUserHeader, count: number, rule: string): VhostUserProtocolError {
  return new VhostUserProtocolError(
    'VHOST_USER_UNEXPECTED_FDS',
    `${nameOf(header)}: ${count} fd(s) attached, but ${rule}`,
    header,
  );
}

function missingFd(header: VhostUserHeader, count: number, rule: string): VhostUserProtocolError {
  return new VhostUserProtocolError('VHOST_USER_MISSING_FD', `${nameOf(header)}: ${count} fd(s) attached, but ${rule}`, header);
}

function badRegionCount(header: VhostUserHeader | null, num: number): VhostUserProtocolError {
  const name = header === null ? 'SET_MEM_TABLE' : nameOf(header);
  return new VhostUserProtocolError(
    'VHOST_USER_BAD_REGION_COUNT',
    `${name}: ${num} regions, expected 1 to ${VHOST_MEMORY_BASELINE_NREGIONS}`,
    header,
  );
}

const EMPTY_PAYLOAD: PayloadSpec<null> = {
  // QEMU sends size 0 for every payload-less request; rust-vmm also accepts only 0.
  sizeProblem: (size) => (size === 0 ? null : '0 (no payload)'),
  sizeOf: () => 0,
  encode() {},
  decode: () => null,
};

function fixedPayload<B>(shape: string, codec: Codec<B>): PayloadSpec<B> {
  return {
    sizeProblem: (size) => (size === codec.size ? null : `${codec.size} (${shape})`),
    sizeOf: () => codec.size,
    encode: (body, view, off) => codec.encode(body, view, off),
    decode: (view, off) => codec.decode(view, off),
  };
}

const MEM_TABLE_HDR_SIZE = 8;

const MEM_TABLE_PAYLOAD: PayloadSpec<VhostUserMemory> = {
  sizeProblem(size) {
    // The count is inside the payload, so only the shape can be judged from the header: the
    // region count itself is checked after reading, with its own error code.
    const ok = size >= MEM_TABLE_HDR_SIZE && (size - MEM_TABLE_HDR_SIZE) % memoryRegion.size === 0;
    return ok ? null : `8 + 32 × regions (memory table)`;
  },
  sizeOf: (body) => MEM_TABLE_HDR_SIZE + memoryRegion.size * body.regions.length,
  encode(body, view, off) {
    const num = body.regions.length;
    if (num === 0 || num > VHOST_MEMORY_BASELINE_NREGIONS) throw badRegionCount(null, num);
    view.setUint32(off, num, true);
    view.setUint32(off + 4, 0, true);
    body.regions.forEach((r, i) => memoryRegion.encode(r, view, off + MEM_TABLE_HDR_SIZE + memoryRegion.size * i));
  },
  decode(view, off, size, header) {
    const num = view.getUint32(off, true);
    // The padding at off + 4 is ignored, as QEMU and libvhost-user do (rust-vmm rejects non-zero).
    if (num === 0 || num > VHOST_MEMORY_BASELINE_NREGIONS) throw badRegionCount(header, num);
    const expected = MEM_TABLE_HDR_SIZE + memoryRegion.size * num;
    if (size !== expected) throw badSize(header, `${expected} (8 + 32 × ${num} regions)`);
    const regions: MemoryRegion[] = [];
    for (let i = 0; i < num; i++) regions.push(memoryRegion.decode(view, off + MEM_TABLE_HDR_SIZE + memoryRegion.size * i));
    return { regions };
  },
};

const CONFIG_MAX_PAYLOAD = VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE;

const CONFIG_PAYLOAD: PayloadSpec<VhostUserConfig> = {
  sizeProblem(size) {
    const ok = size >= VHOST_USER_CONFIG_HDR_SIZE && size <= CONFIG_MAX_PAYLOAD;
    return ok ? null : `12 to ${CONFIG_MAX_PAYLOAD} (12-byte config header + at most ${VHOST_USER_MAX_CONFIG_SIZE} config bytes)`;
  },
  sizeOf: (body) => VHOST_USER_CONFIG_HDR_SIZE + body.payload.length,
  encode(body, view, off) {
    checkU32('offset', body.offset);
    checkU32('flags', body.flags);
    if (body.payload.length > VHOST_USER_MAX_CONFIG_SIZE) {
      throw new VhostUserProtocolError(
        'VHOST_USER_BAD_SIZE',
        `config payload of ${body.payload.length} bytes exceeds VHOST_USER_MAX_CONFIG_SIZE (${VHOST_USER_MAX_CONFIG_SIZE})`,
      );
    }
    view.setUint32(off, body.offset, true);
    view.setUint32(off + 4, body.payload.length, true);
    view.setUint32(off + 8, body.flags, true);
    new Uint8Array(view.buffer, view.byteOffset + off + VHOST_USER_CONFIG_HDR_SIZE, body.payload.length).set(body.payload);
  },
  decode(view, off, size, header) {
    const cfgSize = view.getUint32(off + 4, true);
    if (VHOST_USER_CONFIG_HDR_SIZE + cfgSize !== size) {
      throw badSize(header, `12 + the config size field (${cfgSize})`);
    }
    const start = view.byteOffset + off + VHOST_USER_CONFIG_HDR_SIZE;
    return {
      offset: view.getUint32(off, true),
      flags: view.getUint32(off + 8, true),
      // A copy, so the message never aliases a parser or socket buffer.
      payload: new Uint8Array(view.buffer, start, cfgSize).slice(),
    };
  },
};

/**
 * CREATE_CRYPTO_SESSION's payload, request and reply: an opaque session description of
 * VHOST_USER_MIN_SESSION_SIZE to VHOST_USER_MAX_SESSION_SIZE bytes. Its layout is the front-end's
 * (QEMU's `VhostUserCryptoSession`, which changed in QEMU 8.0) and is read by the device that
 * answers, never by the transport. A reply of size 0 is the back-end's failure answer when the
 * device could not even read the request (QEMU then fails the session: "Received bad msg size").
 */
const SESSION_PAYLOAD: PayloadSpec<Uint8Array> = {
  sizeProblem: (size) =>
    size >= VHOST_USER_MIN_SESSION_SIZE && size <= VHOST_USER_MAX_SESSION_SIZE ? null : `${VHOST_USER_MIN_SESSION_SIZE} to ${VHOST_USER_MAX_SESSION_SIZE} (a crypto session description)`,
  sizeOf: (body) => body.length,
  encode(body, view, off) {
    if (body.length < VHOST_USER_MIN_SESSION_SIZE || body.length > VHOST_USER_MAX_SESSION_SIZE) throw unencodable('session description length', body.length);
    new Uint8Array(view.buffer, view.byteOffset + off, body.length).set(body);
  },
  // A copy, so the message never aliases a parser or socket buffer.
  decode: (view, off, size) => new Uint8Array(view.buffer, view.byteOffset + off, size).slice(),
};

const SESSION_REPLY_PAYLOAD: PayloadSpec<Uint8Array> = {
  sizeProblem: (size) => (size === 0 ? null : SESSION_PAYLOAD.sizeProblem(size)),
  sizeOf: (body) => body.length,
  encode(body, view, off, header) {
    if (body.length > 0) SESSION_PAYLOAD.encode(body, view, off, header);
  },
  decode: (view, off, size, header) => (size === 0 ? new Uint8Array(0) : SESSION_PAYLOAD.decode(view, off, size, header)),
};

/* fd rules ("Communication": the messages that carry fds) */

function noFds(_body: unknown, fds: readonly number[], header: VhostUserHeader): NoFds {
  if (fds.length > 0) throw unexpectedFds(header, fds.length, 'this message carries none');
  return [];
}

function oneFd(_body: unknown, fds: readonly number[], header: VhostUserHeader): OneFd {
  const [fd] = fds;
  if (fd === undefined) throw missingFd(header, 0, 'exactly one is required');
  if (fds.length > 1) throw unexpectedFds(header, fds.length, 'exactly one is allowed');
  return [fd];
}

function atMostOneFd(_body: unknown, fds: readonly number[], header: VhostUserHeader): MaybeFd {
  const [fd] = fds;
  if (fds.length > 1) throw unexpectedFds(header, fds.length, 'at most one is allowed');
  return fd === undefined ? [] : [fd];
}

function vringFdRule(body: VringFd, fds: readonly number[], header: VhostUserHeader): MaybeFd {
  // rust-vmm rejects both mismatches too: an fd with bit 8 set contradicts "this flag is set when
  // there is no file descriptor in the ancillary data".
  if (body.noFd) {
    if (fds.length > 0) throw unexpectedFds(header, fds.length, 'bit 8 (no fd) is set in the payload');
    return [];
  }
  return oneFd(body, fds, header);
}

function perRegionFds(body: VhostUserMemory, fds: readonly number[], header: VhostUserHeader): readonly number[] {
  const n = body.regions.length;
  // "The size and ordering of the fds matches the number and ordering of memory regions."
  if (fds.length < n) throw missingFd(header, fds.length, `one per region (${n}) is required`);
  if (fds.length > n) throw unexpectedFds(header, fds.length, `one per region (${n}) is allowed`);
  return [...fds];
}

function strayFdDropped(_body: unknown, fds: readonly number[], header: VhostUserHeader): NoFds {
  // REM_MEM_REG: "No file descriptors SHOULD be passed ... the back-end MAY accept messages with
  // one file descriptor. If a file descriptor is passed, the back-end MUST close it". The message
  // keeps none, so the parser closes it.
  if (fds.length > 1) throw unexpectedFds(header, fds.length, 'at most one (to be closed) is tolerated');
  return [];
}

// NoInfer: the body type comes from the payload; the generic fd rules accept any body.
function spec<B>(payload: PayloadSpec<B>, fds: NoInfer<MessageSpec<B>['fds']> = noFds): MessageSpec<B> {
  return { payload, fds };
}

type BodyOf<T extends FrontendRequestType> = Extract<FrontendRequest, { type: T }>['body'];

const U64 = fixedPayload('u64', vhostUserU64);
const VRING_STATE = fixedPayload('vring state', vringState);
const VRING_FD = fixedPayload('u64 vring index and no-fd flag', vringFd);
const SINGLE_REGION = fixedPayload('single memory region', singleMemoryRegion);
const INFLIGHT = fixedPayload('inflight description', vhostUserInflight);

/** The payload and fd rule of every decoded request type. */
const REQUEST_SPECS: { readonly [T in FrontendRequestType]: MessageSpec<BodyOf<T>> } = {
  GET_FEATURES: spec(EMPTY_PAYLOAD),
  SET_FEATURES: spec(U64),
  SET_OWNER: spec(EMPTY_PAYLOAD),
  RESET_OWNER: spec(EMPTY_PAYLOAD),
  SET_MEM_TABLE: spec(MEM_TABLE_PAYLOAD, perRegionFds),
  // The document calls the payload "u64", but QEMU sends the 16-byte log description.
  SET_LOG_BASE: spec(fixedPayload('log description', vhostUserLog), atMostOneFd),
  SET_LOG_FD: spec(EMPTY_PAYLOAD, oneFd),
  SET_VRING_NUM: spec(VRING_STATE),
  SET_VRING_ADDR: spec(fixedPayload('vring address', vringAddr)),
  SET_VRING_BASE: spec(VRING_STATE),
  GET_VRING_BASE: spec(VRING_STATE),
  SET_VRING_KICK: spec(VRING_FD, vringFdRule),
  SET_VRING_CALL: spec(VRING_FD, vringFdRule),
  SET_VRING_ERR: spec(VRING_FD, vringFdRule),
  GET_PROTOCOL_FEATURES: spec(EMPTY_PAYLOAD),
  SET_PROTOCOL_FEATURES: spec(U64),
  GET_QUEUE_NUM: spec(EMPTY_PAYLOAD),
  SET_VRING_ENABLE: spec(VRING_STATE),
  SEND_RARP: spec(fixedPayload('u64 holding a MAC address', rarpPayload)),
  NET_SET_MTU: spec(U64),
  SET_BACKEND_REQ_FD: spec(EMPTY_PAYLOAD, oneFd),
  GET_CONFIG: spec(CONFIG_PAYLOAD),
  SET_CONFIG: spec(CONFIG_PAYLOAD),
  RESET_DEVICE: spec(EMPTY_PAYLOAD),
  GET_MAX_MEM_SLOTS: spec(EMPTY_PAYLOAD),
  ADD_MEM_REG: spec(SINGLE_REGION, oneFd),
  REM_MEM_REG: spec(SINGLE_REGION, strayFdDropped),
  SET_STATUS: spec(U64),
  GET_STATUS: spec(EMPTY_PAYLOAD),
  GET_INFLIGHT_FD: spec(INFLIGHT),
  SET_INFLIGHT_FD: spec(INFLIGHT, oneFd),
  CREATE_CRYPTO_SESSION: spec(SESSION_PAYLOAD),
  CLOSE_CRYPTO_SESSION: spec(U64),
  GPU_SET_SOCKET: spec(EMPTY_PAYLOAD, oneFd),
};

/** Every request type `decodeRequest` understands, in code order. */
// Safe cast: the own keys of REQUEST_SPECS are exactly FrontendRequestType (mapped type above).
export const FRONTEND_REQUEST_TYPES: readonly FrontendRequestType[] = (Object.keys(REQUEST_SPECS) as FrontendRequestType[]).sort(
  (a, b) => FRONTEND_REQUEST_CODES[a] - FRONTEND_REQUEST_CODES[b],
);

function isDecodedRequestType(name: FrontendRequestName | undefined): name is FrontendRequestType {
  return name !== undefined && Object.hasOwn(REQUEST_SPECS, name);
}

/* ------------------------------------------------------------------------------------------ */
/* Header checks                                                                               */
/* ------------------------------------------------------------------------------------------ */

/** Checks shared by both directions: version, payload cap (both fatal), reserved flag bits. */
function checkCommonHeader(header: VhostUserHeader): VhostUserProtocolError | null {
  const version = header.flags & VHOST_USER_VERSION_MASK;
  if (version !== VHOST_USER_VERSION) {
    return new VhostUserProtocolError(
      'VHOST_USER_BAD_VERSION',
      `${nameOf(header)}: header version ${version}, expected ${VHOST_USER_VERSION} (flags 0x${header.flags.toString(16)})`,
      header,
    );
  }
  if (header.size > VHOST_USER_MAX_PAYLOAD) {
    return new VhostUserProtocolError(
      'VHOST_USER_PAYLOAD_TOO_LARGE',
      `${nameOf(header)}: payload size ${header.size} exceeds the limit of ${VHOST_USER_MAX_PAYLOAD} bytes`,
      header,
    );
  }
  if ((header.flags & VHOST_USER_RESERVED_FLAGS_MASK) !== 0) {
    return new VhostUserProtocolError(
      'VHOST_USER_RESERVED_FLAGS',
      `${nameOf(header)}: reserved header flag bits set (flags 0x${(header.flags >>> 0).toString(16)})`,
      header,
    );
  }
  return null;
}

type Classified<T> = { readonly error: VhostUserProtocolError } | { readonly error: null; readonly type: T };

function classifyRequest(header: VhostUserHeader): Classified<FrontendRequestType> {
  const common = checkCommonHeader(header);
  if (common !== null) return { error: common };
  if ((header.flags & VHOST_USER_REPLY_MASK) !== 0) {
    return {
      error: new VhostUserProtocolError(
        'VHOST_USER_REPLY_FLAG_ON_REQUEST',
        `${nameOf(header)}: the REPLY flag is set on a message sent as a request`,
        header,
      ),
    };
  }
  const name = frontendRequestNameOf(header.request);
  if (!isDecodedRequestType(name)) {
    const what = name === undefined ? 'an unknown request code' : 'a request this codec does not decode (its feature is never offered)';
    return {
      error: new VhostUserProtocolError('VHOST_USER_UNKNOWN_REQUEST', `${nameOf(header)}: ${what}`, header),
    };
  }
  const problem = REQUEST_SPECS[name].payload.sizeProblem(header.size);
  if (problem !== null) return { error: badSize(header, problem) };
  return { error: null, type: name };
}

/**
 * Everything about a request that can be judged from its header alone, before its payload is
 * buffered: version and payload cap (fatal), REPLY and reserved flag bits, known request code and
 * a payload size the type allows (per-message). Returns null when the header is acceptable.
 */
export function checkRequestHeader(header: VhostUserHeader): VhostUserProtocolError | null {
  return classifyRequest(header).error;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkPayloadLength(header: VhostUserHeader, payload: Uint8Array): void {
  if (payload.length !== header.size) throw badSize(header, `${payload.length} (the bytes given)`);
}

/**
 * Decodes one front-end request whose header and payload have been read.
 *
 * `fds` are the descriptors received with the header. On success the returned message owns
 * `message.fds`; any other fd in `fds` (only the one REM_MEM_REG may carry) is not used and the
 * caller must close it. On failure the caller still owns, and must close, all of `fds`.
 *
 * @throws VhostUserProtocolError with any code of `errors.ts` except TRUNCATED and UNENCODABLE;
 * through the parser, the fatal BAD_VERSION and PAYLOAD_TOO_LARGE are caught earlier, from the header.
 */
export function decodeRequest(header: VhostUserHeader, payload: Uint8Array, fds: readonly number[] = []): FrontendRequest {
  const c = classifyRequest(header);
  if (c.error !== null) throw c.error;
  checkPayloadLength(header, payload);
  const s: MessageSpec<unknown> = REQUEST_SPECS[c.type];
  const body = s.payload.decode(viewOf(payload), 0, payload.length, header);
  const held = s.fds(body, fds, header);
  // Safe cast: `body` and `held` come from REQUEST_SPECS[c.type], whose entry is typed for exactly
  // that message type; TypeScript cannot correlate the key with the union member by itself.
  return {
    type: c.type,
    flags: header.flags,
    needReply: (header.flags & VHOST_USER_NEED_REPLY_MASK) !== 0,
    body,
    fds: held,
  } as FrontendRequest;
}

/** Writes a header and payload into one buffer. */
function frame(request: number, flags: number, size: number, writeBody: (view: DataView, header: VhostUserHeader) => void): Uint8Array {
  if (size > VHOST_USER_MAX_PAYLOAD) throw unencodable('payload size', size);
  const header: VhostUserHeader = { request, flags, size };
  const bytes = new Uint8Array(VHOST_USER_HDR_SIZE + size);
  const view = viewOf(bytes);
  vhostUserHeader.encode(header, view, 0);
  writeBody(view, header);
  return bytes;
}

/**
 * Encodes a front-end request. The same payload and fd rules as `decodeRequest` apply, so whatever
 * this returns decodes to the same request.
 *
 * @throws VhostUserProtocolError (BAD_REGION_COUNT, BAD_SIZE, MISSING_FD, UNEXPECTED_FDS,
 * UNENCODABLE) for a request the decoder would reject or a value its field cannot carry.
 */
export function encodeRequest(init: FrontendRequestInit): EncodedMessage {
  const s: MessageSpec<unknown> = REQUEST_SPECS[init.type];
  const flags = VHOST_USER_VERSION | (init.needReply === true ? VHOST_USER_NEED_REPLY_MASK : 0);
  const request = FRONTEND_REQUEST_CODES[init.type];
  const bytes = frame(request, flags, s.payload.sizeOf(init.body), (view, header) => {
    s.payload.encode(init.body, view, VHOST_USER_HDR_SIZE, header);
    const held = s.fds(init.body, init.fds, header);
    // REM_MEM_REG keeps no fd: refuse to send one rather than drop an fd the caller owns.
    if (held.length !== init.fds.length) throw unexpectedFds(header, init.fds.length, 'this message keeps none');
  });
  return { bytes, fds: [...init.fds] };
}

/**
 * Encodes an arbitrary message, unchecked apart from field widths and the payload cap: for
 * back-end channel messages and for a hostile front-end that must send what `encodeRequest` refuses.
 */
export function encodeFrame(request: number, flags: number, payload: Uint8Array, fds: readonly number[] = []): EncodedMessage {
  const bytes = frame(request, flags, payload.length, () => {});
  bytes.set(payload, VHOST_USER_HDR_SIZE);
  return { bytes, fds: [...fds] };
}

/* ------------------------------------------------------------------------------------------ */
/* Back-end replies                                                                            */
/* ------------------------------------------------------------------------------------------ */

interface Rep<T extends FrontendRequestType, B, F extends readonly number[]> {
  readonly type: T;
  /** Header flags as received: version 1 and REPLY. */
  readonly flags: number;
  readonly body: B;
  readonly fds: F;
}

/**
 * A REPLY_ACK answer: a u64, "zero on success or non-zero on failure". Sent for any request that
 * has no reply of its own, including request codes the back-end does not know (hence a number).
 */
export interface AckReply {
  readonly type: 'ACK';
  /** The request code repeated from the acknowledged request. */
  readonly request: number;
  readonly flags: number;
  readonly body: bigint;
  readonly fds: NoFds;
}

/** Every reply a back-end sends to the requests in `FrontendRequest`. */
export type BackendReply =
  | Rep<'GET_FEATURES', bigint, NoFds>
  | Rep<'GET_PROTOCOL_FEATURES', bigint, NoFds>
  | Rep<'GET_QUEUE_NUM', bigint, NoFds>
  | Rep<'GET_MAX_MEM_SLOTS', bigint, NoFds>
  | Rep<'GET_STATUS', bigint, NoFds>
  | Rep<'GET_VRING_BASE', VringState, NoFds>
  /**
   * `null` is the document's error form, a zero-length payload. rust-vmm signals the same error
   * with a 12-byte config header whose size is 0; that decodes as a config with an empty payload.
   * Either way the front-end must compare the size with its request ("payload size MUST match").
   */
  | Rep<'GET_CONFIG', VhostUserConfig | null, NoFds>
  /** The fd is absent when `mmapSize` is 0 (libvhost-user's failure answer). */
  | Rep<'GET_INFLIGHT_FD', VhostUserInflight, MaybeFd>
  /**
   * With LOG_SHMFD the back-end must reply, but the document gives no payload; libvhost-user sends
   * a u64, rust-vmm echoes the 16-byte log description. Either is accepted; `body` is the first u64.
   */
  | Rep<'SET_LOG_BASE', bigint, NoFds>
  /** The session description with the session id filled in; empty when the request was unreadable. */
  | Rep<'CREATE_CRYPTO_SESSION', Uint8Array, NoFds>
  | AckReply;

export type BackendReplyType = BackendReply['type'];
type OwnReplyType = Exclude<BackendReplyType, 'ACK'>;

export type BackendReplyInit = DistributiveOmit<BackendReply, 'flags'>;

type ReplyBodyOf<T extends OwnReplyType> = Extract<BackendReply, { type: T }>['body'];

const CONFIG_REPLY_PAYLOAD: PayloadSpec<VhostUserConfig | null> = {
  sizeProblem: (size) => (size === 0 ? null : CONFIG_PAYLOAD.sizeProblem(size)),
  sizeOf: (body) => (body === null ? 0 : CONFIG_PAYLOAD.sizeOf(body)),
  encode(body, view, off, header) {
    if (body !== null) CONFIG_PAYLOAD.encode(body, view, off, header);
  },
  decode: (view, off, size, header) => (size === 0 ? null : CONFIG_PAYLOAD.decode(view, off, size, header)),
};

const LOG_BASE_REPLY_PAYLOAD: PayloadSpec<bigint> = {
  sizeProblem: (size) => (size === 8 || size === 16 ? null : '8 (u64) or 16 (log description)'),
  sizeOf: () => 8,
  encode: (body, view, off) => vhostUserU64.encode(body, view, off),
  decode: (view, off) => vhostUserU64.decode(view, off),
};

function inflightReplyFds(body: VhostUserInflight, fds: readonly number[], header: VhostUserHeader): MaybeFd {
  if (body.mmapSize === 0) return noFds(body, fds, header);
  return oneFd(body, fds, header);
}

const REPLY_SPECS: { readonly [T in OwnReplyType]: MessageSpec<ReplyBodyOf<T>> } = {
  GET_FEATURES: spec(U64),
  GET_PROTOCOL_FEATURES: spec(U64),
  GET_QUEUE_NUM: spec(U64),
  GET_MAX_MEM_SLOTS: spec(U64),
  GET_STATUS: spec(U64),
  GET_VRING_BASE: spec(VRING_STATE),
  GET_CONFIG: spec(CONFIG_REPLY_PAYLOAD),
  GET_INFLIGHT_FD: spec(INFLIGHT, inflightReplyFds),
  SET_LOG_BASE: spec(LOG_BASE_REPLY_PAYLOAD),
  CREATE_CRYPTO_SESSION: spec(SESSION_REPLY_PAYLOAD),
};

const ACK_SPEC: MessageSpec<bigint> = spec(fixedPayload('u64 ack', vhostUserU64));

function isOwnReplyType(name: FrontendRequestName | undefined): name is OwnReplyType {
  return name !== undefined && Object.hasOwn(REPLY_SPECS, name);
}

/**
 * True when `type` is answered with its own reply, so a NEED_REPLY on it gets that reply only and
 * no separate ack ("unless the message already has an explicit reply body").
 */
export function hasOwnReply(type: FrontendRequestType): boolean {
  return isOwnReplyType(type);
}

function classifyReply(header: VhostUserHeader): Classified<OwnReplyType | 'ACK'> {
  const common = checkCommonHeader(header);
  if (common !== null) return { error: common };
  if ((header.flags & VHOST_USER_REPLY_MASK) === 0) {
    return {
      error: new VhostUserProtocolError(
        'VHOST_USER_REPLY_FLAG_MISSING',
        `${nameOf(header)}: a reply without the REPLY flag ("needs to be sent on each reply")`,
        header,
      ),
    };
  }
  const name = frontendRequestNameOf(header.request);
  const type = isOwnReplyType(name) ? name : 'ACK';
  const s: MessageSpec<unknown> = type === 'ACK' ? ACK_SPEC : REPLY_SPECS[type];
  const problem = s.payload.sizeProblem(header.size);
  if (problem !== null) return { error: badSize(header, problem) };
  return { error: null, type };
}

/** Header-only checks for a reply, the counterpart of `checkRequestHeader`. */
export function checkReplyHeader(header: VhostUserHeader): VhostUserProtocolError | null {
  return classifyReply(header).error;
}

/**
 * Decodes a back-end reply. The type follows from the repeated request code: requests with their
 * own reply decode as that reply, every other code as a REPLY_ACK u64. The front-end matches it
 * against the request it sent (and, for GET_CONFIG, compares the sizes). Fd ownership as for
 * `decodeRequest`.
 *
 * @throws VhostUserProtocolError
 */
export function decodeReply(header: VhostUserHeader, payload: Uint8Array, fds: readonly number[] = []): BackendReply {
  const c = classifyReply(header);
  if (c.error !== null) throw c.error;
  checkPayloadLength(header, payload);
  const s: MessageSpec<unknown> = c.type === 'ACK' ? ACK_SPEC : REPLY_SPECS[c.type];
  const body = s.payload.decode(viewOf(payload), 0, payload.length, header);
  const held = s.fds(body, fds, header);
  if (c.type === 'ACK') {
    // Safe cast: ACK_SPEC decodes a bigint and its fd rule (noFds) returns an empty tuple.
    return { type: 'ACK', request: header.request, flags: header.flags, body: body as bigint, fds: [] };
  }
  // Safe cast: `body` and `held` come from REPLY_SPECS[c.type] (see decodeRequest).
  return { type: c.type, flags: header.flags, body, fds: held } as BackendReply;
}

/**
 * Encodes a back-end reply (flags: version 1 and REPLY).
 * @throws VhostUserProtocolError as `encodeRequest`.
 */
export function encodeReply(init: BackendReplyInit): EncodedMessage {
  const s: MessageSpec<unknown> = init.type === 'ACK' ? ACK_SPEC : REPLY_SPECS[init.type];
  const request = init.type === 'ACK' ? init.request : FRONTEND_REQUEST_CODES[init.type];
  const flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
  const bytes = frame(request, flags, s.payload.sizeOf(init.body), (view, header) => {
    s.payload.encode(init.body, view, VHOST_USER_HDR_SIZE, header);
    s.fds(init.body, init.fds, header);
  });
  return { bytes, fds: [...init.fds] };
}
