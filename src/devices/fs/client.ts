// SPDX-License-Identifier: Apache-2.0
/**
 * A minimal FUSE client over a `ConformanceDriver`, for the virtio-fs conformance checks and unit
 * tests: it builds requests byte by byte (independently of the server's codec in spec.ts/wire.ts,
 * which it must not trust) and parses replies defensively, since it also judges foreign back-ends.
 * Does not own: any check (conformance.ts).
 */
import type { ConformanceDriver } from '../../device/conformance.js';
import * as S from './spec.js';

/** A reply as the client saw it. */
export interface FuseReply {
  /** Used length the device reported. */
  readonly used: number;
  /** out.len, out.error (negative errno or 0), out.unique; undefined when no header came back. */
  readonly len?: number;
  readonly error?: number;
  readonly unique?: bigint;
  /** Payload bytes after the header (out.len - 16 of them, within the buffer). */
  readonly payload: Uint8Array;
}

/** A request body from parts: numbers as u32, bigints as u64, strings NUL-terminated, raw bytes. */
export type Part = number | bigint | string | Uint8Array | { u16: number };

export function bodyOf(parts: readonly Part[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, p >>> 0, true);
      chunks.push(b);
    } else if (typeof p === 'bigint') {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, p), true);
      chunks.push(b);
    } else if (typeof p === 'string') {
      chunks.push(new TextEncoder().encode(`${p}\0`));
    } else if (p instanceof Uint8Array) {
      chunks.push(p);
    } else {
      const b = new Uint8Array(2);
      new DataView(b.buffer).setUint16(0, p.u16, true);
      chunks.push(b);
    }
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export interface SendOptions {
  /** Bytes of reply room after the 16-byte header (default 4096). */
  readonly outLen?: number;
  /** Queue (default 1, the first request queue). */
  readonly queue?: number;
  /** in.len to claim instead of the true length (hostile checks). */
  readonly claimLen?: number;
  /** Device-writable bytes in total, header included, instead of 16 + outLen. */
  readonly writable?: number;
}

export class FuseClient {
  #unique = 0x100n;

  constructor(readonly d: ConformanceDriver) {}

  /** Sends one request and returns the reply. */
  send(opcode: number, nodeid: bigint, parts: readonly Part[] = [], opts: SendOptions = {}): FuseReply {
    const body = bodyOf(parts);
    const unique = this.#unique++;
    const header = bodyOf([opts.claimLen ?? S.FUSE_IN_HEADER_SIZE + body.byteLength, opcode, unique, nodeid, 0, 0, 1, { u16: 0 }, { u16: 0 }]);
    const req = new Uint8Array(header.byteLength + body.byteLength);
    req.set(header, 0);
    req.set(body, header.byteLength);
    const writable = opts.writable ?? S.FUSE_OUT_HEADER_SIZE + (opts.outLen ?? 4096);
    const out = this.d.out(req);
    const bufs = writable > 0 ? [out, this.d.in(writable, 0xee)] : [out];
    const used = this.d.request(bufs, { queue: opts.queue ?? 1 });
    const inBuf = bufs[1];
    if (inBuf === undefined || used.len < S.FUSE_OUT_HEADER_SIZE) return { used: used.len, payload: new Uint8Array(0) };
    const bytes = this.d.bytes(inBuf);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const len = v.getUint32(0, true);
    const end = Math.min(len, bytes.byteLength, used.len);
    return { used: used.len, len, error: v.getInt32(4, true), unique: v.getBigUint64(8, true), payload: bytes.slice(S.FUSE_OUT_HEADER_SIZE, Math.max(S.FUSE_OUT_HEADER_SIZE, end)) };
  }

  /** FUSE_INIT 7.31 with the flags Linux 6.x asks for; returns the reply. */
  init(): FuseReply {
    // Linux's INIT flags (fs/fuse/inode.c), bits 0-30 minus those needing DAX.
    const flags = 0x7bffffff & ~(1 << 26);
    return this.send(S.FUSE_INIT, 0n, [7, 31, 128 * 1024, flags, 0, ...new Array<number>(11).fill(0)]);
  }

  /** A LOOKUP; returns { nodeid, mode, ino, size, nlink } or the errno (positive). */
  lookup(parent: bigint, name: string): Entry | number {
    return entryOf(this.send(S.FUSE_LOOKUP, parent, [name]));
  }

  getattr(node: bigint): Attr | number {
    const r = this.send(S.FUSE_GETATTR, node, [0, 0, 0n]);
    if (r.error !== 0) return -(r.error ?? -S.EIO);
    if (r.payload.byteLength < S.FUSE_ATTR_OUT_SIZE) return S.EIO;
    return attrOf(new DataView(r.payload.buffer, r.payload.byteOffset), 16);
  }

  /** CREATE name (O_RDWR) → entry and fh, or the errno. */
  create(parent: bigint, name: string, mode = 0o644): (Entry & { fh: bigint }) | number {
    const r = this.send(S.FUSE_CREATE, parent, [2 | 0o100, 0o100000 | mode, 0o22, 0, name]);
    const e = entryOf(r);
    if (typeof e === 'number') return e;
    if (r.payload.byteLength < S.FUSE_ENTRY_OUT_SIZE + S.FUSE_OPEN_OUT_SIZE) return S.EIO;
    return { ...e, fh: new DataView(r.payload.buffer, r.payload.byteOffset).getBigUint64(S.FUSE_ENTRY_OUT_SIZE, true) };
  }

  open(node: bigint, flags: number, opcode = S.FUSE_OPEN): bigint | number {
    const r = this.send(opcode, node, [flags, 0]);
    if (r.error !== 0) return -(r.error ?? -S.EIO);
    if (r.payload.byteLength < S.FUSE_OPEN_OUT_SIZE) return S.EIO;
    return new DataView(r.payload.buffer, r.payload.byteOffset).getBigUint64(0, true);
  }

  read(node: bigint, fh: bigint, offset: bigint, size: number, opcode = S.FUSE_READ): Uint8Array | number {
    const r = this.send(opcode, node, [fh, offset, size, 0, 0n, 0, 0], { outLen: size });
    if (r.error !== 0) return -(r.error ?? -S.EIO);
    return r.payload;
  }

  write(node: bigint, fh: bigint, offset: bigint, data: Uint8Array): number {
    const r = this.send(S.FUSE_WRITE, node, [fh, offset, data.byteLength, 0, 0n, 0, 0, data], { outLen: 8 });
    if (r.error !== 0) return -(r.error ?? -S.EIO);
    return r.payload.byteLength >= 4 ? new DataView(r.payload.buffer, r.payload.byteOffset).getUint32(0, true) : -S.EIO;
  }

  release(node: bigint, fh: bigint, opcode = S.FUSE_RELEASE): number {
    return errnoOf(this.send(opcode, node, [fh, 0, 0, 0n]));
  }

  /** A request whose reply carries no payload: returns the errno (0 on success). */
  simple(opcode: number, node: bigint, parts: readonly Part[]): number {
    return errnoOf(this.send(opcode, node, parts));
  }

  forget(node: bigint, n: bigint): number {
    return this.send(S.FUSE_FORGET, node, [n], { queue: 0, writable: 0 }).used;
  }
}

/** The positive errno of a reply (0 on success; EIO when no header came back). */
function errnoOf(r: FuseReply): number {
  return r.error === undefined ? S.EIO : r.error === 0 ? 0 : -r.error;
}

export interface Attr {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mode: number;
  readonly nlink: number;
}

export interface Entry extends Attr {
  readonly nodeid: bigint;
}

function attrOf(v: DataView, at: number): Attr {
  return { ino: v.getBigUint64(at, true), size: v.getBigUint64(at + 8, true), mode: v.getUint32(at + 60, true), nlink: v.getUint32(at + 64, true) };
}

function entryOf(r: FuseReply): Entry | number {
  if (r.error === undefined) return S.EIO;
  if (r.error !== 0) return -r.error;
  if (r.payload.byteLength < S.FUSE_ENTRY_OUT_SIZE) return S.EIO;
  const v = new DataView(r.payload.buffer, r.payload.byteOffset);
  return { nodeid: v.getBigUint64(0, true), ...attrOf(v, 40) };
}

/** Names in a READDIR reply. */
export function direntNames(payload: Uint8Array): string[] {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const names: string[] = [];
  for (let at = 0; at + 24 <= payload.byteLength; ) {
    const n = v.getUint32(at + 16, true);
    if (at + 24 + n > payload.byteLength) break;
    names.push(new TextDecoder().decode(payload.subarray(at + 24, at + 24 + n)));
    at += (24 + n + 7) & ~7;
  }
  return names;
}
