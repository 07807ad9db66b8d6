// SPDX-License-Identifier: Apache-2.0
/**
 * One vhost-user connection, back-end side: the protocol state machine between a front-end
 * (QEMU, or AVP's conformance suite) and a device model.
 *
 * Owns: feature and protocol-feature negotiation, the memory table, per-ring state (size, addresses,
 * base, kick/call/err fds, started and enabled flags) and turning it into live device queues,
 * replies and REPLY_ACK acks, config access, reset. Rules from the vhost-user document and from
 * what QEMU 7.2 sends (shared/reference/vhost-user-protocol.md §7, §9):
 * - a ring is processed only when started (kick fd received, not stopped by GET_VRING_BASE) and
 *   enabled (SET_VRING_ENABLE 1, or SET_FEATURES without PROTOCOL_FEATURES which enables all);
 * - when a ring goes live it is processed once at once: a kick may have arrived before the enable
 *   (rust-vmm/vhost#247);
 * - GET_VRING_BASE stops (does not reset) the ring and returns the true next-avail index;
 * - the used index is re-read from guest memory whenever a ring goes live (rust-vmm/vhost#180);
 * - SET_FEATURES may come several times per start with different values (firmware, then the
 *   kernel): the last one counts; while no ring is live it re-activates the device with it;
 * - a SET_FEATURES without VERSION_1 to a device with `featuresWhenUndisclosed` (QEMU's
 *   cryptodev-vhost-user forwards no guest features and never enables its ring) runs the device
 *   with those features and enables the rings, as without protocol features;
 * - memory persists across ring start/stop cycles; any change re-resolves live rings, and old
 *   mappings are unmapped only after nothing refers to them.
 *
 * Hostile front-ends (issue #18, docs/reliability.md):
 * - every fd a request carries is owned by the session from `handle` on: a handler claims the ones
 *   it keeps, and `handle` closes every other one, on success and on every error path (a
 *   SET_VRING_CALL naming a ring that does not exist must not leak its fd);
 * - kick, call and error eventfds are made non-blocking on receipt, and signalling a call or error
 *   eventfd whose counter is saturated is not an error (the peer has a notification pending);
 * - a memory change re-resolves each live ring on its own; a ring whose memory went away stops,
 *   and the retired mappings are released in every case.
 * Does not own: sockets and polling (`loop.ts`), framing (`parser.ts`), device semantics.
 *
 * Protocol features offered, and why: MQ (GET_QUEUE_NUM; the document says back-ends should always
 * implement it), REPLY_ACK (lets the front-end learn about failures), CONFIGURE_MEM_SLOTS (QEMU 7.2
 * then sends ADD_MEM_REG per region; SET_MEM_TABLE is supported too), CONFIG (only for devices that
 * have config space), RESET_DEVICE (a clean device reset without dropping the connection),
 * CRYPTO_SESSION (only for devices with out-of-band sessions, `VirtioDevice.sessions`: the
 * CREATE/CLOSE_CRYPTO_SESSION payloads go to the device untouched; an unreadable request gets an
 * empty reply, a close of an unknown id a failure ack when one was asked for).
 * INFLIGHT_SHMFD (only for devices that ask for it, `VirtioDevice.inflightTracking`: blk): the
 * back-end keeps a record of the chains in flight in a memfd the front-end holds across back-end
 * restarts (GET_INFLIGHT_FD allocates it, SET_INFLIGHT_FD hands it back after a reconnect); when a
 * ring goes live on a record in use, `used_idx` is repaired and the chains in flight are served
 * again first (`inflight.ts`). Split rings only.
 * Not offered: LOG_SHMFD/migration, BACKEND_REQ, STATUS, PAGEFAULT, HOST_NOTIFIER.
 * GPU_SET_SOCKET (needs no protocol feature) goes to the device's generic `frontendChannel` hook:
 * the session knows no device type.
 */
import type { DeviceLog, DeviceSessionControl, HostReactor, VirtioDevice } from '../device/contract.js';
import { DeviceRunner } from '../device/runner.js';
import { DeviceError } from '../device/errors.js';
import type { Virtqueue as DeviceQueue } from '../queue/virtqueue.js';
import { QueueError } from '../queue/errors.js';
import { isValidQueueSize } from '../spec/split-ring.js';
import { VHOST_USER_F_PROTOCOL_FEATURES, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1, featureBit, hasFeature } from '../spec/virtio.js';
import { closeQuiet, eventfdRead, eventfdSignal, fdTarget, setNonBlocking } from '../sys/index.js';
import { VhostUserBackendError } from './backend-errors.js';
import type { VhostUserProtocolError } from './errors.js';
import { InflightRegion, type SplitInflightQueue } from './inflight.js';
import { MAX_MEM_SLOTS, MemoryTable, type RegionMapping } from './memory-table.js';
import { encodeReply, hasOwnReply, type EncodedMessage, type FrontendRequest, type VringAddr } from './messages.js';
import {
  FRONTEND_REQUEST_CODES,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_PROTOCOL_F_CONFIG,
  VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
  VHOST_USER_PROTOCOL_F_CRYPTO_SESSION,
  VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD,
  VHOST_USER_PROTOCOL_F_MQ,
  VHOST_USER_PROTOCOL_F_REPLY_ACK,
  VHOST_USER_PROTOCOL_F_RESET_DEVICE,
} from './protocol.js';

interface Vring {
  num: number | undefined;
  addr: VringAddr | undefined;
  /** Next avail index to start from (SET_VRING_BASE), updated when the ring stops. */
  base: number;
  kickFd: number | undefined;
  callFd: number | undefined;
  errFd: number | undefined;
  /** Kick fd received and not stopped by GET_VRING_BASE since. */
  started: boolean;
  enabled: boolean;
  /** The live device-side queue while started, enabled and configured. */
  queue: DeviceQueue | undefined;
  /** A used-buffer notification was due while the ring had no call fd (sent when one arrives). */
  callMissed: boolean;
}

/** Counters of one session, for metrics and tests. */
export interface SessionStats {
  requests: number;
  failedRequests: number;
  kicks: number;
  /** Chains taken off the rings by busy polling (the loop's `busyPollUs`), without a kick. */
  polledChains: number;
  calls: number;
  /** Call or error signals not delivered because the eventfd's counter was saturated. */
  saturatedSignals: number;
  /** Live rings stopped because a memory change removed the memory they lived in. */
  ringsLostMemory: number;
  /** Chains served again after a restart, from the inflight record (INFLIGHT_SHMFD). */
  inflightResubmitted: number;
  /** Inflight entries cleared by the used_idx repair (the back-end died mid-batch). */
  inflightRepaired: number;
}

export interface SessionOptions {
  device: VirtioDevice;
  log: DeviceLog;
  /** Host fds and timers the device may use (the event loop's). */
  reactor?: HostReactor;
  /** Refuse memory regions that cannot be sealed against shrinking (docs/reliability.md). */
  requireSealedMemory?: boolean;
}

/** A request for the debug log: its type and its small body (payload bytes only as a length). */
function describeRequest(req: FrontendRequest): string {
  const b: unknown = req.body;
  let body = '';
  if (typeof b === 'bigint') body = ` 0x${b.toString(16)}`;
  else if (b instanceof Uint8Array) body = ` (${b.length} bytes)`;
  else if (b !== null && typeof b === 'object') body = ` ${JSON.stringify(b, (_k, v: unknown) => (v instanceof Uint8Array ? `${v.length} bytes` : typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`;
  return `${req.type}${body}${req.fds.length > 0 ? ` +${req.fds.length} fd` : ''}${req.needReply ? ' (need reply)' : ''}`;
}

/** Memory the front-end shrank under its mapping: its fault, and the end of the connection, not of one request or ring. */
function endsConnection(e: unknown): boolean {
  return e instanceof VhostUserBackendError && e.code === 'VHOST_USER_MEMORY_SHRUNK';
}

function freshRing(): Vring {
  return { num: undefined, addr: undefined, base: 0, kickFd: undefined, callFd: undefined, errFd: undefined, started: false, enabled: false, queue: undefined, callMissed: false };
}

export class BackendSession {
  readonly device: VirtioDevice;
  readonly stats: SessionStats = { requests: 0, failedRequests: 0, kicks: 0, polledChains: 0, calls: 0, saturatedSignals: 0, ringsLostMemory: 0, inflightResubmitted: 0, inflightRepaired: 0 };
  readonly #log: DeviceLog;
  readonly #runner: DeviceRunner;
  readonly #memory: MemoryTable;
  readonly #rings: Vring[];
  readonly #offeredProtocol: bigint;
  #protocol = 0n;
  #protocolNegotiated = false;
  #ackedFeatures: bigint | undefined;
  /** Bumped whenever the set of kick fds changes, so the loop knows to rebuild its poll set. */
  #kickGeneration = 0;
  /** fds of the request being handled that no handler has claimed yet (closed when it ends). */
  #unclaimed = new Set<number>();
  #ringResetNoted = false;
  /** The inflight record (GET/SET_INFLIGHT_FD), when the front-end set one up. */
  #inflight: InflightRegion | undefined;

  constructor(opts: SessionOptions) {
    this.device = opts.device;
    this.#log = opts.log;
    this.#memory = new MemoryTable({ requireSealed: opts.requireSealedMemory === true });
    this.#runner = new DeviceRunner(opts.device, {
      memory: this.#memory.gpa,
      log: opts.log,
      notify: (i) => this.#call(i),
      onNeedsReset: () => this.#signalError(),
      ...(opts.reactor === undefined ? {} : { reactor: opts.reactor }),
    });
    this.#rings = opts.device.queueMaxSizes.map(freshRing);
    let offered = featureBit(VHOST_USER_PROTOCOL_F_MQ) | featureBit(VHOST_USER_PROTOCOL_F_REPLY_ACK) | featureBit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | featureBit(VHOST_USER_PROTOCOL_F_RESET_DEVICE);
    if (opts.device.configSize > 0) offered |= featureBit(VHOST_USER_PROTOCOL_F_CONFIG);
    if (opts.device.sessions !== undefined) offered |= featureBit(VHOST_USER_PROTOCOL_F_CRYPTO_SESSION);
    if (opts.device.inflightTracking === true) offered |= featureBit(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
    this.#offeredProtocol = offered;
  }

  /** Virtio features offered to the front-end: the device's plus PROTOCOL_FEATURES (bit 30). */
  get offeredFeatures(): bigint {
    return this.#runner.offeredFeatures | featureBit(VHOST_USER_F_PROTOCOL_FEATURES);
  }

  get offeredProtocolFeatures(): bigint {
    return this.#offeredProtocol;
  }

  get kickGeneration(): number {
    return this.#kickGeneration;
  }

  /** Kick fds of started rings, for the event loop's poll set. */
  kickFds(): Array<{ fd: number; index: number }> {
    const out: Array<{ fd: number; index: number }> = [];
    this.#rings.forEach((r, index) => {
      if (r.started && r.kickFd !== undefined) out.push({ fd: r.kickFd, index });
    });
    return out;
  }

  /** True when some memory region can shrink under its mapping (see `checkMemory`). */
  get hasUnsealedMemory(): boolean {
    return this.#memory.hasUnsealed;
  }

  /** Mappings currently held (leak accounting in tests). */
  get mappingCount(): number {
    return this.#memory.mappingCount;
  }

  /**
   * Verifies that no memory region's file shrank below its mapping; the event loop calls it
   * before each turn that may touch guest memory (fstat per unsealed region, nothing otherwise).
   * @throws VhostUserBackendError VHOST_USER_MEMORY_SHRUNK: the connection must end.
   */
  checkMemory(): void {
    this.#memory.checkIntact();
  }

  /**
   * Busy polling (the loop's `busyPollUs`): lets the device process every live ring on which the
   * driver has made chains available, without waiting for its kick (a kick that comes anyway is
   * consumed by the next poll). Returns how many chains the device took, so the loop polls on
   * only while that moves: a receive ring full of buffers with nothing to receive is not work.
   */
  poll(): number {
    let taken = 0;
    for (let index = 0; index < this.#rings.length; index++) {
      const q = this.#rings[index]?.queue;
      if (q === undefined || q.broken !== undefined || q.pending() === 0) continue;
      const before = q.stats.chainsPopped + q.stats.chainsRejected;
      this.#runner.kick(index);
      taken += q.stats.chainsPopped + q.stats.chainsRejected - before;
    }
    this.stats.polledChains += taken;
    return taken;
  }

  /** A ring's kick fd became readable: consume the counter and let the device process. */
  kick(index: number): void {
    const r = this.#rings[index];
    if (r?.kickFd === undefined) return;
    eventfdRead(r.kickFd);
    this.stats.kicks++;
    this.#runner.kick(index);
  }

  /** Device metrics plus session counters. */
  metrics(): Record<string, unknown> {
    return { ...this.device.metrics(), session: { ...this.stats } };
  }

  /**
   * Handles one request; returns the reply to send, if any.
   * Never throws for anything the front-end sent: failures become a REPLY_ACK failure (when the
   * front-end asked for one) and a log line, and the connection goes on. The one exception: memory
   * the front-end shrank under its mapping (found when a ring goes live) ends the connection, as
   * the loop's own check does.
   * @throws VhostUserBackendError VHOST_USER_MEMORY_SHRUNK
   */
  handle(req: FrontendRequest): EncodedMessage | null {
    this.stats.requests++;
    this.#log.debug(`vhost-user request ${describeRequest(req)}`);
    let reply: EncodedMessage | null = null;
    let ok = true;
    this.#unclaimed = new Set(req.fds);
    try {
      reply = this.#dispatch(req);
    } catch (e: unknown) {
      if (!(e instanceof VhostUserBackendError || e instanceof DeviceError || e instanceof QueueError)) throw e;
      if (endsConnection(e)) throw e;
      ok = false;
      this.stats.failedRequests++;
      this.#log.warn(`vhost-user ${req.type}: ${e.message}`);
      reply = this.#errorReply(req);
    } finally {
      // Every fd of the request that no handler took is closed here, on every path (#18 case 7).
      for (const fd of this.#unclaimed) closeQuiet(fd);
      this.#unclaimed = new Set();
    }
    if (reply === null && req.needReply && this.#replyAck() && !hasOwnReply(req.type)) {
      reply = encodeReply({ type: 'ACK', request: FRONTEND_REQUEST_CODES[req.type], body: ok ? 0n : 1n, fds: [] });
    }
    return reply;
  }

  /** A per-message protocol error (framing intact): a failure ack when one was asked for. */
  handleProtocolError(err: VhostUserProtocolError): EncodedMessage | null {
    this.stats.failedRequests++;
    this.#log.warn(`vhost-user: ${err.message}`);
    const h = err.header;
    if (h === null || !(h.flags & VHOST_USER_NEED_REPLY_MASK) || !this.#replyAck()) return null;
    return encodeReply({ type: 'ACK', request: h.request, body: 1n, fds: [] });
  }

  /** The front-end went away: reset the device, close every fd, unmap memory. */
  close(): void {
    try {
      this.#resetRings();
      this.#runner.reset();
    } finally {
      this.#release(this.#memory.clear());
      this.#inflight?.release();
      this.#inflight = undefined;
      this.#ackedFeatures = undefined;
    }
  }

  /** Takes `fd` of the current request into the session's ownership (it will not be closed by `handle`). */
  #claim(fd: number | undefined): number | undefined {
    if (fd !== undefined) this.#unclaimed.delete(fd);
    return fd;
  }

  #replyAck(): boolean {
    return hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK);
  }

  /** Requests with their own reply answer failures in their own shape. */
  #errorReply(req: FrontendRequest): EncodedMessage | null {
    if (req.type === 'GET_CONFIG') return encodeReply({ type: 'GET_CONFIG', body: null, fds: [] });
    if (req.type === 'GET_VRING_BASE') return encodeReply({ type: 'GET_VRING_BASE', body: { index: req.body.index, num: 0 }, fds: [] });
    if (req.type === 'CREATE_CRYPTO_SESSION') return encodeReply({ type: 'CREATE_CRYPTO_SESSION', body: new Uint8Array(0), fds: [] });
    // mmap_size 0 without an fd: "no inflight record" (QEMU then runs the device without one).
    if (req.type === 'GET_INFLIGHT_FD') return encodeReply({ type: 'GET_INFLIGHT_FD', body: { mmapSize: 0, mmapOffset: 0, numQueues: req.body.numQueues, queueSize: req.body.queueSize }, fds: [] });
    return null;
  }

  #dispatch(req: FrontendRequest): EncodedMessage | null {
    switch (req.type) {
      case 'GET_FEATURES':
        return encodeReply({ type: 'GET_FEATURES', body: this.offeredFeatures, fds: [] });
      case 'SET_FEATURES':
        this.#setFeatures(req.body);
        return null;
      case 'GET_PROTOCOL_FEATURES':
        return encodeReply({ type: 'GET_PROTOCOL_FEATURES', body: this.#offeredProtocol, fds: [] });
      case 'SET_PROTOCOL_FEATURES':
        this.#setProtocolFeatures(req.body);
        return null;
      case 'SET_OWNER':
        return null;
      case 'RESET_OWNER':
      case 'RESET_DEVICE':
        this.#resetRings();
        this.#runner.reset();
        this.#ackedFeatures = undefined;
        return null;
      case 'GET_QUEUE_NUM':
        return encodeReply({ type: 'GET_QUEUE_NUM', body: BigInt(this.#rings.length), fds: [] });
      case 'GET_MAX_MEM_SLOTS':
        return encodeReply({ type: 'GET_MAX_MEM_SLOTS', body: BigInt(MAX_MEM_SLOTS), fds: [] });
      case 'SET_MEM_TABLE': {
        // One fd per region; the table owns them from here (extra fds stay unclaimed and are closed).
        const fds = req.fds.slice(0, req.body.regions.length);
        fds.forEach((fd) => this.#claim(fd));
        this.#memoryChanged(this.#memory.replace(req.body.regions, fds));
        return null;
      }
      case 'ADD_MEM_REG': {
        const fd = this.#claim(req.fds[0]);
        if (fd === undefined) throw new VhostUserBackendError('VHOST_USER_BAD_MEMORY_REGION', 'ADD_MEM_REG without an fd');
        this.#memory.add(req.body, fd);
        this.#memoryChanged([]);
        return null;
      }
      case 'REM_MEM_REG':
        this.#memoryChanged(this.#memory.remove(req.body));
        return null;
      case 'SET_VRING_NUM': {
        const r = this.#ring(req.body.index);
        const max = this.device.queueMaxSizes[req.body.index] ?? 0;
        if (!isValidQueueSize(req.body.num) || req.body.num > max) {
          throw new VhostUserBackendError('VHOST_USER_BAD_VRING', `vring ${req.body.index}: size ${req.body.num} is not a power of 2 in 1..${max}`);
        }
        r.num = req.body.num;
        return null;
      }
      case 'SET_VRING_ADDR':
        this.#ring(req.body.index).addr = req.body;
        this.#restart(req.body.index);
        return null;
      case 'SET_VRING_BASE':
        // Split: next avail index (16 bits). Packed (RING_PACKED): avail index | wrap << 15 in the
        // low half, used index | wrap << 15 in the high half; the queue decodes it.
        this.#ring(req.body.index).base = req.body.num >>> 0;
        return null;
      case 'GET_VRING_BASE':
        return encodeReply({ type: 'GET_VRING_BASE', body: { index: req.body.index, num: this.#stopRing(req.body.index) }, fds: [] });
      case 'SET_VRING_KICK': {
        const r = this.#ring(req.body.index);
        this.#replaceFd(r, 'kickFd', this.#claim(req.fds[0]));
        if (req.body.noFd) this.#log.warn(`vring ${req.body.index}: polling mode (no kick fd) is not supported; the ring is processed on enable only`);
        r.started = true;
        this.#kickGeneration++;
        this.#refresh(req.body.index);
        return null;
      }
      case 'SET_VRING_CALL': {
        const r = this.#ring(req.body.index);
        this.#replaceFd(r, 'callFd', this.#claim(req.fds[0]));
        // A new call fd on a live ring, or one a notification was due for, is signalled once:
        // - QEMU's vhost-user-blk sends the call fd after SET_VRING_ENABLE when it (re)starts the
        //   device: after a back-end restart the completion of chains waiting (or served again from
        //   the inflight record) was due before there was an fd to signal (the guest's I/O hung);
        // - QEMU (10.0) gives each ring a new call fd once more after the ring went live (its masked
        //   notifier, then the guest's): a notification signalled on the old fd in between is lost,
        //   and the device counts it as sent, so the guest's queue waits for good (seen after a
        //   switch restart).
        // A spurious notification only makes the driver look at the used ring.
        if (r.callFd !== undefined && (r.callMissed || r.queue !== undefined)) {
          r.callMissed = false;
          this.#call(req.body.index);
        }
        return null;
      }
      case 'SET_VRING_ERR':
        this.#replaceFd(this.#ring(req.body.index), 'errFd', this.#claim(req.fds[0]));
        return null;
      case 'SET_VRING_ENABLE': {
        if (!this.#protocolNegotiated && !hasFeature(this.#ackedFeatures ?? 0n, VHOST_USER_F_PROTOCOL_FEATURES)) {
          throw new VhostUserBackendError('VHOST_USER_FEATURE_NOT_NEGOTIATED', 'SET_VRING_ENABLE needs VHOST_USER_F_PROTOCOL_FEATURES');
        }
        const r = this.#ring(req.body.index);
        r.enabled = req.body.num !== 0;
        this.#refresh(req.body.index);
        return null;
      }
      case 'GET_CONFIG': {
        const payload = this.#runner.readConfig(req.body.offset, req.body.payload.length);
        return encodeReply({ type: 'GET_CONFIG', body: { offset: req.body.offset, flags: req.body.flags, payload }, fds: [] });
      }
      case 'SET_CONFIG':
        this.#runner.writeConfig(req.body.offset, req.body.payload);
        return null;
      case 'CREATE_CRYPTO_SESSION':
        return encodeReply({ type: 'CREATE_CRYPTO_SESSION', body: this.#sessions().createSession(req.body), fds: [] });
      case 'CLOSE_CRYPTO_SESSION':
        if (!this.#sessions().closeSession(req.body)) throw new VhostUserBackendError('VHOST_USER_BAD_SESSION', `CLOSE_CRYPTO_SESSION: no session ${req.body}`);
        return null;
      case 'GPU_SET_SOCKET':
        this.#frontendChannel(req.fds[0]);
        return null;
      case 'GET_INFLIGHT_FD': {
        this.#needInflight(req.type);
        const { region, reply, fd } = InflightRegion.allocate(req.body, this.#rings.length);
        this.#installInflight(region);
        this.#log.info(`inflight record allocated: ${reply.numQueues} queue(s) of ${reply.queueSize} descriptors, ${reply.mmapSize} bytes`);
        // The connection sends the fd and then closes it; the mapping stays.
        return encodeReply({ type: 'GET_INFLIGHT_FD', body: reply, fds: [fd] });
      }
      case 'SET_INFLIGHT_FD':
        this.#needInflight(req.type);
        // The fd stays unclaimed (`handle` closes it): the mapping outlives it and the file is sealed.
        this.#installInflight(InflightRegion.adopt(req.body, req.fds[0], this.#rings.length));
        this.#log.info(`inflight record from the front-end: ${req.body.numQueues} queue(s) of ${req.body.queueSize} descriptors`);
        return null;
      case 'SET_LOG_BASE':
      case 'SET_LOG_FD':
      case 'SET_BACKEND_REQ_FD':
        // Their fds stay unclaimed: `handle` closes them.
        throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `${req.type} is not supported (its protocol feature is not offered)`);
      case 'SET_STATUS':
      case 'GET_STATUS':
      case 'SEND_RARP':
      case 'NET_SET_MTU':
        throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `${req.type} is not supported by the ${this.device.name} back-end`);
    }
  }

  /** GET/SET_INFLIGHT_FD are only for a front-end that negotiated INFLIGHT_SHMFD. */
  #needInflight(type: string): void {
    if (!hasFeature(this.#protocol, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) {
      const why = hasFeature(this.#offeredProtocol, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) ? 'INFLIGHT_SHMFD was not negotiated' : `the ${this.device.name} back-end does not offer INFLIGHT_SHMFD`;
      throw new VhostUserBackendError('VHOST_USER_FEATURE_NOT_NEGOTIATED', `${type}: ${why}`);
    }
  }

  /**
   * Makes `region` the inflight record. Live rings hold views into the old one: they are restarted
   * on the new record (keeping their position) before the old one is unmapped.
   */
  #installInflight(region: InflightRegion): void {
    const old = this.#inflight;
    this.#inflight = region;
    try {
      this.#rings.forEach((r, i) => {
        if (r.queue !== undefined) {
          this.#log.warn(`vring ${i}: a new inflight record arrived while the ring is live; the ring restarts on it`);
          this.#restart(i);
        }
      });
    } finally {
      old?.release();
    }
  }

  #sessions(): DeviceSessionControl {
    const s = this.device.sessions;
    if (s === undefined) throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `crypto sessions are not supported by the ${this.device.name} back-end (PROTOCOL_F_CRYPTO_SESSION is not offered)`);
    return s;
  }

  /**
   * A side channel the front-end hands over (GPU_SET_SOCKET): given to the device, non-blocking, if
   * it takes it; otherwise it stays unclaimed and `handle` closes it.
   */
  #frontendChannel(fd: number): void {
    if (this.device.frontendChannel === undefined) {
      throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `GPU_SET_SOCKET is not supported by the ${this.device.name} back-end`);
    }
    try {
      setNonBlocking(fd, true);
    } catch (e: unknown) {
      throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `GPU_SET_SOCKET: cannot make the socket non-blocking: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (!this.device.frontendChannel(fd)) throw new VhostUserBackendError('VHOST_USER_UNSUPPORTED_REQUEST', `GPU_SET_SOCKET: the ${this.device.name} device cannot serve it here`);
    this.#claim(fd);
  }

  #setFeatures(features: bigint): void {
    let deviceFeatures = features & ~featureBit(VHOST_USER_F_PROTOCOL_FEATURES);
    // A front-end that keeps the negotiation to itself (VirtioDevice.featuresWhenUndisclosed).
    const fallback = this.device.featuresWhenUndisclosed;
    const undisclosed = fallback !== undefined && !hasFeature(deviceFeatures, VIRTIO_F_VERSION_1);
    if (undisclosed) {
      this.#log.info(`SET_FEATURES 0x${features.toString(16)} carries no device features: running with 0x${fallback.toString(16)}, rings enabled once started`);
      deviceFeatures = fallback;
    }
    // QEMU (10.0) forces RING_RESET on for the vhost-user-backend devices (vhost-user-gpu-pci,
    // vhost-user-input-pci), whatever the back-end offered; the guest can only use it through
    // QEMU's transport, which never tells the back-end. Accepted here, not handed to the device.
    const forced = deviceFeatures & featureBit(VIRTIO_F_RING_RESET) & ~this.device.offeredFeatures;
    if (forced !== 0n) {
      if (!this.#ringResetNoted) this.#log.info('SET_FEATURES carries RING_RESET, which was not offered (QEMU forces it for gpu and input); ignored');
      this.#ringResetNoted = true;
      deviceFeatures &= ~forced;
    }
    // Re-activate with the new features when nothing is live (firmware → kernel hand-over).
    if (!this.#rings.some((r) => r.queue !== undefined)) this.#runner.reset();
    this.#runner.acceptFeatures(deviceFeatures);
    this.#ackedFeatures = features;
    if (!hasFeature(features, VHOST_USER_F_PROTOCOL_FEATURES) || undisclosed) {
      // "If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring starts directly in the enabled state."
      this.#rings.forEach((r, i) => {
        r.enabled = true;
        this.#refresh(i);
      });
    }
  }

  #setProtocolFeatures(features: bigint): void {
    const extra = features & ~this.#offeredProtocol;
    if (extra !== 0n) this.#log.warn(`SET_PROTOCOL_FEATURES: ignoring bits not offered: 0x${extra.toString(16)}`);
    this.#protocol = features & this.#offeredProtocol;
    this.#protocolNegotiated = true;
  }

  #ring(index: number): Vring {
    const r = this.#rings[index];
    if (r === undefined) throw new VhostUserBackendError('VHOST_USER_BAD_VRING', `vring ${index} does not exist (${this.device.name} has ${this.#rings.length})`);
    return r;
  }

  #replaceFd(r: Vring, key: 'kickFd' | 'callFd' | 'errFd', fd: number | undefined): void {
    if (fd !== undefined) {
      // A hostile front-end could pass a pipe or socket; reading or writing it could block the loop.
      const target = fdTarget(fd);
      if (target !== 'anon_inode:[eventfd]') {
        closeQuiet(fd);
        throw new VhostUserBackendError('VHOST_USER_BAD_VRING', `${key.replace('Fd', '')} fd is not an eventfd (${target ?? 'closed'})`);
      }
      // A blocking eventfd at its maximum count would block the loop on the next call signal (and
      // a kick fd the front-end drains first, on the next read). O_NONBLOCK belongs to the open
      // file, so this also changes the front-end's view; QEMU creates its eventfds non-blocking
      // anyway (EFD_NONBLOCK), so for it nothing changes.
      try {
        setNonBlocking(fd, true);
      } catch (e: unknown) {
        closeQuiet(fd);
        throw new VhostUserBackendError('VHOST_USER_BAD_VRING', `${key.replace('Fd', '')} fd: cannot make it non-blocking: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
    const old = r[key];
    if (old !== undefined && old !== fd) closeQuiet(old);
    r[key] = fd;
  }

  /** Makes ring `index` live or not, as its state says. */
  #refresh(index: number): void {
    const r = this.#ring(index);
    const wanted = r.started && r.enabled && r.num !== undefined && r.addr !== undefined && this.#ackedFeatures !== undefined;
    if (wanted && r.queue === undefined) this.#goLive(index, r);
    else if (!wanted && r.queue !== undefined) this.#pause(index, r);
  }

  #goLive(index: number, r: Vring): void {
    // Safe: #refresh checked num and addr.
    const num = r.num!;
    const addr = r.addr!;
    // Packed rings: desc = descriptor ring, avail = driver event area, used = device event area.
    const rings = this.#runner.resolveRings(this.#memory.uva, num, { desc: addr.desc, avail: addr.avail, used: addr.used });
    const tracker = this.#runner.packed ? undefined : this.#inflightFor(index, num);
    r.queue = this.#runner.createQueue(index, num, rings, r.base, tracker);
    const report = tracker?.lastResume;
    if (report !== undefined && !report.fresh) {
      this.stats.inflightRepaired += report.repaired;
      this.stats.inflightResubmitted += report.resubmit.length;
      if (report.resubmit.length > 0 || report.repaired > 0) {
        this.#log.info(`vring ${index}: inflight record: ${report.resubmit.length} chain(s) in flight served again (heads ${report.resubmit.join(',')}), ${report.repaired} entr(ies) cleared by the used_idx repair; resuming at avail ${r.queue.vringBase} (front-end said ${r.base})`);
      }
    }
    // A ring that already has used entries may come from a back-end process that died after
    // returning chains and before signalling them (serveQueue notifies once per batch): the driver
    // still waits for that interrupt, and EVENT_IDX would suppress ours (its used_event lies
    // before the used.idx we start from). Measured: the guest's I/O hung after such a restart.
    // (Split rings only: a base of 0 is a ring starting from scratch.)
    const resumedWithHistory = r.queue.layout === 'split' && r.base !== 0;
    this.#runner.startQueue(index, r.queue);
    // Process what may already be there: a kick can precede the enable. The loop checked the
    // memory at the start of this turn, but the front-end may have shrunk an unsealed file while
    // the turn went on (it did, on a loaded machine, in the soak test): check again right before
    // touching it, which leaves only the window of this one call (docs/reliability.md).
    this.#memory.checkIntact();
    this.#runner.kick(index);
    // One call makes the driver look at the used ring (a spurious one costs it a glance); without
    // a call fd yet, SET_VRING_CALL sends it.
    if (resumedWithHistory) this.#call(index);
  }

  /** The inflight record of ring `index` when there is one that fits a ring of `num`. */
  #inflightFor(index: number, num: number): SplitInflightQueue | undefined {
    const region = this.#inflight;
    if (region === undefined) return undefined;
    const q = region.queue(index);
    if (q === undefined || num > region.queueSize) {
      this.#log.warn(`vring ${index}: the inflight record has no room for it (size ${num}, record for ${region.queueSize}); the ring runs untracked`);
      return undefined;
    }
    return q;
  }

  #pause(index: number, r: Vring): void {
    r.base = r.queue?.vringBase ?? r.base;
    r.queue = undefined;
    this.#runner.stopQueue(index);
  }

  /** Re-resolves a live ring (new addresses or memory); keeps its position. */
  #restart(index: number): void {
    const r = this.#ring(index);
    if (r.queue !== undefined) this.#pause(index, r);
    this.#refresh(index);
  }

  /** GET_VRING_BASE: stop the ring, close its kick fd, return the next avail index. */
  #stopRing(index: number): number {
    const r = this.#ring(index);
    if (r.queue !== undefined) this.#pause(index, r);
    r.started = false;
    this.#replaceFd(r, 'kickFd', undefined);
    this.#kickGeneration++;
    this.#log.debug(`vring ${index}: stopped at base 0x${r.base.toString(16)}`);
    return r.base;
  }

  /**
   * Points the device and every live ring at the new memory, then releases the retired mappings.
   * Each ring is restarted on its own: one whose memory went away (REM_MEM_REG or a smaller
   * SET_MEM_TABLE under a live ring) stops, with a log line, and waits to be set up again; the
   * others go on. The release happens in every case, and only after no ring can still hold a view
   * into a retired mapping (#18 case 8: it used to be skipped when a restart failed).
   */
  #memoryChanged(retired: RegionMapping[]): void {
    try {
      this.#runner.setMemory(this.#memory.gpa);
      this.#rings.forEach((r, i) => {
        if (r.queue === undefined) return;
        try {
          this.#restart(i);
        } catch (e: unknown) {
          if (!(e instanceof QueueError || e instanceof DeviceError || e instanceof VhostUserBackendError)) throw e;
          if (endsConnection(e)) throw e;
          if (r.queue !== undefined) this.#pause(i, r);
          this.stats.ringsLostMemory++;
          this.#log.warn(`vring ${i}: stopped, its memory was changed under it: ${e.message}`);
        }
      });
    } finally {
      this.#release(retired);
    }
  }

  #release(mappings: readonly RegionMapping[]): void {
    for (const m of mappings) m.release();
  }

  #resetRings(): void {
    this.#rings.forEach((r, i) => {
      if (r.queue !== undefined) this.#pause(i, r);
      for (const key of ['kickFd', 'callFd', 'errFd'] as const) this.#replaceFd(r, key, undefined);
      this.#rings[i] = freshRing();
    });
    this.#kickGeneration++;
  }

  /**
   * The device entered DEVICE_NEEDS_RESET: tell the front-end on the error eventfd (SET_VRING_ERR,
   * "signal when error occurs") of each ring whose queue broke, or of every live ring when the
   * device as a whole failed. Without this the front-end only sees a ring that stopped answering;
   * QEMU logs the error and a conformance front-end recovers at once instead of timing out.
   */
  #signalError(): void {
    const broken = this.#rings.filter((r) => r.queue?.broken !== undefined);
    for (const r of broken.length > 0 ? broken : this.#rings.filter((x) => x.queue !== undefined)) {
      if (r.errFd !== undefined) this.#signal(r.errFd);
    }
  }

  /** Signals a call or error eventfd; a saturated counter is counted, not an error (#18 case 4). */
  #signal(fd: number): void {
    if (!eventfdSignal(fd)) this.stats.saturatedSignals++;
  }

  #call(index: number): void {
    const r = this.#rings[index];
    const fd = r?.callFd;
    if (fd === undefined) {
      if (r !== undefined) r.callMissed = true;
      return;
    }
    this.stats.calls++;
    this.#signal(fd);
  }
}
