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
 *
 * Helpers for the conformance suite and benchmarks: GET_CONFIG / SET_CONFIG, a ring stop
 * (`stopVring`: SET_VRING_ENABLE 0 then GET_VRING_BASE, as QEMU 7.2 does), reading whatever reply
 * comes (`readAnyReply`, for hand-built messages), and waiting on several eventfds and the socket
 * at once (`waitEvents`), so a caller waiting for a used buffer also learns at once that the
 * back-end signalled its error eventfd or hung up. A back-end that closes the connection shows as
 * VHOST_USER_FRONTEND_DISCONNECTED on every path, never as a raw socket error.
 */
import { RegionGuestMemory } from '../memory/guest-memory.js';
import {
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLRDHUP,
  SysError,
  SysEofError,
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
import { encodeRequest, hasOwnReply, type BackendReply, type FrontendRequestInit, type FrontendRequestType, type MemoryRegion, type VhostUserConfig } from './messages.js';
import { VhostUserReplyParser } from './parser.js';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_FDS, VHOST_USER_PROTOCOL_F_REPLY_ACK } from './protocol.js';

export interface FrontendOptions {
  /** How long to wait for a reply before failing (default 10 s: generous on a loaded machine). */
  replyTimeoutMs?: number;
}

/** The eventfds of one ring set up by `setupVring` (owned by the front-end, closed by `close`). */
export interface VringFds {
  /** Write to notify the back-end (available buffers). */
  readonly kick: number;
  /** Readable when the back-end notifies (used buffers). */
  readonly call: number;
  /** Readable when the back-end signals an error on the ring (SET_VRING_ERR). */
  readonly err: number;
}

/** What `waitEvents` saw: the counters of the eventfds that fired (read, so reset), and the socket. */
export interface WaitResult {
  /** fd → eventfd counter read (the number of signals since the last read). */
  readonly fired: ReadonlyMap<number, bigint>;
  /** The back-end closed the connection (or the socket reported an error). */
  readonly hangup: boolean;
}

/** A reply read without knowing which request it answers, or why none came. */
export type AnyReply = { readonly kind: 'reply'; readonly reply: BackendReply } | { readonly kind: 'closed' } | { readonly kind: 'timeout' };

const HANGUP = POLLHUP | POLLRDHUP | POLLERR;

/** True for socket errors that only mean "the peer went away". */
function isPeerGone(e: unknown): boolean {
  return e instanceof SysEofError || (e instanceof SysError && ['EPIPE', 'ECONNRESET', 'ENOTCONN'].includes(e.errnoName));
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
    this.#send(bytes, fds, 'raw message');
  }

  #send(bytes: Uint8Array, fds: readonly number[], what: string): void {
    try {
      sendMsg(this.fd, bytes, fds);
    } catch (e: unknown) {
      if (!isPeerGone(e)) throw e;
      throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `${what}: back-end closed the connection`, { cause: e });
    }
  }

  /**
   * Sends a request. Waits for and returns the reply when the request has one of its own, or when
   * `needReply` is set and REPLY_ACK was negotiated; otherwise returns null at once.
   * @throws VhostUserFrontendError on timeout, disconnect, or a reply that is not the one expected.
   */
  request(init: FrontendRequestInit): BackendReply | null {
    const msg = encodeRequest(init);
    if (init.type === 'SET_PROTOCOL_FEATURES') this.#protocol = init.body;
    this.#send(msg.bytes, msg.fds, init.type);
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
    const got = this.#readNext(this.#timeout, type);
    if (got.kind === 'timeout') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_TIMEOUT', `${type}: no reply within ${this.#timeout} ms`);
    if (got.kind === 'closed') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `${type}: back-end closed the connection`);
    const reply = got.reply;
    const matches = reply.type === type || (reply.type === 'ACK' && !hasOwnReply(type));
    if (!matches) throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', `${type}: got a ${reply.type} reply instead`);
    return reply;
  }

  /**
   * Reads the next reply whatever request it answers (a hand-built message sent with `sendRaw`),
   * or reports that the back-end closed the connection or sent nothing within `timeoutMs`.
   * @throws VhostUserFrontendError BAD_REPLY for bytes that are not a valid reply.
   */
  readAnyReply(timeoutMs: number = this.#timeout): AnyReply {
    return this.#readNext(timeoutMs, 'reply');
  }

  #readNext(timeoutMs: number, what: string): AnyReply {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      // A closed peer reads as readable (EOF); POLLHUP alone is treated the same way.
      if (left <= 0 || !(poll([{ fd: this.fd, events: POLLIN }], Math.ceil(left))[0]! & (POLLIN | POLLHUP))) return { kind: 'timeout' };
      const header = new Uint8Array(VHOST_USER_HDR_SIZE);
      try {
        const got = recvMsg(this.fd, header, VHOST_USER_MAX_FDS);
        if (got.bytes === 0) return { kind: 'closed' };
        if (got.bytes < header.length && !recvExact(this.fd, header.subarray(got.bytes))) return { kind: 'closed' };
        const size = new DataView(header.buffer).getUint32(8, true);
        // Only read a payload the parser will accept (it checks the size cap from the header).
        const items = this.#parser.push(header, got.fds);
        if (this.#parser.failure === null && size > 0) {
          const payload = new Uint8Array(size);
          if (!recvExact(this.fd, payload)) return { kind: 'closed' };
          items.push(...this.#parser.push(payload));
        }
        for (const item of items) {
          if (item.kind === 'error') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', `${what}: ${item.error.message}`, { cause: item.error });
          return { kind: 'reply', reply: item.message };
        }
      } catch (e: unknown) {
        if (isPeerGone(e)) return { kind: 'closed' };
        throw e;
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
   * GET_CONFIG for `size` bytes at `offset`. Returns the reply as sent: null for the document's
   * error form (a zero-length payload); the caller compares `payload.length` with `size` ("the
   * back-end's payload size MUST match the front-end's request").
   */
  getConfig(offset: number, size: number, flags = 0): VhostUserConfig | null {
    const reply = this.request({ type: 'GET_CONFIG', body: { offset, flags, payload: new Uint8Array(size) }, fds: [] });
    if (reply?.type !== 'GET_CONFIG') throw new VhostUserFrontendError('VHOST_USER_FRONTEND_BAD_REPLY', 'GET_CONFIG: unexpected reply');
    return reply.body;
  }

  /**
   * SET_CONFIG (`flags` 0: a driver write of writable fields; 1: live migration). With REPLY_ACK
   * negotiated the ack is asked for and returned (0 = accepted); otherwise null.
   */
  setConfig(offset: number, payload: Uint8Array, flags = 0): bigint | null {
    const reply = this.request({ type: 'SET_CONFIG', body: { offset, flags, payload }, fds: [], needReply: this.#replyAck() });
    return reply?.type === 'ACK' ? reply.body : null;
  }

  #replyAck(): boolean {
    return (this.#protocol & (1n << BigInt(VHOST_USER_PROTOCOL_F_REPLY_ACK))) !== 0n;
  }

  /**
   * Stops ring `index` the way QEMU 7.2 does (vhost-user-protocol.md §7.1): SET_VRING_ENABLE 0 when
   * `disable` (only legal with VHOST_USER_F_PROTOCOL_FEATURES negotiated), then GET_VRING_BASE.
   * Returns the next avail index the back-end reports.
   */
  stopVring(index: number, opts: { disable?: boolean } = {}): number {
    if (opts.disable ?? true) this.request({ type: 'SET_VRING_ENABLE', body: { index, num: 0 }, fds: [] });
    return this.getVringBase(index);
  }

  /**
   * Waits until any of `eventFds` is signalled or the back-end hangs up, at most `timeoutMs`
   * (0 = just look). Fired eventfds are read (their counters reset) and reported with the count.
   */
  waitEvents(eventFds: readonly number[], timeoutMs: number): WaitResult {
    const revents = poll([...eventFds.map((fd) => ({ fd, events: POLLIN })), { fd: this.fd, events: POLLRDHUP }], Math.max(0, Math.ceil(timeoutMs)));
    const fired = new Map<number, bigint>();
    eventFds.forEach((fd, i) => {
      if ((revents[i] ?? 0) & POLLIN) fired.set(fd, eventfdRead(fd));
    });
    return { fired, hangup: ((revents[eventFds.length] ?? 0) & HANGUP) !== 0 };
  }

  /** True when the back-end has closed the connection (looks, never waits). */
  peerClosed(): boolean {
    return this.waitEvents([], 0).hangup;
  }

  /**
   * Creates `size` bytes of shared guest memory at guest-physical `guestBase`, announced at
   * front-end address `userBase`, and sends it (ADD_MEM_REG when `addMemReg`, else SET_MEM_TABLE).
   */
  createMemory(size: number, opts: { guestBase?: number; userBase?: number; addMemReg?: boolean } = {}): FrontendMemory {
    const guestBase = opts.guestBase ?? 0;
    const userBase = opts.userBase ?? 0x7f00_0000_0000;
    // Sealable, as QEMU's memory-backend-memfd makes guest RAM: a back-end may seal it (F_SEAL_SHRINK).
    const fd = memfdCreate('avp-guest', size, { allowSealing: true });
    this.#owned.push(fd);
    const mapping = mmapShared(fd, size);
    this.#mappings.push(mapping);
    const memory = new RegionGuestMemory([{ guestBase, bytes: new Uint8Array(mapping.buffer) }]);
    const region: MemoryRegion = { guestAddr: guestBase, size, userAddr: userBase, mmapOffset: 0 };
    const replyAck = this.#replyAck();
    const init: FrontendRequestInit = opts.addMemReg ? { type: 'ADD_MEM_REG', body: region, fds: [fd] } : { type: 'SET_MEM_TABLE', body: { regions: [region] }, fds: [fd] };
    if (replyAck) this.requestAcked(init);
    else this.request(init);
    return { memory, region, fd, mapping };
  }

  /**
   * Sets up and enables ring `index` (SET_VRING_NUM, BASE, ADDR, ERR, CALL, KICK, ENABLE),
   * translating the guest-physical ring addresses to front-end addresses of `mem`. Returns the
   * eventfds: write `kick` to notify the back-end; `call` becomes readable when the back-end
   * notifies, `err` when it reports a ring error.
   */
  setupVring(index: number, size: number, rings: RingAddresses, mem: FrontendMemory, opts: { base?: number; enable?: boolean; ack?: boolean } = {}): VringFds {
    const toUser = (gpa: number) => gpa - mem.region.guestAddr + mem.region.userAddr;
    const kick = eventfdCreate();
    const call = eventfdCreate();
    const err = eventfdCreate();
    this.#owned.push(kick, call, err);
    // With `ack`, every message asks for a REPLY_ACK and a failure throws (conformance checks).
    const send = (init: FrontendRequestInit) => (opts.ack === true ? this.requestAcked(init) : void this.request(init));
    send({ type: 'SET_VRING_NUM', body: { index, num: size }, fds: [] });
    send({ type: 'SET_VRING_BASE', body: { index, num: opts.base ?? 0 }, fds: [] });
    send({ type: 'SET_VRING_ADDR', body: { index, flags: 0, desc: toUser(rings.desc), used: toUser(rings.used), avail: toUser(rings.avail), log: 0 }, fds: [] });
    send({ type: 'SET_VRING_ERR', body: { index, noFd: false }, fds: [err] });
    send({ type: 'SET_VRING_CALL', body: { index, noFd: false }, fds: [call] });
    send({ type: 'SET_VRING_KICK', body: { index, noFd: false }, fds: [kick] });
    if (opts.enable ?? true) send({ type: 'SET_VRING_ENABLE', body: { index, num: 1 }, fds: [] });
    return { kick, call, err };
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

  /** True once `close` ran. */
  get closed(): boolean {
    return this.#closed;
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
