// SPDX-License-Identifier: Apache-2.0
/**
 * A vhost-user front-end (the driver side): what QEMU does towards a back-end, in TypeScript.
 * The back-end tests, the conformance suite and the benchmark harness drive any back-end with it.
 *
 * Owns: the connection (connect to a socket path), sending requests and waiting for their replies
 * with a deadline, guest memory it creates itself (a memfd mapped here and handed to the back-end),
 * and ring setup with eventfds it creates. Guest memory is placed at guest-physical `guestBase`
 * and announced at front-end virtual `userBase`, deliberately different, so a back-end that mixes
 * up the two address spaces fails.
 * Does not own: the guest-driver half of a ring (`queue/split-driver.ts` does that over
 * `memory`), or verdicts (the conformance layer).
 *
 * Everything here blocks the calling thread (poll with a deadline): run it in tests, the CLI's
 * conformance worker or a benchmark, never in a server's event loop.
 */
import { RegionGuestMemory } from '../memory/guest-memory.js';
import {
  POLLIN,
  closeQuiet,
  connectUnix,
  eventfdCreate,
  eventfdRead,
  memfdCreate,
  mmapShared,
  munmap,
  poll,
  recvExact,
  recvMsg,
  sendMsg,
  type Mapping,
} from '../sys/index.js';
import type { RingAddresses } from '../queue/rings.js';
import { VhostUserFrontendError } from './frontend-errors.js';
import { encodeRequest, hasOwnReply, type BackendReply, type FrontendRequestInit, type FrontendRequestType, type MemoryRegion } from './messages.js';
import { VhostUserReplyParser } from './parser.js';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_FDS, VHOST_USER_PROTOCOL_F_REPLY_ACK } from './protocol.js';

export interface FrontendOptions {
  /** How long to wait for a reply before failing (default 10 s: generous on a loaded machine). */
  replyTimeoutMs?: number;
}

/** Guest memory created by the front-end. */
export interface FrontendMemory {
  readonly memory: RegionGuestMemory;
  readonly region: MemoryRegion;
  readonly fd: number;
  readonly mapping: Mapping;
}

export class VhostUserFrontend {
  readonly fd: number;
  readonly #timeout: number;
  readonly #parser = new VhostUserReplyParser({ closeFd: (f) => void closeQuiet(f) });
  #protocol = 0n;
  #closed = false;
  readonly #owned: number[] = [];
  readonly #mappings: Mapping[] = [];

  private constructor(fd: number, opts: FrontendOptions) {
    this.fd = fd;
    this.#timeout = opts.replyTimeoutMs ?? 10_000;
  }

  /** Connects to a back-end listening on `path`. */
  static connect(path: string, opts: FrontendOptions = {}): VhostUserFrontend {
    return new VhostUserFrontend(connectUnix(path), opts);
  }

  /** Wraps an already connected socket (taken over: closed by `close`). */
  static fromFd(fd: number, opts: FrontendOptions = {}): VhostUserFrontend {
    return new VhostUserFrontend(fd, opts);
  }

  /** Protocol features this front-end negotiated with SET_PROTOCOL_FEATURES. */
  get protocolFeatures(): bigint {
    return this.#protocol;
  }

  /** Sends raw bytes (hostile tests: malformed headers, odd sizes) with optional fds. */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    sendMsg(this.fd, bytes, fds);
  }

  /**
   * Sends a request. Waits for and returns the reply when the request has one of its own, or when
   * `needReply` is set and REPLY_ACK was negotiated; otherwise returns null at once.
   * @throws VhostUserFrontendError on timeout, disconnect, or a reply that is not the one expected.
   */
  request(init: FrontendRequestInit): BackendReply | null {
    const msg = encodeRequest(init);
    if (init.type === 'SET_PROTOCOL_FEATURES') this.#protocol = init.body;
    sendMsg(this.fd, msg.bytes, msg.fds);
    const acked = init.needReply === true && (this.#protocol & (1n << BigInt(VHOST_USER_PROTOCOL_F_REPLY_ACK))) !== 0n;
    if (!hasOwnReply(init.type) && !acked) return null;
    return this.readReply(init.type);
  }

  /** Sends a request that must be acknowledged and throws unless the ack is 0. */
  requestAcked(init: FrontendRequestInit): void {
    const reply = this.request({ ...init, needReply: true } as FrontendRequestInit);
    if (reply === null) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_NO_ACK', `${init.type}: REPLY_ACK is not negotiated, no ack to wait for`);
    if (reply.type === 'ACK' && reply.body !== 0n) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_NACK', `${init.type}: back-end answered failure (${reply.body})`);
  }

  /** Waits for the next reply and checks it answers `type`. */
  readReply(type: FrontendRequestType): BackendReply {
    const deadline = Date.now() + this.#timeout;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || !(poll([{ fd: this.fd, events: POLLIN }], left)[0]! & POLLIN)) {
        throw new VhostUserFrontendError('VHOST_USER_FRONTEND_TIMEOUT', `${type}: no reply within ${this.#timeout} ms`);
      }
      const header = new Uint8Array(VHOST_USER_HDR_SIZE);
      const got = recvMsg(this.fd, header, VHOST_USER_MAX_FDS);
      if (got.bytes === 0) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `${type}: back-end closed the connection`);
      if (got.bytes < header.length && !recvExact(this.fd, header.subarray(got.bytes))) {
        throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `${type}: back-end closed inside a header`);
      }
      const items = this.#parser.push(header, got.fds);
      const size = new DataView(header.buffer).getUint32(8, true);
      if (this.#parser.failure === null && size > 0) {
        const payload = new Uint8Array(size);
        if (!recvExact(this.fd, payload)) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `${type}: back-end closed inside a payload`);
        items.push(...this.#parser.push(payload));
      }
      for (const item of items) {
        if (item.kind === 'error') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', `${type}: ${item.error.message}`, { cause: item.error });
        const reply = item.message;
        const matches = reply.type === type || (reply.type === 'ACK' && !hasOwnReply(type));
        if (!matches) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', `${type}: got a ${reply.type} reply instead`);
        return reply;
      }
    }
  }

  /** A request whose reply is a u64 (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, ...). */
  getU64(type: 'GET_FEATURES' | 'GET_PROTOCOL_FEATURES' | 'GET_QUEUE_NUM' | 'GET_MAX_MEM_SLOTS'): bigint {
    const reply = this.request({ type, body: null, fds: [] });
    if (reply === null || reply.type !== type) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', `${type}: unexpected reply`);
    return reply.body;
  }

  /**
   * Creates `size` bytes of shared guest memory at guest-physical `guestBase`, announced at
   * front-end address `userBase`, and sends it (ADD_MEM_REG when `addMemReg`, else SET_MEM_TABLE).
   */
  createMemory(size: number, opts: { guestBase?: number; userBase?: number; addMemReg?: boolean } = {}): FrontendMemory {
    const guestBase = opts.guestBase ?? 0;
    const userBase = opts.userBase ?? 0x7f00_0000_0000;
    const fd = memfdCreate('avp-guest', size);
    this.#owned.push(fd);
    const mapping = mmapShared(fd, size);
    this.#mappings.push(mapping);
    const memory = new RegionGuestMemory([{ guestBase, bytes: new Uint8Array(mapping.buffer) }]);
    const region: MemoryRegion = { guestAddr: guestBase, size, userAddr: userBase, mmapOffset: 0 };
    const replyAck = (this.#protocol & (1n << BigInt(VHOST_USER_PROTOCOL_F_REPLY_ACK))) !== 0n;
    const init: FrontendRequestInit = opts.addMemReg ? { type: 'ADD_MEM_REG', body: region, fds: [fd] } : { type: 'SET_MEM_TABLE', body: { regions: [region] }, fds: [fd] };
    if (replyAck) this.requestAcked(init);
    else this.request(init);
    return { memory, region, fd, mapping };
  }

  /**
   * Sets up and enables ring `index` (SET_VRING_NUM, BASE, ADDR, KICK, CALL, ENABLE), translating
   * the guest-physical ring addresses to front-end addresses of `mem`. Returns the eventfds: write
   * `kick` to notify the back-end; `call` becomes readable when the back-end notifies.
   */
  setupVring(index: number, size: number, rings: RingAddresses, mem: FrontendMemory, opts: { base?: number; enable?: boolean } = {}): { kick: number; call: number } {
    const toUser = (gpa: number) => gpa - mem.region.guestAddr + mem.region.userAddr;
    const kick = eventfdCreate();
    const call = eventfdCreate();
    this.#owned.push(kick, call);
    this.request({ type: 'SET_VRING_NUM', body: { index, num: size }, fds: [] });
    this.request({ type: 'SET_VRING_BASE', body: { index, num: opts.base ?? 0 }, fds: [] });
    this.request({ type: 'SET_VRING_ADDR', body: { index, flags: 0, desc: toUser(rings.desc), used: toUser(rings.used), avail: toUser(rings.avail), log: 0 }, fds: [] });
    this.request({ type: 'SET_VRING_CALL', body: { index, noFd: false }, fds: [call] });
    this.request({ type: 'SET_VRING_KICK', body: { index, noFd: false }, fds: [kick] });
    if (opts.enable ?? true) this.request({ type: 'SET_VRING_ENABLE', body: { index, num: 1 }, fds: [] });
    return { kick, call };
  }

  /** GET_VRING_BASE: stops ring `index` and returns its next avail index. */
  getVringBase(index: number): number {
    const reply = this.request({ type: 'GET_VRING_BASE', body: { index, num: 0 }, fds: [] });
    if (reply?.type !== 'GET_VRING_BASE') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', 'GET_VRING_BASE: unexpected reply');
    return reply.body.num;
  }

  /** Waits until `callFd` is signalled (or the deadline passes); returns true when it was. */
  waitCall(callFd: number, timeoutMs = this.#timeout): boolean {
    const ready = poll([{ fd: callFd, events: POLLIN }], timeoutMs)[0] ?? 0;
    if (!(ready & POLLIN)) return false;
    eventfdRead(callFd);
    return true;
  }

  /** Closes the connection, the eventfds and memfds it created, and unmaps its memory. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuiet(this.fd);
    for (const fd of this.#owned) closeQuiet(fd);
    for (const m of this.#mappings) munmap(m);
  }
}
