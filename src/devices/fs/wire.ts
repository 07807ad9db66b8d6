// SPDX-License-Identifier: Apache-2.0
/**
 * Reading a FUSE request body and writing replies: the hostile-input edge of virtio-fs.
 *
 * Owns: `Body` (a copied request body with bounds-checked little-endian reads and name parsing:
 * a name is NUL-terminated inside the body, 1..255 bytes, valid UTF-8, without `/`), and the reply
 * writer, which puts `fuse_out_header` + payload into the chain's device-writable part and returns
 * the used length (0 when not even the header fits: then there is nowhere to say anything).
 * Names are checked for the FUSE contract (one component), not for safety: what a name may reach
 * is the kernel's to decide (native-host.ts, RESOLVE_BENEATH).
 * Does not own: what requests mean (session.ts).
 */
import type { DescriptorChain } from '../../queue/chain.js';
import { EINVAL, ENAMETOOLONG, ERANGE, FUSE_NAME_MAX, FUSE_OUT_HEADER_SIZE, encodeOutHeader } from './spec.js';

/** A request body field was missing or a name malformed: reply with this errno. */
export class BadRequest extends Error {
  constructor(
    readonly errno: number,
    what: string,
  ) {
    super(what);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class Body {
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  /** Throws BadRequest(EINVAL) unless the body holds at least `n` bytes (the fixed part of an op). */
  need(n: number, what: string): void {
    if (this.bytes.byteLength < n) throw new BadRequest(EINVAL, `${what}: body of ${this.bytes.byteLength} bytes, ${n} needed`);
  }

  u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  u64(at: number): bigint {
    return this.view.getBigUint64(at, true);
  }

  /** A u64 offset or size that must be a safe integer (files beyond 8 PiB are refused with EINVAL). */
  safe(at: number, what: string): number {
    const v = this.u64(at);
    if (v > MAX_SAFE) throw new BadRequest(EINVAL, `${what} ${v} out of range`);
    return Number(v);
  }

  /**
   * The NUL-terminated string at `at`, and where the next one starts. `max` bytes at most.
   * @throws BadRequest EINVAL (no NUL, empty, `/`, not UTF-8), ENAMETOOLONG
   */
  cstring(at: number, max: number, what: string, component: boolean): [string, number] {
    const end = this.bytes.indexOf(0, at);
    if (end < 0) throw new BadRequest(EINVAL, `${what} is not NUL-terminated`);
    const raw = this.bytes.subarray(at, end);
    if (raw.byteLength === 0) throw new BadRequest(EINVAL, `${what} is empty`);
    if (raw.byteLength > max) throw new BadRequest(ENAMETOOLONG, `${what} of ${raw.byteLength} bytes`);
    // '/' = 0x2f: a FUSE name is one path component; the host gets exactly one.
    if (component && raw.includes(0x2f)) throw new BadRequest(EINVAL, `${what} contains '/'`);
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      // Host paths go to libc as UTF-8 (koffi): other bytes could not be passed through unchanged.
      throw new BadRequest(EINVAL, `${what} is not valid UTF-8`);
    }
    return [s, end + 1];
  }

  /** A single name (path component) at `at`. */
  name(at: number, what = 'name'): [string, number] {
    return this.cstring(at, FUSE_NAME_MAX, what, true);
  }
}

/** Scratch for the out-header of the reply being written (replies are written one at a time). */
const header = new Uint8Array(FUSE_OUT_HEADER_SIZE);
const headerView = new DataView(header.buffer);

/**
 * Writes `fuse_out_header` (len = 16 + payload, error = -errno) and the payload; returns the used
 * length. A payload that does not fit becomes an ERANGE error reply; no room for the header, 0.
 */
export function writeReply(chain: DescriptorChain, unique: bigint, errno: number, payload?: Uint8Array): number {
  const room = chain.writableLength;
  if (room < FUSE_OUT_HEADER_SIZE) return 0;
  let body = payload;
  let error = errno;
  if (body !== undefined && FUSE_OUT_HEADER_SIZE + body.byteLength > room) {
    body = undefined;
    error = ERANGE;
  }
  const len = FUSE_OUT_HEADER_SIZE + (body?.byteLength ?? 0);
  encodeOutHeader(headerView, 0, len, -error, unique);
  const w = chain.writer();
  w.write(header);
  if (body !== undefined) w.write(body);
  return len;
}

/**
 * Writes a reply whose payload the caller fills in place (READ data straight from the host into
 * guest memory): `fill(segments)` gets views of up to `max` payload bytes after the header and
 * returns how many it filled; the header is written last, with that length.
 */
export function writeReplyInPlace(chain: DescriptorChain, unique: bigint, max: number, fill: (segs: Uint8Array[]) => number): number {
  const w = chain.writer();
  const headerSegs = w.segments(FUSE_OUT_HEADER_SIZE);
  const n = fill(w.segments(Math.min(max, w.remaining)));
  encodeOutHeader(headerView, 0, FUSE_OUT_HEADER_SIZE + n, 0, unique);
  let at = 0;
  for (const seg of headerSegs) {
    seg.set(header.subarray(at, at + seg.byteLength));
    at += seg.byteLength;
  }
  return FUSE_OUT_HEADER_SIZE + n;
}
