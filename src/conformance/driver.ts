// SPDX-License-Identifier: Apache-2.0
/**
 * `ConformanceDriver` over vhost-user: AVP's front-end playing QEMU and the guest driver at once
 * against any back-end socket.
 *
 * Owns: one connection's handshake (GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER,
 * SET_FEATURES, memory, rings) the way QEMU 7.2 does it (shared/reference/vhost-user-protocol.md
 * §9), guest memory with canaries (every byte the driver has not handed to the device as writable
 * holds a known pattern, so any stray write shows), requests and waiting for their used elements
 * (woken by the call eventfd, the error eventfd or a hang-up; the used ring is also looked at
 * every few milliseconds, so checks that suppress notifications still see completions), interrupt
 * counting, and the recoveries a VMM can do after a device refused a corrupt ring: a QEMU-style
 * device restart (stop the rings, SET_FEATURES, fresh rings, what a guest reset does) and
 * RESET_DEVICE.
 * Does not own: verdicts (checks and the runner), the device's request formats
 * (`devices/<name>/conformance.ts`).
 *
 * Layout: guest memory starts at guest-physical 4 GiB, so every buffer address needs the high
 * 32 bits, and is announced at an unrelated front-end virtual address, so a back-end that mixes up
 * the two address spaces (vhost-user.rst "Memory access") fails at once.
 */
import {
  DEFAULT_DRIVER_FEATURES,
  type ConfigWriteResult,
  type ConformanceDriver,
  type DeviceConformance,
  type DriverStartOptions,
  type RequestOptions,
  type UsedElement,
} from '../device/conformance.js';
import { GuestAllocator } from '../memory/allocator.js';
import { DriverQueue, type DriverBuffer } from '../queue/split-driver.js';
import { PackedDriverQueue } from '../queue/packed-driver.js';
import { PACKED_FRESH_BASE } from '../queue/packed-device.js';
import type { DriverVirtqueue } from '../queue/virtqueue.js';
import { PVIRTQ_EVENT_SIZE, packedDescRingSize } from '../spec/packed-ring.js';
import {
  VIRTQ_DESC_SIZE,
  USED_FLAGS_OFF,
  availEventOff,
  availRingSize,
  descTableSize,
  usedRingSize,
} from '../spec/split-ring.js';
import {
  VHOST_USER_F_PROTOCOL_FEATURES,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_RING_PACKED,
  featureBit,
  hasFeature,
} from '../spec/virtio.js';
import { eventfdWrite } from '../sys/index.js';
import { VhostUserFrontend, type FrontendMemory, type VringFds } from '../vhost-user/frontend.js';
import { VhostUserFrontendError } from '../vhost-user/frontend-errors.js';
import {
  VHOST_USER_PROTOCOL_F_CONFIG,
  VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
  VHOST_USER_PROTOCOL_F_CRYPTO_SESSION,
  VHOST_USER_PROTOCOL_F_MQ,
  VHOST_USER_PROTOCOL_F_REPLY_ACK,
  VHOST_USER_PROTOCOL_F_RESET_DEVICE,
} from '../vhost-user/protocol.js';
import { ConformanceError } from './errors.js';

/** Guest-physical base of the driver's memory: above 4 GiB on purpose (see file comment). */
export const GUEST_BASE = 0x1_0000_0000;
/** Front-end virtual address the memory is announced at. */
export const USER_BASE = 0x7f12_3400_0000;
/** Default guest memory size. */
export const DEFAULT_MEMORY_SIZE = 2 << 20;
/** Bytes of canary kept on each side of every buffer. */
export const GUARD_BYTES = 32;
/** Default queue size: small, so hostile indexes are easy to reach, big enough for every check. */
export const DEFAULT_QUEUE_SIZE = 16;

/** Protocol features the driver takes when offered: the ones it implements. */
export const DRIVER_PROTOCOL_FEATURES =
  featureBit(VHOST_USER_PROTOCOL_F_MQ) |
  featureBit(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
  featureBit(VHOST_USER_PROTOCOL_F_CONFIG) |
  featureBit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
  featureBit(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
  featureBit(VHOST_USER_PROTOCOL_F_CRYPTO_SESSION);

/** How long one wait slice lasts before the used ring is looked at again without a notification. */
const POLL_SLICE_MS = 20;

/** The canary byte at offset `off` of guest memory: a 256-byte period that is not constant. */
function canary(off: number): number {
  return (off * 167 + 0x3b) & 0xff;
}

const CANARY_PERIOD = Uint8Array.from({ length: 256 }, (_, i) => canary(i));

/** Options of `start` beyond the transport-agnostic ones. */
export interface VhostUserStartOptions extends DriverStartOptions {
  /** Guest memory size (default 2 MiB). */
  readonly memorySize?: number;
  /** Protocol features to take (default: DRIVER_PROTOCOL_FEATURES, masked by the offer). */
  readonly protocol?: bigint;
  /** Skip GET/SET_PROTOCOL_FEATURES even when offered, and do not set bit 30 in SET_FEATURES. */
  readonly noProtocolFeatures?: boolean;
  /** 'set': SET_MEM_TABLE even when CONFIGURE_MEM_SLOTS is negotiated (default: ADD_MEM_REG then). */
  readonly memTable?: 'set' | 'add';
  /** Send SET_VRING_ENABLE 1 (default true; ignored without protocol features). */
  readonly enable?: boolean;
  /** Queue indexes to set up (default: the device's `queues`, else its probe queue). */
  readonly queues?: readonly number[];
  /** Initial avail/used index of every ring (16-bit wrap tests). */
  readonly startIndex?: number;
  /** Ask for a REPLY_ACK on every message without its own reply, and fail on a nack. */
  readonly ackAll?: boolean;
  /**
   * Negotiate VIRTIO_F_RING_PACKED when `features` has it and it is offered. Off by default, even
   * when `features` has the bit: the split-ring checks pass the whole offer and craft split bytes.
   */
  readonly ringPacked?: boolean;
}

/** One ring set up by the driver. */
export interface QueueState {
  readonly index: number;
  readonly size: number;
  /**
   * The split driver queue, for checks that craft split-ring bytes.
   * @throws ConformanceError CONFORMANCE_RING_LAYOUT when the ring is packed (use `ring` / `packed`).
   */
  dq: DriverQueue<number>;
  /** The driver queue of either layout: what requests go through. */
  ring: DriverVirtqueue<number>;
  /** The packed driver queue when VIRTIO_F_RING_PACKED was negotiated. */
  packed: PackedDriverQueue<number> | undefined;
  fds: VringFds;
  readonly addrs: { desc: number; avail: number; used: number };
  /** Used-buffer notifications received (call eventfd counts). */
  interrupts: bigint;
  /** Error notifications received (err eventfd counts). */
  errors: bigint;
}

interface Range {
  start: number;
  end: number;
  /** driver: rings and tables the driver rewrites; writable: the device may write; readable: must stay as copied. */
  kind: 'driver' | 'writable' | 'readable';
  copy?: Uint8Array;
}

/** A used element as the driver collected it. */
export interface CollectedUsed extends UsedElement {
  readonly head: number;
}

export interface DriverOptions {
  /** Deadline for replies and completions (default 5 s). */
  readonly timeoutMs?: number;
}

export class VhostUserDriver implements ConformanceDriver {
  readonly fe: VhostUserFrontend;
  readonly device: DeviceConformance;
  readonly timeoutMs: number;
  /** GET_FEATURES as answered (bit 30 included). */
  readonly offered: bigint;
  /** GET_PROTOCOL_FEATURES as answered; null when bit 30 is not offered. */
  readonly offeredProtocol: bigint | null;
  #protocol = 0n;
  #handshaken = false;
  #features = 0n;
  #setFeatures = 0n;
  #started = false;
  #mem: FrontendMemory | undefined;
  #alloc: GuestAllocator | undefined;
  readonly #queues = new Map<number, QueueState>();
  readonly #used = new Map<number, CollectedUsed>();
  readonly #usedLog: number[] = [];
  readonly #ranges: Range[] = [];
  #token = 0;
  #ackAll = false;
  #protocolFeatures = true;

  private constructor(fe: VhostUserFrontend, device: DeviceConformance, timeoutMs: number, offered: bigint, offeredProtocol: bigint | null) {
    this.fe = fe;
    this.device = device;
    this.timeoutMs = timeoutMs;
    this.offered = offered;
    this.offeredProtocol = offeredProtocol;
  }

  /**
   * Connects and asks what the back-end offers (GET_FEATURES, then GET_PROTOCOL_FEATURES when bit
   * 30 is offered). Nothing is negotiated yet.
   * @throws SysError when nothing listens on `socketPath`; VhostUserFrontendError on a bad answer.
   */
  static connect(socketPath: string, device: DeviceConformance, opts: DriverOptions = {}): VhostUserDriver {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const fe = VhostUserFrontend.connect(socketPath, { replyTimeoutMs: timeoutMs });
    try {
      const offered = fe.getU64('GET_FEATURES');
      const offeredProtocol = hasFeature(offered, VHOST_USER_F_PROTOCOL_FEATURES) ? fe.getU64('GET_PROTOCOL_FEATURES') : null;
      return new VhostUserDriver(fe, device, timeoutMs, offered, offeredProtocol);
    } catch (e: unknown) {
      fe.close();
      throw e;
    }
  }

  get deviceName(): string {
    return this.device.device;
  }

  /** Device features offered, without the vhost-user bit 30. */
  get offeredFeatures(): bigint {
    return this.offered & ~featureBit(VHOST_USER_F_PROTOCOL_FEATURES);
  }

  /** Negotiated protocol features. */
  get protocol(): bigint {
    return this.#protocol;
  }

  get features(): bigint {
    return this.#features;
  }

  get started(): boolean {
    return this.#started;
  }

  get hasConfigAccess(): boolean {
    return hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_CONFIG);
  }

  /** True when the back-end offers protocol feature `bit`. */
  offersProtocol(bit: number): boolean {
    return this.offeredProtocol !== null && hasFeature(this.offeredProtocol, bit);
  }

  /** Guest memory (after `start`). */
  get memory(): FrontendMemory {
    if (this.#mem === undefined) throw new ConformanceError('CONFORMANCE_NOT_STARTED', 'guest memory exists only after start()');
    return this.#mem;
  }

  /** The queue `index` set up by `start`. */
  queue(index = this.device.probeQueue): QueueState {
    const q = this.#queues.get(index);
    if (q === undefined) throw new ConformanceError('CONFORMANCE_NOT_STARTED', `queue ${index} was not set up`);
    return q;
  }

  /**
   * SET_PROTOCOL_FEATURES (the offer masked by `wanted`) and SET_OWNER, as QEMU 7.2 does before
   * anything else. Without bit 30 only SET_OWNER is sent.
   */
  handshake(wanted: bigint = DRIVER_PROTOCOL_FEATURES, opts: { noProtocolFeatures?: boolean } = {}): void {
    if (this.#handshaken) return;
    this.#handshaken = true;
    this.#protocolFeatures = this.offeredProtocol !== null && opts.noProtocolFeatures !== true;
    if (this.#protocolFeatures && this.offeredProtocol !== null) {
      this.#protocol = this.offeredProtocol & wanted;
      this.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: this.#protocol, fds: [] });
    }
    this.#send({ type: 'SET_OWNER', body: null, fds: [] });
  }

  /** Sends a request without a reply of its own; with `ackAll`, asks for and checks its ack. */
  #send(init: Parameters<VhostUserFrontend['request']>[0]): void {
    if (this.#ackAll && hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK)) this.fe.requestAcked(init);
    else this.fe.request(init);
  }

  /** SET_FEATURES with the driver's features (plus bit 30 when protocol features are in use). */
  #sendFeatures(): void {
    this.#send({ type: 'SET_FEATURES', body: this.#setFeatures, fds: [] });
  }

  start(opts: VhostUserStartOptions = {}): void {
    if (this.#started) throw new ConformanceError('CONFORMANCE_NOT_STARTED', 'start() was already called on this connection');
    this.#ackAll = opts.ackAll === true;
    this.handshake(opts.protocol ?? DRIVER_PROTOCOL_FEATURES, { noProtocolFeatures: opts.noProtocolFeatures === true });
    const wanted = opts.features ?? DEFAULT_DRIVER_FEATURES;
    this.#features = this.offeredFeatures & wanted & (opts.ringPacked === true ? ~0n : ~featureBit(VIRTIO_F_RING_PACKED));
    this.#setFeatures = this.#features | (this.#protocolFeatures ? featureBit(VHOST_USER_F_PROTOCOL_FEATURES) : 0n);
    this.#sendFeatures();
    this.#createMemory(opts.memorySize ?? DEFAULT_MEMORY_SIZE, opts.memTable);
    const size = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
    for (const index of opts.queues ?? this.device.queues ?? [this.device.probeQueue]) this.#setupQueue(index, size, opts.startIndex ?? 0, opts.enable ?? true);
    this.#started = true;
  }

  #createMemory(size: number, memTable: 'set' | 'add' | undefined): void {
    const addMemReg = memTable !== 'set' && hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
    const mem = this.fe.createMemory(size, { guestBase: GUEST_BASE, userBase: USER_BASE, addMemReg });
    // Canary everywhere; rings are zeroed by DriverQueue afterwards.
    const all = mem.memory.view(GUEST_BASE, size);
    all.set(CANARY_PERIOD.subarray(0, Math.min(256, size)));
    for (let filled = 256; filled < size; filled *= 2) all.copyWithin(filled, 0, Math.min(filled, size - filled));
    this.#mem = mem;
    this.#alloc = new GuestAllocator(GUEST_BASE, size);
  }

  #setupQueue(index: number, size: number, startIndex: number, enable: boolean): void {
    const alloc = this.#allocator();
    const packed = this.ringPacked;
    // Packed (VIRTIO 1.3 §2.8.10.1): desc = descriptor ring, avail = driver area, used = device area.
    const lens = packed ? [packedDescRingSize(size), PVIRTQ_EVENT_SIZE, PVIRTQ_EVENT_SIZE] : [descTableSize(size), availRingSize(size), usedRingSize(size)];
    const [descLen, availLen, usedLen] = lens as [number, number, number];
    const addrs = { desc: alloc.alloc(descLen, 4096), avail: alloc.alloc(availLen, 4096), used: alloc.alloc(usedLen, 4096) };
    // A packed descriptor ring is written by both sides (used descriptors overwrite available ones).
    this.#ranges.push({ start: addrs.desc, end: addrs.desc + descLen, kind: packed ? 'writable' : 'driver' });
    this.#ranges.push({ start: addrs.avail, end: addrs.avail + availLen, kind: 'driver' });
    this.#ranges.push({ start: addrs.used, end: addrs.used + usedLen, kind: 'writable' });
    const q = this.#queueState(index, size, addrs, startIndex);
    q.fds = this.fe.setupVring(index, size, addrs, this.memory, { base: this.#wireBase(startIndex), enable: enable && this.#protocolFeatures, ack: this.#ackAll });
    this.#queues.set(index, q);
  }

  /** VIRTIO_F_RING_PACKED was negotiated: rings are packed. */
  get ringPacked(): boolean {
    return hasFeature(this.#features, VIRTIO_F_RING_PACKED);
  }

  /**
   * SET_VRING_BASE's num for a ring starting at `startIndex`: split, the index; packed, the index
   * with wrap counter 1 for both the avail and the used position, as QEMU sends for a fresh ring
   * (0x80008000 at index 0).
   */
  #wireBase(startIndex: number): number {
    if (!this.ringPacked) return startIndex;
    return startIndex === 0 ? PACKED_FRESH_BASE : startIndex >>> 0;
  }

  #queueState(index: number, size: number, addrs: QueueState['addrs'], startIndex: number): QueueState {
    const q = { index, size, addrs, fds: { kick: -1, call: -1, err: -1 }, interrupts: 0n, errors: 0n } as Omit<QueueState, 'dq' | 'ring' | 'packed'>;
    const state = q as QueueState;
    this.#attachRing(state, startIndex);
    return state;
  }

  /** (Re)creates the driver queue of `q` in the negotiated layout (rings zeroed). */
  #attachRing(q: QueueState, startIndex: number): void {
    const eventIdx = hasFeature(this.#features, VIRTIO_F_EVENT_IDX);
    if (this.ringPacked) {
      const ring = new PackedDriverQueue<number>({ memory: this.memory.memory, size: q.size, addrs: q.addrs, eventIdx, base: this.#wireBase(startIndex) });
      Object.defineProperty(q, 'dq', {
        configurable: true,
        enumerable: true,
        get: () => {
          throw new ConformanceError('CONFORMANCE_RING_LAYOUT', `queue ${q.index} is a packed ring; this step needs a split ring`);
        },
      });
      q.ring = ring;
      q.packed = ring;
    } else {
      const ring = new DriverQueue<number>({ memory: this.memory.memory, size: q.size, addrs: q.addrs, eventIdx, startIndex });
      Object.defineProperty(q, 'dq', { configurable: true, enumerable: true, writable: true, value: ring });
      q.ring = ring;
      q.packed = undefined;
    }
  }

  #allocator(): GuestAllocator {
    if (this.#alloc === undefined) throw new ConformanceError('CONFORMANCE_NOT_STARTED', 'guest memory exists only after start()');
    return this.#alloc;
  }

  /** Guest address of `len` fresh bytes, canary-filled, that neither side may write (the driver will). */
  allocDriver(len: number, align = 16): number {
    const addr = this.#allocator().alloc(len, align);
    this.#ranges.push({ start: addr, end: addr + len, kind: 'driver' });
    return addr;
  }

  /** Guest address just past the end of guest memory. */
  get memoryEnd(): number {
    return GUEST_BASE + this.memory.region.size;
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Buffers                                                                                   */
  /* ---------------------------------------------------------------------------------------- */

  out(bytes: Uint8Array): DriverBuffer {
    const addr = this.#allocator().alloc(bytes.length + 2 * GUARD_BYTES, 16) + GUARD_BYTES;
    this.memory.memory.write(addr, bytes);
    this.#ranges.push({ start: addr, end: addr + bytes.length, kind: 'readable', copy: bytes.slice() });
    return { addr, len: bytes.length };
  }

  in(len: number, fill = 0xee): DriverBuffer {
    const addr = this.#allocator().alloc(len + 2 * GUARD_BYTES, 16) + GUARD_BYTES;
    this.memory.memory.fill(addr, len, fill);
    this.#ranges.push({ start: addr, end: addr + len, kind: 'writable' });
    return { addr, len, writable: true };
  }

  bytes(buf: DriverBuffer): Uint8Array {
    return this.memory.memory.read(buf.addr, buf.len);
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Config                                                                                    */
  /* ---------------------------------------------------------------------------------------- */

  readConfig(offset: number, length: number): Uint8Array | null {
    const reply = this.fe.getConfig(offset, length);
    if (reply === null || reply.payload.length === 0) return null;
    return reply.payload;
  }

  writeConfig(offset: number, data: Uint8Array): ConfigWriteResult {
    let ack: bigint | null;
    try {
      ack = this.fe.setConfig(offset, data);
      // A round trip: a back-end that answers the write by closing the connection has done so now.
      this.fe.getU64('GET_FEATURES');
    } catch (e: unknown) {
      if (e instanceof VhostUserFrontendError && e.code === 'VHOST_USER_FRONTEND_DISCONNECTED') return 'closed';
      throw e;
    }
    if (ack === null) return 'unacknowledged';
    return ack === 0n ? 'accepted' : 'refused';
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Requests                                                                                  */
  /* ---------------------------------------------------------------------------------------- */

  /** Notifies the device that queue `index` has new buffers. */
  kick(index = this.device.probeQueue): void {
    // Never blocks: an eventfd counter is only full after 2^64 - 2 kicks.
    eventfdWrite(this.queue(index).fds.kick);
  }

  /** Makes a chain available without notifying; returns its token (see `waitFor`). */
  submit(buffers: readonly DriverBuffer[], opts: RequestOptions = {}): number {
    const q = this.queue(opts.queue ?? this.device.probeQueue);
    const token = this.#token++;
    if (opts.indirect === true) {
      const table = this.allocDriver(VIRTQ_DESC_SIZE * buffers.length, 16);
      q.ring.add(buffers, token, { indirectTable: table });
    } else {
      q.ring.add(buffers, token);
    }
    return token;
  }

  /** A fresh token for chains built by hand (`DriverQueue.addRaw`). */
  nextToken(): number {
    return this.#token++;
  }

  request(buffers: readonly DriverBuffer[], opts: RequestOptions = {}): UsedElement {
    return this.wait(this.post(buffers, opts), opts);
  }

  post(buffers: readonly DriverBuffer[], opts: RequestOptions = {}): number {
    const token = this.submit(buffers, opts);
    this.kick(opts.queue ?? this.device.probeQueue);
    return token;
  }

  wait(token: number, opts: { readonly queue?: number } = {}): UsedElement {
    return this.waitFor(token, opts.queue ?? this.device.probeQueue);
  }

  /**
   * CREATE_CRYPTO_SESSION with `message` as its payload; the reply's payload. Null when the
   * back-end does not offer PROTOCOL_F_CRYPTO_SESSION (the feature is negotiated when offered).
   */
  createSession(message: Uint8Array): Uint8Array | null {
    if (!hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_CRYPTO_SESSION)) return null;
    const reply = this.fe.request({ type: 'CREATE_CRYPTO_SESSION', body: message, fds: [] });
    if (reply?.type !== 'CREATE_CRYPTO_SESSION') throw new ConformanceError('CONFORMANCE_BAD_REPLY', `CREATE_CRYPTO_SESSION answered with ${reply?.type ?? 'nothing'}`);
    return reply.body;
  }

  /** CLOSE_CRYPTO_SESSION, with a REPLY_ACK when negotiated (QEMU asks for none; without one, true). */
  closeSession(id: bigint): boolean {
    if (!hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_CRYPTO_SESSION)) return false;
    if (!hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
      this.fe.request({ type: 'CLOSE_CRYPTO_SESSION', body: id, fds: [] });
      return true;
    }
    const ack = this.fe.request({ type: 'CLOSE_CRYPTO_SESSION', body: id, fds: [], needReply: true });
    return ack?.type === 'ACK' && ack.body === 0n;
  }

  /** Moves every used element the device published into the collected set. @throws QueueError VIRTQ_DRIVER_BAD_USED */
  collect(index = this.device.probeQueue): void {
    const q = this.queue(index);
    for (let u = q.ring.popUsed(); u !== null; u = q.ring.popUsed()) {
      this.#used.set(u.token, { head: u.head, len: u.len });
      this.#usedLog.push(u.token);
    }
  }

  /** Tokens in the order their used elements were collected (the used ring's order). */
  get usedLog(): readonly number[] {
    return this.#usedLog;
  }

  /** The used element of `token`, if the device returned it (collects first). */
  usedOf(token: number, where: number | { readonly queue?: number } = this.device.probeQueue): CollectedUsed | undefined {
    const index = typeof where === 'number' ? where : (where.queue ?? this.device.probeQueue);
    this.collect(index);
    return this.#used.get(token);
  }

  /**
   * Waits until the chain of `token` is used. Wakes on the call eventfd (counting interrupts), the
   * error eventfd and a hang-up, and looks at the used ring every few milliseconds regardless.
   * @throws ConformanceError NO_COMPLETION or RING_ERROR; VhostUserFrontendError DISCONNECTED;
   * QueueError VIRTQ_DRIVER_BAD_USED when the device returns something that was not outstanding.
   */
  waitFor(token: number, index = this.device.probeQueue, timeoutMs = this.timeoutMs): CollectedUsed {
    const q = this.queue(index);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.usedOf(token, index);
      if (got !== undefined) {
        this.#used.delete(token);
        return got;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new ConformanceError('CONFORMANCE_NO_COMPLETION', `queue ${index}: request not completed within ${timeoutMs} ms`);
      const r = this.fe.waitEvents([q.fds.call, q.fds.err], Math.min(left, POLL_SLICE_MS));
      q.interrupts += r.fired.get(q.fds.call) ?? 0n;
      const errs = r.fired.get(q.fds.err) ?? 0n;
      if (errs > 0n) {
        q.errors += errs;
        const late = this.usedOf(token, index);
        if (late !== undefined) return late;
        throw new ConformanceError('CONFORMANCE_RING_ERROR', `queue ${index}: the back-end signalled a ring error (SET_VRING_ERR eventfd) instead of completing the request`);
      }
      if (r.hangup) {
        const late = this.usedOf(token, index);
        if (late !== undefined) return late;
        throw new VhostUserFrontendError('VHOST_USER_FRONTEND_DISCONNECTED', `queue ${index}: back-end closed the connection while a request was outstanding`);
      }
    }
  }

  /**
   * Waits up to `timeoutMs` for a used-buffer notification on queue `index` that has not been
   * counted yet; returns true when one came. Also counts what arrives in the meantime.
   */
  waitInterrupt(index = this.device.probeQueue, timeoutMs = this.timeoutMs): boolean {
    const q = this.queue(index);
    const r = this.fe.waitEvents([q.fds.call], timeoutMs);
    const n = r.fired.get(q.fds.call) ?? 0n;
    q.interrupts += n;
    return n > 0n;
  }

  /** Counts notifications that already arrived on queue `index` without waiting. */
  drainInterrupts(index = this.device.probeQueue): bigint {
    const q = this.queue(index);
    const n = this.fe.waitEvents([q.fds.call], 0).fired.get(q.fds.call) ?? 0n;
    q.interrupts += n;
    return q.interrupts;
  }

  /** The `flags` field of queue `index`'s used ring. */
  usedFlags(index = this.device.probeQueue): number {
    const q = this.queue(index);
    return this.memory.memory.readU16(q.addrs.used + USED_FLAGS_OFF);
  }

  /** `avail_event` of queue `index` (EVENT_IDX). */
  availEvent(index = this.device.probeQueue): number {
    const q = this.queue(index);
    return this.memory.memory.readU16(q.addrs.used + availEventOff(q.size));
  }

  /**
   * Writes descriptor `i` of a table at `table` (the ring's own table by default) with a 64-bit
   * address, which `DriverQueue.writeDesc` cannot express (its codec stops at 2^53).
   */
  writeDescRaw(table: number, i: number, addr: bigint, len: number, flags: number, next: number): void {
    const b = new Uint8Array(VIRTQ_DESC_SIZE);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, addr, true);
    v.setUint32(8, len >>> 0, true);
    v.setUint16(12, flags, true);
    v.setUint16(14, next, true);
    this.memory.memory.write(table + i * VIRTQ_DESC_SIZE, b);
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Ring lifecycle and recoveries                                                             */
  /* ---------------------------------------------------------------------------------------- */

  /**
   * Stops ring `index` (SET_VRING_ENABLE 0 when protocol features are in use, then GET_VRING_BASE)
   * and returns the next avail index the back-end reports.
   */
  stopRing(index = this.device.probeQueue): number {
    this.queue(index);
    return this.fe.stopVring(index, { disable: this.#protocolFeatures });
  }

  /**
   * Sets ring `index` up again at avail index `base` (new eventfds). With `fresh`, the rings are
   * zeroed and restart at `base` as after a device reset; otherwise the driver's ring state is
   * kept and the back-end resumes where it stopped (`base` should then be what GET_VRING_BASE said).
   */
  startRing(index: number, base: number, opts: { fresh?: boolean; enable?: boolean } = {}): void {
    const q = this.queue(index);
    if (opts.fresh === true) this.#attachRing(q, base);
    q.fds = this.fe.setupVring(index, q.size, q.addrs, this.memory, { base: opts.fresh === true ? this.#wireBase(base) : base, enable: (opts.enable ?? true) && this.#protocolFeatures, ack: this.#ackAll });
  }

  /**
   * What QEMU does when the guest resets the device (vhost_dev_stop then vhost_dev_start): stop
   * every ring, SET_FEATURES again (with `features` when given, as when the firmware's driver
   * hands over to the kernel's; QEMU 7.2 sends it twice per start), and start every ring afresh at
   * index 0.
   */
  restartDevice(opts: { features?: bigint; twice?: boolean } = {}): void {
    for (const index of this.#queues.keys()) this.stopRing(index);
    if (opts.features !== undefined) {
      // The ring layout stays what `start` chose.
      const keep = this.ringPacked ? ~0n : ~featureBit(VIRTIO_F_RING_PACKED);
      this.#features = this.offeredFeatures & opts.features & keep;
      this.#setFeatures = this.#features | (this.#protocolFeatures ? featureBit(VHOST_USER_F_PROTOCOL_FEATURES) : 0n);
    }
    this.#sendFeatures();
    if (opts.twice === true) this.#sendFeatures();
    for (const index of this.#queues.keys()) this.startRing(index, 0, { fresh: true });
    this.#used.clear();
  }

  /** Marks [addr, addr + len) as memory the device may write (a hostile buffer that lies partly in guest memory). */
  expectWritable(addr: number, len: number): void {
    this.#ranges.push({ start: addr, end: addr + len, kind: 'writable' });
  }

  /** RESET_DEVICE (protocol feature RESET_DEVICE), then SET_FEATURES and fresh rings. */
  resetDevice(): void {
    this.#send({ type: 'RESET_DEVICE', body: null, fds: [] });
    this.#sendFeatures();
    for (const index of this.#queues.keys()) this.startRing(index, 0, { fresh: true });
    this.#used.clear();
  }

  /* ---------------------------------------------------------------------------------------- */
  /* Stray writes                                                                              */
  /* ---------------------------------------------------------------------------------------- */

  strayWrites(): string | null {
    if (this.#mem === undefined || this.fe.closed) return null;
    const size = this.#mem.region.size;
    const all = this.#mem.memory.view(GUEST_BASE, size);
    const ranges = [...this.#ranges].sort((a, b) => a.start - b.start);
    const bad: string[] = [];
    let changed = 0;
    const note = (off: number, what: string) => {
      changed++;
      if (bad.length < 3) bad.push(`0x${(GUEST_BASE + off).toString(16)} (${what})`);
    };
    let at = 0;
    const gap = (end: number, what: string) => {
      for (let off = at; off < end; off++) if (all[off] !== CANARY_PERIOD[off & 0xff]) note(off, what);
    };
    for (const r of ranges) {
      const start = r.start - GUEST_BASE;
      if (start > at) gap(start, `canary before the buffer at 0x${r.start.toString(16)}`);
      if (r.kind === 'readable' && r.copy !== undefined) {
        for (let i = 0; i < r.copy.length; i++) if (all[start + i] !== r.copy[i]) note(start + i, `device-readable buffer at 0x${r.start.toString(16)}`);
      }
      at = Math.max(at, r.end - GUEST_BASE);
    }
    gap(size, 'canary after the last buffer');
    if (changed === 0) return null;
    return `${changed} byte(s) changed outside device-writable buffers, first at ${bad.join(', ')}`;
  }

  /** Closes the connection and everything it owns. */
  close(): void {
    this.fe.close();
  }
}
