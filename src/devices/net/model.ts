// SPDX-License-Identifier: Apache-2.0
/**
 * One switch port = one virtio-net device (VIRTIO 1.3 §5.1): the VM behind it sees a NIC whose
 * wire is the switch (`switch.ts`).
 *
 * Owns: the offered features, the config space (§5.1.4), and the descriptor plumbing of the two
 * queues (receiveq1 = 0, transmitq1 = 1; no control queue, no multiqueue):
 * - transmit: pops chains (at most a budget per switch turn, and not while the port's rate limit
 *   holds it back), checks the 12-byte header and the frame, copies the frame into the switch's
 *   scratch buffer, hands it to the switch, and returns the chain with used length 0 (§5.1.6.2: the
 *   device writes nothing into a transmit buffer);
 * - receive: puts a frame the switch forwards into as many receive chains as it needs
 *   (VIRTIO_NET_F_MRG_RXBUF; one chain otherwise; the placement rules are in `rx.ts`), and
 *   notifies the guest when the switch calls `flushRx`;
 * - counters (`metrics.ts`).
 * Does not own: forwarding decisions, MAC learning, scheduling between ports (`switch.ts`), token
 * arithmetic (`shaper.ts`), placing a frame in receive chains (`rx.ts`), rings and hostile-chain
 * validation (`queue/`).
 *
 * Features offered: VERSION_1, MAC, MTU, STATUS, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC. Not offered:
 * CSUM / GUEST_CSUM and the TSO/UFO offloads (frames are always complete and checksummed by the
 * guest, so the switch never has to finish a partial checksum or segment a GSO frame), CTRL_VQ
 * (no receive filters: the guest's stack drops frames that are not for it), MQ.
 *
 * What the guest sees under QEMU 7.2: QEMU emulates virtio-net's config space itself for
 * vhost-user (it never sends GET_CONFIG for a net device), so the MAC is QEMU's `mac=`, the link
 * status is QEMU's (up unless the monitor says `set_link off`), and the MTU is QEMU's `host_mtu=`
 * (which also makes QEMU offer VIRTIO_NET_F_MTU). The platform must therefore give each VM's NIC
 * `mac=` = the port's MAC and `host_mtu=` = the switch MTU; a port's admin link-down drops its
 * traffic but is not visible to a QEMU guest. This config space is what in-process drivers (the
 * harness, the conformance suite) read.
 *
 * Hostile input (counted in `drops.malformed` unless noted, never thrown): a transmit chain shorter
 * than header + Ethernet header; a header with a GSO type or NEEDS_CSUM (not negotiable here); a
 * multicast or all-zero source MAC; a frame over MTU + 14 (`drops.oversize`, never copied); a
 * receive chain without room for the header (returned with used length 0). Device-writable
 * buffers in a transmit chain and device-readable ones in a receive chain are ignored.
 */
import type { DeviceContext, DeviceLog, HostTimer, VirtioDevice } from '../../device/contract.js';
import type { DescriptorChain } from '../../queue/chain.js';
import type { Virtqueue as DeviceQueue } from '../../queue/virtqueue.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask, hasFeature } from '../../spec/virtio.js';
import { NetConfigError } from './errors.js';
import { isMulticast, macKey, macString } from './mac-table.js';
import { emptyDrops, type NetDrops, type NetPortMetrics, type NetSwitchMetrics, type NetTraffic } from './metrics.js';
import { RxChains, writeRx } from './rx.js';
import { Shaper, type ShaperOptions } from './shaper.js';
import {
  ETH_ALEN,
  ETH_HLEN,
  NET_DEVICE_ID,
  NET_RX_QUEUE,
  NET_TX_QUEUE,
  VIRTIO_NET_CONFIG_SIZE,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_S_LINK_UP,
  virtioNetConfig,
} from './spec.js';

const HDR = VIRTIO_NET_HDR_SIZE;

/** Largest queue a port accepts (QEMU's virtio-net allows rx/tx_queue_size up to 1024 with vhost-user). */
export const NET_QUEUE_MAX_SIZE = 1024;

/** What a port needs from its switch. NetSwitch implements it; an interface keeps the import one-way. */
export interface PortFabric {
  readonly mtu: number;
  /** Longest frame accepted: mtu + ETH_HLEN. */
  readonly maxFrame: number;
  /** 12 bytes of header space, then room for one frame of maxFrame + 1 bytes. */
  readonly scratch: Uint8Array;
  /** Forwards the frame of `len` bytes at scratch[12..] that arrived on port `from`. */
  forward(from: number, len: number, now: number): void;
  /** Work may be waiting (a kick, a refill): run or schedule a turn. */
  kick(): void;
  portActivated(port: NetPort, ctx: DeviceContext): void;
  portReset(port: NetPort): void;
  switchMetrics(): NetSwitchMetrics;
  /** The back-end stops for good: release the uplink (idempotent). */
  close(): void;
}

export interface NetPortOptions {
  /** Position in the switch (also the port number in the MAC table). */
  index: number;
  /** Name in logs and metrics. */
  name: string;
  /** The VM's MAC address (6 bytes), served in config space. */
  mac: Uint8Array;
  /** Higher is served first in every switch turn (default 0). */
  priority?: number;
  /** Admin link state (default up). */
  linkUp?: boolean;
  /** Ingress rate limit (default none). */
  shaping?: ShaperOptions;
  /** Largest queue size (default NET_QUEUE_MAX_SIZE). */
  queueMaxSize?: number;
}

export type TxResult = 'idle' | 'more' | 'throttled';

/** Frames per turn above which a port's transmit queue is polled again instead of waiting for a kick. */
const BUSY_FRAMES = 8;

type DropReason = keyof NetDrops;

export class NetPort implements VirtioDevice {
  readonly deviceId = NET_DEVICE_ID;
  readonly name = 'net';
  readonly queueMaxSizes: readonly number[];
  readonly offeredFeatures = featureMask(
    VIRTIO_F_VERSION_1,
    VIRTIO_F_INDIRECT_DESC,
    VIRTIO_F_EVENT_IDX,
    VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_MTU,
    VIRTIO_NET_F_STATUS,
    VIRTIO_NET_F_MRG_RXBUF,
  );
  readonly configSize = VIRTIO_NET_CONFIG_SIZE;
  readonly index: number;
  readonly portName: string;
  readonly mac: Uint8Array;
  readonly priority: number;
  readonly #fab: PortFabric;
  readonly #shaper: Shaper | undefined;
  readonly #shaping: ShaperOptions;
  #linkUp: boolean;
  #ctx: DeviceContext | undefined;
  #mrg = false;
  /** Receive chains popped for a frame that did not fit, kept for the next frame. */
  readonly #rxChains = new RxChains();
  #rxDirty = false;
  #throttle: HostTimer | undefined;
  #throttled = 0;
  #internalErrors = 0;
  readonly #warned = new Set<string>();
  readonly #rx: NetTraffic = { frames: 0, bytes: 0 };
  readonly #tx: NetTraffic = { frames: 0, bytes: 0 };
  readonly #drops: NetDrops = emptyDrops();

  /** @throws NetConfigError NET_BAD_OPTION for a bad MAC, priority or shaping option. */
  constructor(fab: PortFabric, opts: NetPortOptions) {
    if (opts.mac.length !== ETH_ALEN || isMulticast(opts.mac, 0)) throw new NetConfigError('NET_BAD_OPTION', `port ${opts.name}: MAC must be a 6-byte unicast address`);
    const priority = opts.priority ?? 0;
    if (!Number.isSafeInteger(priority) || priority < 0 || priority > 7) throw new NetConfigError('NET_BAD_OPTION', `port ${opts.name}: priority must be an integer from 0 to 7, got ${priority}`);
    const qmax = opts.queueMaxSize ?? NET_QUEUE_MAX_SIZE;
    this.#fab = fab;
    this.index = opts.index;
    this.portName = opts.name;
    this.mac = opts.mac.slice();
    this.priority = priority;
    this.#linkUp = opts.linkUp ?? true;
    this.#shaping = opts.shaping ?? {};
    const limited = this.#shaping.bytesPerSec !== undefined || this.#shaping.packetsPerSec !== undefined;
    // The buckets start full at clock 0 and only ever refill forwards, so the clock's origin does not matter.
    this.#shaper = limited ? new Shaper(this.#shaping, fab.maxFrame, 0) : undefined;
    this.queueMaxSizes = [qmax, qmax];
  }

  get linkUp(): boolean {
    return this.#linkUp;
  }

  /** Whether a driver runs this port (activated and not reset since). */
  get active(): boolean {
    return this.#ctx !== undefined;
  }

  /** Sets the admin link state; traffic from and to a port that is down is dropped and counted. */
  setLinkUp(up: boolean): void {
    this.#linkUp = up;
    if (up) this.#fab.kick();
  }

  readConfig(offset: number, length: number): Uint8Array {
    const all = new Uint8Array(VIRTIO_NET_CONFIG_SIZE);
    virtioNetConfig.encode(
      { mac: this.mac, status: this.#linkUp ? VIRTIO_NET_S_LINK_UP : 0, maxVirtqueuePairs: 1, mtu: this.#fab.mtu },
      new DataView(all.buffer),
      0,
    );
    const out = new Uint8Array(Math.max(0, length));
    if (offset >= 0 && offset < all.length) out.set(all.subarray(offset, Math.min(all.length, offset + out.length)));
    return out;
  }

  /**
   * Nothing is writable: §5.1.4 "The mac address field always exists (though is only valid if
   * VIRTIO_NET_F_MAC is set)" and without VIRTIO_NET_F_CTRL_MAC_ADDR the driver sets its MAC only
   * through the legacy config write, which VIRTIO 1.x drivers do not do.
   */
  writeConfig(offset: number, data: Uint8Array): void {
    this.#ctx?.log.debug(`net ${this.portName}: config write at ${offset} (+${data.length}) ignored: the config space is read-only`);
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#mrg = hasFeature(ctx.features, VIRTIO_NET_F_MRG_RXBUF);
    this.#warned.clear();
    this.#fab.portActivated(this, ctx);
  }

  queueNotify(index: number): void {
    // Receive kicks only say that buffers were added: frames are never queued waiting for them.
    if (index === NET_TX_QUEUE) this.#fab.kick();
  }

  reset(): void {
    this.#ctx = undefined;
    this.#rxChains.clear();
    this.#rxDirty = false;
    this.#throttle?.cancel();
    this.#throttle = undefined;
    this.#fab.portReset(this);
  }

  /**
   * The back-end stops for good: the switch closes its uplink TAP (a back-end thread may stop while
   * its process goes on, so the fd must not wait for the process to exit). Every port of the
   * switch calls it; the first call does it.
   */
  dispose(): void {
    this.#fab.close();
  }

  /**
   * Pops at most `budget` frames from the transmit queue and forwards them. Returns 'more' when the
   * budget ran out with frames left, 'throttled' when the rate limit paused the port (a timer is
   * armed to kick the switch again), 'idle' when the ring is empty (notifications re-enabled).
   */
  serviceTx(budget: number): TxResult {
    const ctx = this.#ctx;
    const q = ctx?.queue(NET_TX_QUEUE);
    if (ctx === undefined || q === undefined) return 'idle';
    let result: TxResult = 'idle';
    let n = 0;
    q.disableNotifications();
    for (;;) {
      if (n >= budget) {
        // The rest of the turn belongs to the other ports; look again next turn (which re-enables
        // notifications if the ring turns out empty).
        result = 'more';
        break;
      }
      // Empty. A busy port (BUSY_FRAMES or more this turn) is looked at again next turn with
      // notifications still off, so a guest that keeps sending need not kick for every batch
      // (a kick costs it a VM exit, and the loop a wake-up); a port that had little to send goes
      // back to notifications (and goes on if frames raced in). Checked before the rate limit,
      // so an idle port arms no refill timer.
      if (q.pending() === 0) {
        if (n >= BUSY_FRAMES) {
          result = 'more';
          break;
        }
        if (!q.enableNotifications()) break;
      }
      const now = ctx.reactor.now();
      if (this.#heldBack(ctx, now)) {
        result = 'throttled';
        break;
      }
      // Null when the pending entries were all rejected chains (returned by the queue) or the
      // queue broke: the next iteration sees it empty.
      const chain = q.pop();
      if (chain === null) continue;
      n++;
      this.#transmit(ctx, chain, now);
      q.pushUsed(chain.head, 0);
    }
    if (q.needsNotification()) ctx.notify(NET_TX_QUEUE);
    return result;
  }

  /** Back-pressure: true (and a wake-up timer armed) while the rate limit says wait. */
  #heldBack(ctx: DeviceContext, now: number): boolean {
    const sh = this.#shaper;
    if (sh === undefined || sh.policy !== 'backpressure' || !this.#linkUp) return false;
    const wait = sh.msUntilAdmit(now);
    if (wait === 0) return false;
    if (this.#throttle === undefined) {
      this.#throttled++;
      this.#throttle = ctx.reactor.setTimer(wait, () => {
        this.#throttle = undefined;
        this.#fab.kick();
      });
    }
    return true;
  }

  /** Checks one transmit chain and forwards its frame. Never throws. */
  #transmit(ctx: DeviceContext, chain: DescriptorChain, now: number): void {
    try {
      const total = chain.readableLength;
      if (total < HDR + ETH_HLEN) {
        this.#drop(ctx.log, 'malformed', `transmit chain ${chain.head} has ${total} readable bytes, fewer than the ${HDR}-byte header plus an Ethernet header`);
        return;
      }
      const len = total - HDR;
      if (len > this.#fab.maxFrame) {
        this.#drop(ctx.log, 'oversize', `frame of ${len} bytes exceeds MTU ${this.#fab.mtu} + ${ETH_HLEN}`);
        return;
      }
      const s = this.#fab.scratch;
      // Buffer by buffer, straight into the scratch (no cursor objects on the hot path). The queue
      // checked every buffer against guest memory; their lengths add up to `total`.
      let off = 0;
      for (const b of chain.readable) {
        chain.memory.readInto(b.addr, s.subarray(off, off + b.len));
        off += b.len;
      }
      // Safe: total >= HDR + ETH_HLEN bytes were copied.
      const flags = s[0]!;
      const gso = s[1]!;
      if (gso !== VIRTIO_NET_HDR_GSO_NONE || (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
        this.#drop(ctx.log, 'malformed', `frame with gso_type ${gso} / flags ${flags}: no offload was negotiated (§5.1.6.2.1)`);
        return;
      }
      if (!this.#linkUp) {
        this.#drops.linkDown++;
        return;
      }
      if (isMulticast(s, HDR + ETH_ALEN) || macKey(s, HDR + ETH_ALEN) === 0) {
        this.#drop(ctx.log, 'malformed', `frame from source MAC ${macString(macKey(s, HDR + ETH_ALEN))}, which is not a unicast address`);
        return;
      }
      const sh = this.#shaper;
      if (sh?.policy === 'drop') {
        if (!sh.tryCharge(len, now)) {
          this.#drops.rateLimit++;
          return;
        }
      } else sh?.charge(len, now);
      this.#tx.frames++;
      this.#tx.bytes += len;
      this.#fab.forward(this.index, len, now);
    } catch (e: unknown) {
      this.#internal(ctx.log, 'transmit', e);
    }
  }

  /** Puts the frame at scratch[12 .. 12 + len) into the receive queue, or counts why not. Never throws. */
  deliver(len: number): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(NET_RX_QUEUE);
    if (!this.#linkUp || ctx === undefined || q === undefined) {
      this.#drops.linkDown++;
      return;
    }
    try {
      const chains = this.#takeRx(ctx.log, q, HDR + len);
      if (chains === null) {
        this.#drops.noRxBuffers++;
        return;
      }
      writeRx(q, chains, this.#fab.scratch, HDR + len);
      this.#rx.frames++;
      this.#rx.bytes += len;
      this.#rxDirty = true;
    } catch (e: unknown) {
      this.#internal(ctx.log, 'receive', e);
    }
  }

  /** Sends the receive-queue notification the frames delivered since the last call call for. */
  flushRx(): void {
    if (!this.#rxDirty) return;
    this.#rxDirty = false;
    const ctx = this.#ctx;
    const q = ctx?.queue(NET_RX_QUEUE);
    if (ctx !== undefined && q?.needsNotification()) ctx.notify(NET_RX_QUEUE);
  }

  /** The receive chains for a packet of `need` bytes (header included), or null (see `RxChains.take`). */
  #takeRx(log: DeviceLog, q: DeviceQueue, need: number): DescriptorChain[] | null {
    return this.#rxChains.take(q, need, this.#mrg, (c, unusable) => {
      if (unusable) this.#drop(log, 'malformed', `receive chain ${c.head} has ${c.writableLength} writable bytes, too few to use`);
      this.#rxDirty = true;
    });
  }

  /** Counts a drop; the first of each reason per activation is logged, the rest only counted. */
  #drop(log: DeviceLog, reason: DropReason, what: string): void {
    this.#drops[reason]++;
    if (this.#warned.has(reason)) return;
    this.#warned.add(reason);
    log.warn(`net ${this.portName}: ${what}; dropped (further ${reason} drops are only counted)`);
  }

  #internal(log: DeviceLog, where: string, e: unknown): void {
    this.#internalErrors++;
    log.error(`net ${this.portName}: internal error in ${where}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  metrics(): NetPortMetrics {
    const qs = [this.#ctx?.queue(NET_RX_QUEUE), this.#ctx?.queue(NET_TX_QUEUE)];
    const sum = (k: 'chainsRejected' | 'notificationsSent' | 'notificationsSuppressed') => qs.reduce((n, q) => n + (q?.stats[k] ?? 0), 0);
    const sh = this.#shaper;
    return {
      device: 'net',
      port: this.portName,
      index: this.index,
      mac: macString(macKey(this.mac, 0)),
      link: this.#linkUp ? 'up' : 'down',
      active: this.#ctx !== undefined,
      priority: this.priority,
      rx: { ...this.#rx },
      tx: { ...this.#tx },
      drops: { ...this.#drops },
      shaping: {
        policy: sh?.policy ?? this.#shaping.policy ?? 'backpressure',
        bytesPerSec: sh?.bytes?.rate ?? null,
        packetsPerSec: sh?.packets?.rate ?? null,
        burstBytes: sh?.bytes?.burst ?? null,
        burstPackets: sh?.packets?.burst ?? null,
        throttled: this.#throttled,
      },
      rejectedChains: sum('chainsRejected'),
      notifications: sum('notificationsSent'),
      suppressedNotifications: sum('notificationsSuppressed'),
      internalErrors: this.#internalErrors,
      switch: this.#fab.switchMetrics(),
    };
  }
}
