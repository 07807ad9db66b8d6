// SPDX-License-Identifier: Apache-2.0
/**
 * The FUSE session a virtio-fs device serves (Linux fs/fuse, protocol 7.31; VIRTIO 1.3 §5.11.6):
 * one per device, shared by every request queue, set up by FUSE_INIT and torn down by DESTROY or
 * a device reset.
 *
 * Owns: request framing (the in-header's `len` must lie within the readable part; the body is
 * copied once, capped), dispatch by opcode, the INIT negotiation, FORGET/BATCH_FORGET, and every
 * opcode's semantics on top of `FsHost`, with read-only mode refusing each write opcode (EROFS) and
 * device-node creation refused unless allowed. Each request gets a reply with `error = -errno`
 * when anything is wrong (unknown nodeid or fh: ENOENT / EBADF; malformed body: EINVAL; unknown
 * opcode: ENOSYS); FORGET, BATCH_FORGET and INTERRUPT get none (used length 0).
 * Does not own: queues (model.ts), the tables (tables.ts), reply bytes (wire.ts), host calls.
 */
import type { DescriptorChain } from '../../queue/chain.js';
import type { DeviceLog } from '../../device/contract.js';
import { errnoOf } from './errors.js';
import type { FsHost, HostSetattr, HostStat } from './host.js';
import { FsCounters } from './metrics.js';
import { dirOps } from './ops-dir.js';
import { fileOps, readData, writeData } from './ops-file.js';
import * as S from './spec.js';
import { HandleTable, inodeKey, type Node, NodeTable } from './tables.js';
import { BadRequest, Body, writeReply } from './wire.js';

export interface SessionOptions {
  readonly host: FsHost;
  readonly readOnly: boolean;
  /** Let the guest create character and block device nodes (MKNOD S_IFCHR/S_IFBLK). Default off. */
  readonly allowDeviceNodes: boolean;
  readonly maxNodes: number;
  readonly maxHandles: number;
  /** max_write granted at INIT, and the cap on a WRITE's data. */
  readonly maxWrite: number;
  /** entry_valid and attr_valid in replies, seconds. */
  readonly timeoutSec: number;
  /** Log every request (opcode, nodeid, name, result) at info level. */
  readonly trace?: boolean;
  readonly log: DeviceLog;
}

/** Largest body accepted for requests other than WRITE: two names plus a symlink target. */
const MAX_BODY = 2 * (S.FUSE_NAME_MAX + 1) + S.FUSE_SYMLINK_MAX + 1 + 64;

/** Most entries one BATCH_FORGET is read for. */
const MAX_BATCH_FORGET = 4096;

/** What an operation answers: an errno (0: success without payload) or a payload. */
export type OpResult = number | Uint8Array;

/** The request as operations see it. */
export interface Request {
  readonly hdr: S.FuseInHeader;
  readonly body: Body;
  readonly chain: DescriptorChain;
  /** The node `hdr.nodeid` names. @throws BadRequest ENOENT when the session has no such node. */
  node(): Node;
}

export type Op = (s: FuseSession, r: Request) => OpResult;

/** Opcodes that change the file system: refused with EROFS in read-only mode. */
const WRITE_OPS: ReadonlySet<number> = new Set([
  S.FUSE_SETATTR, S.FUSE_SYMLINK, S.FUSE_MKNOD, S.FUSE_MKDIR, S.FUSE_UNLINK, S.FUSE_RMDIR, S.FUSE_RENAME, S.FUSE_LINK,
  S.FUSE_WRITE, S.FUSE_CREATE, S.FUSE_FALLOCATE, S.FUSE_RENAME2, S.FUSE_SETXATTR, S.FUSE_REMOVEXATTR,
]);

/**
 * INIT flags this server grants when the kernel offers them (Linux 6.12 offers more; see the
 * INIT trace in docs): parallel reads, O_TRUNC in OPEN, writes over 4 KiB, cache invalidation on a
 * changed mtime/size, READDIRPLUS (attributes with the listing, chosen by the kernel per directory),
 * parallel lookups and readdirs, max_pages, cached symlink targets. Not granted: WRITEBACK_CACHE
 * (the guest's page cache would hold writes the host does not see yet), DONT_MASK (the guest
 * applies its umask), POSIX_ACL and SECURITY_CTX (no xattrs), EXPORT_SUPPORT (no LOOKUP of "."
 * and ".." by the guest), anything DAX, INIT_EXT (no flag above bit 31 is granted).
 */
const GRANTED_FLAGS =
  S.FUSE_ASYNC_READ | S.FUSE_ATOMIC_O_TRUNC | S.FUSE_BIG_WRITES | S.FUSE_AUTO_INVAL_DATA | S.FUSE_DO_READDIRPLUS | S.FUSE_READDIRPLUS_AUTO | S.FUSE_PARALLEL_DIROPS | S.FUSE_MAX_PAGES | S.FUSE_CACHE_SYMLINKS;

/** Where the first name of a request body starts, by opcode (for traces). */
const NAME_AT: ReadonlyMap<number, number> = new Map([
  [S.FUSE_LOOKUP, 0], [S.FUSE_UNLINK, 0], [S.FUSE_RMDIR, 0], [S.FUSE_SYMLINK, 0], [S.FUSE_MKDIR, S.FUSE_MKDIR_IN_SIZE],
  [S.FUSE_MKNOD, S.FUSE_MKNOD_IN_SIZE], [S.FUSE_CREATE, S.FUSE_CREATE_IN_SIZE], [S.FUSE_LINK, S.FUSE_LINK_IN_SIZE],
  [S.FUSE_RENAME, S.FUSE_RENAME_IN_SIZE], [S.FUSE_RENAME2, S.FUSE_RENAME2_IN_SIZE],
]);

export class FuseSession {
  readonly opts: SessionOptions;
  readonly host: FsHost;
  readonly nodes: NodeTable;
  readonly handles: HandleTable;
  readonly counters = new FsCounters();
  #initialized = false;
  /** The errno of the reply being written (0: success), for traces. */
  #lastError = 0;
  readonly #ops: ReadonlyMap<number, Op>;

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.host = opts.host;
    const st = opts.host.stat(opts.host.root);
    this.nodes = new NodeTable(opts.host, opts.maxNodes, inodeKey(st.dev, st.ino), st.mode & S.S_IFMT);
    this.handles = new HandleTable(opts.host, opts.maxHandles);
    this.#ops = new Map<number, Op>([
      [S.FUSE_INIT, (s, r) => s.#init(r)],
      [S.FUSE_DESTROY, (s) => s.#destroy()],
      [S.FUSE_STATFS, (s, r) => statfsReply(s.host.statfs(r.node().host))],
      [S.FUSE_FLUSH, (s, r) => s.#flush(r)],
      ...dirOps,
      ...fileOps,
    ]);
  }

  get initialized(): boolean {
    return this.#initialized;
  }

  /** Serves one chain from a request queue; returns the used length. */
  handle(chain: DescriptorChain): number {
    this.counters.requests++;
    if (chain.readableLength < S.FUSE_IN_HEADER_SIZE) {
      // No header, so no unique to answer with: the chain goes back empty.
      this.counters.malformed++;
      return 0;
    }
    const reader = chain.reader();
    const hb = reader.readBytes(S.FUSE_IN_HEADER_SIZE);
    const hdr = S.decodeInHeader(new DataView(hb.buffer));
    if (hdr.len < S.FUSE_IN_HEADER_SIZE || hdr.len > chain.readableLength) {
      this.counters.malformed++;
      return this.#error(chain, hdr.unique, S.EINVAL);
    }
    if (hdr.opcode === S.FUSE_FORGET || hdr.opcode === S.FUSE_BATCH_FORGET || hdr.opcode === S.FUSE_INTERRUPT) {
      // Valid on request queues too (the kernel puts them on hiprio); never answered.
      return this.hiprio(chain);
    }
    const bodyLen = hdr.len - S.FUSE_IN_HEADER_SIZE;
    // WRITE carries its data after the fixed part; ops-file.ts reads it from the chain in place.
    const fixed = hdr.opcode === S.FUSE_WRITE ? Math.min(bodyLen, S.FUSE_WRITE_IN_SIZE) : bodyLen;
    if (fixed > MAX_BODY) {
      this.counters.malformed++;
      return this.#error(chain, hdr.unique, S.EINVAL);
    }
    const body = new Body(reader.readBytes(fixed));
    const req: Request = { hdr, body, chain, node: () => this.#node(hdr.nodeid) };
    this.#lastError = 0;
    const used = this.#dispatch(req, reader);
    if (this.opts.trace === true) this.#trace(hdr, body, used);
    return used;
  }

  #trace(hdr: S.FuseInHeader, body: Body, used: number): void {
    const at = NAME_AT.get(hdr.opcode);
    let name = '';
    if (at !== undefined && at < body.length) {
      const end = body.bytes.indexOf(0, at);
      name = ` ${JSON.stringify(Buffer.from(body.bytes.subarray(at, end < 0 ? body.length : end)).toString('latin1'))}`;
    }
    const result = this.#lastError === 0 ? `ok ${used}` : `error -${this.#lastError}`;
    this.opts.log.info(`fuse ${S.opcodeName(hdr.opcode)} node ${hdr.nodeid}${name} -> ${result}`);
  }

  #dispatch(req: Request, reader: ReturnType<DescriptorChain['reader']>): number {
    const { hdr, chain } = req;
    this.counters.countOp(hdr.opcode);
    if (!this.#initialized && hdr.opcode !== S.FUSE_INIT) return this.#error(chain, hdr.unique, S.EIO);
    if (this.opts.readOnly && WRITE_OPS.has(hdr.opcode)) return this.#error(chain, hdr.unique, S.EROFS);
    const op = hdr.opcode === S.FUSE_WRITE ? undefined : this.#ops.get(hdr.opcode);
    try {
      if (hdr.opcode === S.FUSE_WRITE) return writeData(this, req, reader);
      if (hdr.opcode === S.FUSE_READ) return readData(this, req);
      if (op === undefined) return this.#error(chain, hdr.unique, S.ENOSYS);
      const out = op(this, req);
      return typeof out === 'number' ? this.#error(chain, hdr.unique, out) : writeReply(chain, hdr.unique, 0, out);
    } catch (e: unknown) {
      return this.#error(chain, hdr.unique, this.#errnoFor(e, hdr.opcode));
    }
  }

  #errnoFor(e: unknown, opcode: number): number {
    if (e instanceof BadRequest) {
      this.counters.malformed++;
      return e.errno;
    }
    const errno = errnoOf(e);
    if (errno !== undefined) return errno;
    // Not a host errno: an AVP bug. Answer EIO and say so once per occurrence.
    this.opts.log.error(`fs: opcode ${opcode} failed: ${e instanceof Error ? e.message : String(e)}`);
    return S.EIO;
  }

  #error(chain: DescriptorChain, unique: bigint, errno: number): number {
    this.#lastError = errno;
    if (errno !== 0) this.counters.errors++;
    const n = writeReply(chain, unique, errno);
    if (n === 0) this.counters.noReplyRoom++;
    return n;
  }

  #node(id: bigint): Node {
    const n = this.nodes.get(id);
    if (n === undefined) {
      this.counters.unknownNodes++;
      throw new BadRequest(S.ENOENT, `unknown nodeid ${id}`);
    }
    return n;
  }

  /** Serves a chain from the hiprio queue: FORGET, BATCH_FORGET (no reply), INTERRUPT (ignored). */
  hiprio(chain: DescriptorChain): number {
    if (chain.readableLength < S.FUSE_IN_HEADER_SIZE) {
      this.counters.malformed++;
      return 0;
    }
    const reader = chain.reader();
    const hdr = S.decodeInHeader(new DataView(reader.readBytes(S.FUSE_IN_HEADER_SIZE).buffer));
    const bodyLen = Math.min(Math.max(hdr.len, S.FUSE_IN_HEADER_SIZE), chain.readableLength) - S.FUSE_IN_HEADER_SIZE;
    this.counters.countOp(hdr.opcode);
    if (hdr.opcode === S.FUSE_FORGET) {
      if (bodyLen >= S.FUSE_FORGET_IN_SIZE) this.nodes.forget(hdr.nodeid, new Body(reader.readBytes(8)).u64(0));
      else this.counters.malformed++;
    } else if (hdr.opcode === S.FUSE_BATCH_FORGET) {
      if (bodyLen < S.FUSE_BATCH_FORGET_IN_SIZE) {
        this.counters.malformed++;
        return 0;
      }
      const head = new Body(reader.readBytes(8));
      // The count is the guest's claim: only entries actually present are read, and at most
      // MAX_BATCH_FORGET of them (Linux's virtiofs sends single FORGETs; a huge buffer of entries
      // must not stall the back-end).
      const present = Math.floor((bodyLen - 8) / S.FUSE_FORGET_ONE_SIZE);
      const count = Math.min(head.u32(0), present, MAX_BATCH_FORGET);
      if (count < head.u32(0)) this.counters.malformed++;
      for (let i = 0; i < count; i++) {
        const one = new Body(reader.readBytes(S.FUSE_FORGET_ONE_SIZE));
        this.nodes.forget(one.u64(0), one.u64(8));
      }
    } else if (hdr.opcode !== S.FUSE_INTERRUPT) {
      this.counters.malformed++;
    }
    if (this.opts.trace === true) this.opts.log.info(`fuse ${S.opcodeName(hdr.opcode)} node ${hdr.nodeid} (hiprio, no reply)`);
    return 0;
  }

  #init(r: Request): OpResult {
    r.body.need(S.FUSE_INIT_IN_COMPAT_SIZE, 'INIT');
    const major = r.body.u32(0);
    const minor = r.body.u32(4);
    if (major < S.FUSE_KERNEL_VERSION) return S.EPROTO;
    if (this.#initialized) return S.EPROTO; // one INIT per session (§5.11.6.1); DESTROY or reset first
    const out = new Uint8Array(S.FUSE_INIT_OUT_SIZE);
    const v = new DataView(out.buffer);
    v.setUint32(0, S.FUSE_KERNEL_VERSION, true);
    v.setUint32(4, S.FUSE_KERNEL_MINOR_VERSION, true);
    if (major > S.FUSE_KERNEL_VERSION) return out.subarray(0, 8); // "use 7.x": the kernel retries
    const offered = r.body.u32(12);
    // flags2 (fuse_init_in since 7.36) is meaningful only with INIT_EXT in flags.
    const offered2 = r.body.length >= 24 && (offered & S.FUSE_INIT_EXT) !== 0 ? r.body.u32(16) : 0;
    const granted = offered & GRANTED_FLAGS;
    this.opts.log.info(`fs: FUSE_INIT ${major}.${minor}, flags 0x${offered.toString(16)}, flags2 0x${offered2.toString(16)}, max_readahead ${r.body.u32(8)}; granted 7.${S.FUSE_KERNEL_MINOR_VERSION} flags 0x${granted.toString(16)}`);
    v.setUint32(8, r.body.u32(8), true); // max_readahead: as the kernel asks
    v.setUint32(12, granted, true);
    v.setUint16(16, 64, true); // max_background
    v.setUint16(18, 48, true); // congestion_threshold
    v.setUint32(20, this.opts.maxWrite, true);
    v.setUint32(24, 1, true); // time_gran: nanoseconds
    v.setUint16(28, Math.min(0xffff, Math.ceil(this.opts.maxWrite / 4096)), true); // max_pages
    this.#initialized = true;
    // Kernels before 7.23 expect the 24-byte reply (FUSE_COMPAT_22_INIT_OUT_SIZE).
    return minor < 23 ? out.subarray(0, 24) : out;
  }

  #destroy(): OpResult {
    this.reset();
    return 0;
  }

  #flush(r: Request): OpResult {
    r.body.need(S.FUSE_FLUSH_IN_SIZE, 'FLUSH');
    return this.handles.get(r.body.u64(0), false) === undefined ? S.EBADF : 0;
  }

  /** Closes every handle and forgets every node but the root; INIT is needed again. */
  reset(): void {
    this.handles.clear();
    this.nodes.clear();
    this.#initialized = false;
  }

  /** fuse_entry_out for host node `h`, just looked up or created; counts one lookup. */
  entry(h: number): Uint8Array {
    let st: HostStat;
    try {
      st = this.host.stat(h);
    } catch (e: unknown) {
      this.host.release(h);
      throw e;
    }
    const node = this.nodes.add(h, inodeKey(st.dev, st.ino), st.mode & S.S_IFMT);
    if (node === undefined) throw new BadRequest(S.ENFILE, 'node table full');
    const out = new Uint8Array(S.FUSE_ENTRY_OUT_SIZE);
    S.encodeEntryOut(new DataView(out.buffer), 0, node.id, this.opts.timeoutSec, toAttr(st));
    return out;
  }

  /** fuse_attr_out for `node`. */
  attrOut(node: Node): Uint8Array {
    const out = new Uint8Array(S.FUSE_ATTR_OUT_SIZE);
    S.encodeAttrOut(new DataView(out.buffer), 0, this.opts.timeoutSec, toAttr(this.host.stat(node.host)));
    return out;
  }

  /** Gives a node the guest just created to the requesting user (the back-end runs as root). */
  own(h: number, hdr: S.FuseInHeader): Uint8Array {
    if (hdr.uid !== 0 || hdr.gid !== 0) {
      const ch: HostSetattr = { uid: hdr.uid, gid: hdr.gid };
      try {
        this.host.setattr(h, undefined, ch);
      } catch {
        // Not root, or an id the host does not have: the file stays the back-end's.
      }
    }
    return this.entry(h);
  }
}

export function toAttr(st: HostStat): S.FuseAttr {
  return {
    ino: st.ino,
    size: st.size,
    blocks: st.blocks,
    atime: st.atimeSec < 0n ? 0n : st.atimeSec,
    mtime: st.mtimeSec < 0n ? 0n : st.mtimeSec,
    ctime: st.ctimeSec < 0n ? 0n : st.ctimeSec,
    atimensec: st.atimeNsec,
    mtimensec: st.mtimeNsec,
    ctimensec: st.ctimeNsec,
    mode: st.mode,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    rdev: S.encodeDev(st.rdevMajor, st.rdevMinor),
    blksize: st.blksize,
  };
}

function statfsReply(st: ReturnType<FsHost['statfs']>): Uint8Array {
  const out = new Uint8Array(S.FUSE_STATFS_OUT_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, st.blocks, true);
  v.setBigUint64(8, st.bfree, true);
  v.setBigUint64(16, st.bavail, true);
  v.setBigUint64(24, st.files, true);
  v.setBigUint64(32, st.ffree, true);
  v.setUint32(40, st.bsize, true);
  v.setUint32(44, st.namemax, true);
  v.setUint32(48, st.frsize, true);
  return out;
}
