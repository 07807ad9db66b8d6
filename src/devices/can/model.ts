// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-can device (VIRTIO 1.4 "CAN Device"): one CAN controller on a CAN bus (host.ts: an AVP CAN
 * bus, or a bus of its own), classic and CAN FD frames, remote frames when offered.
 *
 * Owns: the config space (`status` with CTRL_BUSOFF), the controller state (STOPPED at first;
 * START and STOP on the Controlq, in order), the Txq (each frame checked and offered to the link;
 * with the link busy, the buffers wait in order until it drains), the Rxq (frames from the bus
 * written into the driver's buffers; frames that find no buffer wait in a bounded backlog, beyond
 * which they are dropped and counted, as a controller's receive overrun), and bus-off (CTRL_BUSOFF
 * set, the controller STOPPED, pending transmissions completed NOT_OK).
 * Hostile input, each answered VIRTIO_CAN_RESULT_NOT_OK and counted, never thrown: a header too
 * short, a wrong msg_type, an undefined flag, a frame type not negotiated (FD, classic, RTR, RTR
 * with FD), an identifier out of range or with its top 3 bits set, a length out of range or longer
 * than the buffer, a frame while STOPPED. A chain without a device-writable byte is returned with
 * used length 0. LATE_TX_ACK is not offered: a transmission completes once the link scheduled it.
 * Does not own: the bus (host.ts, bus-link.ts), frame checks shared with the bus (can/frame.ts).
 *
 * Not done: the config-change notification at bus-off (VIRTIO's "device configuration change"
 * interrupt) needs the vhost-user back-end request channel, which AVP's back-end does not have
 * yet; the CTRL_BUSOFF bit is set and a driver reading the config sees it.
 */
import { type CanFrame, CANFD_LENGTHS, CAN_EFF_MASK, CAN_SFF_MASK, canFrame } from '../../can/index.js';
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { ChainWriter, DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask } from '../../spec/virtio.js';
import { type CanLink, StandaloneLink } from './host.js';
import {
  CAN_DEVICE_ID,
  CAN_QUEUE_MAX_SIZE,
  HDR,
  VIRTIO_CAN_CONFIG_SIZE,
  VIRTIO_CAN_FLAGS_EXTENDED,
  VIRTIO_CAN_FLAGS_FD,
  VIRTIO_CAN_FLAGS_KNOWN,
  VIRTIO_CAN_FLAGS_RTR,
  VIRTIO_CAN_F_CAN_CLASSIC,
  VIRTIO_CAN_F_CAN_FD,
  VIRTIO_CAN_F_RTR_FRAMES,
  VIRTIO_CAN_HDR_SIZE,
  VIRTIO_CAN_QUEUE_CONTROL,
  VIRTIO_CAN_QUEUE_RX,
  VIRTIO_CAN_QUEUE_TX,
  VIRTIO_CAN_RESULT_NOT_OK,
  VIRTIO_CAN_RESULT_OK,
  VIRTIO_CAN_RX,
  VIRTIO_CAN_SET_CTRL_MODE_START,
  VIRTIO_CAN_SET_CTRL_MODE_STOP,
  VIRTIO_CAN_S_CTRL_BUSOFF,
  VIRTIO_CAN_TX,
} from './spec.js';

export interface CanDeviceOptions {
  /** The bus (default: a bus of its own that acknowledges and drops). */
  link?: CanLink;
  /** Offer CAN FD (default true). */
  fd?: boolean;
  /** Offer remote frames (default true). */
  rtr?: boolean;
}

/** Frames from the bus kept while the driver has no receive buffer posted. */
export const RX_BACKLOG_LIMIT = 256;

interface PendingTx {
  head: number;
  frame: CanFrame;
  writer: ChainWriter;
}

export interface CanCounters {
  txOk: number;
  txNotOk: number;
  /** Transmissions refused as malformed or not negotiated (a subset of txNotOk). */
  txInvalid: number;
  rxFrames: number;
  /** Frames dropped: no receive buffer and the backlog full, a buffer too small, a type not negotiated, or STOPPED. */
  rxDropped: number;
  controlRequests: number;
  controlNotOk: number;
  busOffs: number;
  badChains: number;
}

export class CanDevice implements VirtioDevice {
  readonly deviceId = CAN_DEVICE_ID;
  readonly name = 'can';
  readonly queueMaxSizes = [CAN_QUEUE_MAX_SIZE, CAN_QUEUE_MAX_SIZE, CAN_QUEUE_MAX_SIZE];
  readonly offeredFeatures: bigint;
  readonly configSize = VIRTIO_CAN_CONFIG_SIZE;
  readonly counters: CanCounters = { txOk: 0, txNotOk: 0, txInvalid: 0, rxFrames: 0, rxDropped: 0, controlRequests: 0, controlNotOk: 0, busOffs: 0, badChains: 0 };
  readonly #link: CanLink;
  #ctx: DeviceContext | undefined;
  #started = false;
  #status = 0;
  readonly #pendingTx: PendingTx[] = [];
  readonly #rxBacklog: CanFrame[] = [];

  constructor(opts: CanDeviceOptions = {}) {
    this.#link = opts.link ?? new StandaloneLink();
    const bits = [VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_CAN_F_CAN_CLASSIC];
    if (opts.fd !== false) bits.push(VIRTIO_CAN_F_CAN_FD);
    if (opts.rtr !== false) bits.push(VIRTIO_CAN_F_RTR_FRAMES);
    this.offeredFeatures = featureMask(...bits);
  }

  get started(): boolean {
    return this.#started;
  }

  readConfig(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(VIRTIO_CAN_CONFIG_SIZE);
    new DataView(b.buffer).setUint16(0, this.#status, true);
    return b.slice(offset, offset + length);
  }

  /** `status` is read-only for the driver ("Device configuration layout"). */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#link.attach({ frame: (f) => this.#fromBus(f), busOff: () => this.#busOff(), writable: () => this.#retryTx() }, ctx.reactor);
  }

  #has(bit: number): boolean {
    return ((this.#ctx?.features ?? 0n) & featureBit(bit)) !== 0n;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === VIRTIO_CAN_QUEUE_CONTROL) serveQueue(ctx, index, (c) => this.#control(c));
    else if (index === VIRTIO_CAN_QUEUE_TX) this.#serveTx(ctx);
    else if (index === VIRTIO_CAN_QUEUE_RX) this.#deliverBacklog();
  }

  // -------------------------------------------------------------------------------------------
  // Controlq

  #control(chain: DescriptorChain): number {
    if (chain.writableLength < 1) {
      this.counters.badChains++;
      return 0;
    }
    this.counters.controlRequests++;
    const w = chain.writer();
    const msgType = chain.readableLength >= 2 ? new DataView(chain.reader().readBytes(2).buffer).getUint16(0, true) : -1;
    let ok = false;
    if (msgType === VIRTIO_CAN_SET_CTRL_MODE_START) {
      ok = this.#link.start();
      if (ok) {
        this.#started = true;
        // "If a status update is necessary, the device updates the configuration status before marking the request used."
        this.#status &= ~VIRTIO_CAN_S_CTRL_BUSOFF;
      }
    } else if (msgType === VIRTIO_CAN_SET_CTRL_MODE_STOP) {
      this.#stopController();
      this.#link.stop();
      ok = true;
    }
    if (!ok) this.counters.controlNotOk++;
    w.write(Uint8Array.of(ok ? VIRTIO_CAN_RESULT_OK : VIRTIO_CAN_RESULT_NOT_OK));
    return 1;
  }

  /** STOPPED: "the device cancels all CAN messages already pending for transmission ... NOT_OK". */
  #stopController(): void {
    this.#started = false;
    const ctx = this.#ctx;
    const q = ctx?.queue(VIRTIO_CAN_QUEUE_TX);
    for (let p = this.#pendingTx.shift(); p !== undefined; p = this.#pendingTx.shift()) {
      p.writer.write(Uint8Array.of(VIRTIO_CAN_RESULT_NOT_OK));
      this.counters.txNotOk++;
      q?.pushUsed(p.head, 1);
    }
    if (ctx !== undefined && q?.needsNotification() === true) ctx.notify(VIRTIO_CAN_QUEUE_TX);
  }

  #busOff(): void {
    if (!this.#started) return;
    this.counters.busOffs++;
    this.#status |= VIRTIO_CAN_S_CTRL_BUSOFF;
    this.#ctx?.log.info('controller bus-off: stopped');
    this.#stopController();
  }

  // -------------------------------------------------------------------------------------------
  // Txq

  /** Pops every transmit buffer; waits (in order) while earlier ones are still held by a busy link. */
  #serveTx(ctx: DeviceContext): void {
    const q = ctx.queue(VIRTIO_CAN_QUEUE_TX);
    if (q === undefined) return;
    do {
      q.disableNotifications();
      for (let c = q.pop(); c !== null; c = q.pop()) this.#tx(c);
    } while (q.enableNotifications());
    if (q.needsNotification()) ctx.notify(VIRTIO_CAN_QUEUE_TX);
  }

  #tx(chain: DescriptorChain): void {
    const q = this.#ctx?.queue(VIRTIO_CAN_QUEUE_TX);
    if (chain.writableLength < 1) {
      this.counters.badChains++;
      q?.pushUsed(chain.head, 0);
      return;
    }
    const writer = chain.writer();
    const frame = this.#parseTx(chain);
    if (frame === undefined || !this.#started) {
      if (frame === undefined) this.counters.txInvalid++;
      return this.#completeTx(chain.head, writer, VIRTIO_CAN_RESULT_NOT_OK);
    }
    this.#pendingTx.push({ head: chain.head, frame, writer });
    this.#retryTx();
  }

  /** Offers held frames to the link, in order, until it is busy. */
  #retryTx(): void {
    while (this.#pendingTx.length > 0 && this.#started) {
      // Safe: the loop condition says the list is not empty.
      const p = this.#pendingTx[0]!;
      const r = this.#link.send(p.frame);
      // A bus-off during the send completed every pending buffer, this one included.
      if (this.#pendingTx[0] !== p) continue;
      if (r === 'busy') return;
      this.#pendingTx.shift();
      this.#completeTx(p.head, p.writer, r === 'ok' ? VIRTIO_CAN_RESULT_OK : VIRTIO_CAN_RESULT_NOT_OK);
    }
  }

  #completeTx(head: number, writer: ChainWriter, result: number): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VIRTIO_CAN_QUEUE_TX);
    writer.write(Uint8Array.of(result));
    if (result === VIRTIO_CAN_RESULT_OK) this.counters.txOk++;
    else this.counters.txNotOk++;
    q?.pushUsed(head, 1);
    if (ctx !== undefined && q?.needsNotification() === true) ctx.notify(VIRTIO_CAN_QUEUE_TX);
  }

  /** virtio_can_tx_out → a frame, or undefined when the device must reject it ("CAN Message Transmission"). */
  #parseTx(chain: DescriptorChain): CanFrame | undefined {
    if (chain.readableLength < VIRTIO_CAN_HDR_SIZE) return undefined;
    const r = chain.reader();
    const h = new DataView(r.readBytes(VIRTIO_CAN_HDR_SIZE).buffer);
    if (h.getUint16(HDR.msgType, true) !== VIRTIO_CAN_TX) return undefined;
    const length = h.getUint16(HDR.length, true);
    const flags = h.getUint32(HDR.flags, true);
    const id = h.getUint32(HDR.canId, true);
    // "A CAN frame with an undefined bit set in flags is treated like a CAN frame for which support has not been negotiated."
    if ((flags & ~VIRTIO_CAN_FLAGS_KNOWN) !== 0) return undefined;
    const fd = (flags & VIRTIO_CAN_FLAGS_FD) !== 0;
    const rtr = (flags & VIRTIO_CAN_FLAGS_RTR) !== 0;
    const extended = (flags & VIRTIO_CAN_FLAGS_EXTENDED) !== 0;
    if (fd ? !this.#has(VIRTIO_CAN_F_CAN_FD) : !this.#has(VIRTIO_CAN_F_CAN_CLASSIC)) return undefined;
    if (rtr && (fd || !this.#has(VIRTIO_CAN_F_RTR_FRAMES))) return undefined;
    if (id > (extended ? CAN_EFF_MASK : CAN_SFF_MASK)) return undefined;
    if (fd ? !CANFD_LENGTHS.includes(length) : length > 8) return undefined;
    if (rtr) return canFrame({ id, extended, rtr: true, rtrLength: length });
    if (chain.readableLength < VIRTIO_CAN_HDR_SIZE + length) return undefined;
    return canFrame({ id, extended, fd, data: r.readBytes(length) });
  }

  // -------------------------------------------------------------------------------------------
  // Rxq

  #fromBus(f: CanFrame): void {
    if (!this.#started || (f.fd ? !this.#has(VIRTIO_CAN_F_CAN_FD) : !this.#has(VIRTIO_CAN_F_CAN_CLASSIC)) || (f.rtr && !this.#has(VIRTIO_CAN_F_RTR_FRAMES))) {
      this.counters.rxDropped++;
      return;
    }
    if (this.#rxBacklog.length >= RX_BACKLOG_LIMIT) {
      this.counters.rxDropped++;
      return;
    }
    this.#rxBacklog.push(f);
    this.#deliverBacklog();
  }

  /** Writes backlogged frames into posted receive buffers. */
  #deliverBacklog(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VIRTIO_CAN_QUEUE_RX);
    if (ctx === undefined || q === undefined) return;
    let delivered = false;
    while (this.#rxBacklog.length > 0) {
      const chain = q.pop();
      if (chain === null) break;
      // Safe: the loop condition says the backlog is not empty.
      const f = this.#rxBacklog.shift()!;
      const bytes = rxMessage(f);
      if (chain.writableLength < bytes.length) {
        // A buffer smaller than the frame: the frame is lost, the buffer returned empty.
        this.counters.rxDropped++;
        q.pushUsed(chain.head, 0);
      } else {
        chain.writer().write(bytes);
        this.counters.rxFrames++;
        q.pushUsed(chain.head, bytes.length);
      }
      delivered = true;
    }
    if (delivered && q.needsNotification()) ctx.notify(VIRTIO_CAN_QUEUE_RX);
  }

  reset(): void {
    this.#link.detach();
    this.#ctx = undefined;
    this.#started = false;
    this.#status = 0;
    this.#pendingTx.length = 0;
    this.#rxBacklog.length = 0;
  }

  dispose(): void {
    this.#link.detach();
  }

  metrics(): Record<string, unknown> {
    return { device: 'can', started: this.#started, busOff: (this.#status & VIRTIO_CAN_S_CTRL_BUSOFF) !== 0, ...this.counters, pendingTx: this.#pendingTx.length, rxBacklog: this.#rxBacklog.length, link: { ...this.#link.stats } };
  }
}

/** virtio_can_rx for a frame: header then the data (a remote frame carries its length, no data). */
export function rxMessage(f: CanFrame): Uint8Array {
  const length = f.rtr ? f.rtrLength : f.data.length;
  const out = new Uint8Array(VIRTIO_CAN_HDR_SIZE + (f.rtr ? 0 : length));
  const v = new DataView(out.buffer);
  v.setUint16(HDR.msgType, VIRTIO_CAN_RX, true);
  v.setUint16(HDR.length, length, true);
  v.setUint32(HDR.flags, (f.extended ? VIRTIO_CAN_FLAGS_EXTENDED : 0) | (f.fd ? VIRTIO_CAN_FLAGS_FD : 0) | (f.rtr ? VIRTIO_CAN_FLAGS_RTR : 0), true);
  v.setUint32(HDR.canId, f.id, true);
  if (!f.rtr) out.set(f.data, VIRTIO_CAN_HDR_SIZE);
  return out;
}
