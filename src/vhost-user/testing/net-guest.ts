// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: a minimal virtio-net guest on a vhost-user socket (an `avp switch` port or any
 * net back-end): it negotiates VERSION_1 | PROTOCOL_FEATURES | MRG_RXBUF (and EVENT_IDX when
 * asked), maps 1 MiB of guest memory, sets up both rings with acked messages (so they are live in
 * the back-end before the constructor returns), and posts one 2 KiB receive buffer per slot.
 * Used by the switch tests of cli/ and vhost-user/, which had each written it.
 * Owns: test behaviour only.
 */
import { DriverQueue, type UsedBuffer } from '../../queue/split-driver.js';
import { availRingSize, descTableSize, usedRingSize } from '../../spec/split-ring.js';
import { eventfdWrite } from '../../sys/index.js';
import { VhostUserFrontend, type FrontendMemory, type VringFds } from '../frontend.js';

const MEM = 1 << 20;
const Q = 16;
const RX_BUFFERS = 0x40000;
const TX_BUFFER = 0x80000;
/** virtio_net_hdr_v1 with MRG_RXBUF: 12 bytes, sent as zeros. */
const NET_HDR = 12;

export interface NetTestGuestOptions {
  /** Negotiate VIRTIO_F_EVENT_IDX (default false). */
  readonly eventIdx?: boolean;
  /** Replaces the receive ring's call eventfd after setup. */
  readonly rxCall?: number;
  /** How long a front-end request may wait for its reply (default the front-end's). */
  readonly replyTimeoutMs?: number;
}

export class NetTestGuest {
  readonly fe: VhostUserFrontend;
  readonly mem: FrontendMemory;
  readonly rx: DriverQueue<number>;
  readonly tx: DriverQueue<number>;
  readonly rxFds: VringFds;
  readonly txFds: VringFds;

  constructor(socket: string, opts: NetTestGuestOptions = {}) {
    const eventIdx = opts.eventIdx ?? false;
    this.fe = VhostUserFrontend.connect(socket, opts.replyTimeoutMs === undefined ? {} : { replyTimeoutMs: opts.replyTimeoutMs });
    this.fe.getU64('GET_FEATURES');
    this.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: 0x8009n, fds: [] });
    this.fe.request({ type: 'SET_OWNER', body: null, fds: [] });
    // VERSION_1 | PROTOCOL_FEATURES | [EVENT_IDX] | MRG_RXBUF
    this.fe.request({ type: 'SET_FEATURES', body: (1n << 32n) | (1n << 30n) | (eventIdx ? 1n << 29n : 0n) | (1n << 15n), fds: [] });
    this.mem = this.fe.createMemory(MEM, { addMemReg: true });
    const rings = (base: number) => ({ desc: base, avail: base + descTableSize(Q), used: base + 0x1000 });
    if (availRingSize(Q) + descTableSize(Q) >= 0x1000 || usedRingSize(Q) >= 0x1000) throw new Error('ring layout overlaps');
    this.rx = new DriverQueue<number>({ memory: this.mem.memory, size: Q, addrs: rings(0x10000), eventIdx });
    this.tx = new DriverQueue<number>({ memory: this.mem.memory, size: Q, addrs: rings(0x20000), eventIdx });
    this.rxFds = this.fe.setupVring(0, Q, rings(0x10000), this.mem, { ack: true });
    this.txFds = this.fe.setupVring(1, Q, rings(0x20000), this.mem, { ack: true });
    if (opts.rxCall !== undefined) this.fe.requestAcked({ type: 'SET_VRING_CALL', body: { index: 0, noFd: false }, fds: [opts.rxCall] });
    // The token of a receive buffer is its guest address (receive() reads the frame there).
    for (let i = 0; i < Q; i++) this.rx.add([{ addr: RX_BUFFERS + i * 2048, len: 2048, writable: true }], RX_BUFFERS + i * 2048);
    eventfdWrite(this.rxFds.kick);
  }

  /**
   * Transmits `frame` behind a zero header and waits up to `timeoutMs` for the back-end's call.
   * @returns the used element, or null when the call or the used element did not come.
   */
  transmit(frame: Uint8Array, timeoutMs: number): UsedBuffer<number> | null {
    this.mem.memory.write(TX_BUFFER, new Uint8Array(NET_HDR));
    this.mem.memory.write(TX_BUFFER + NET_HDR, frame);
    this.tx.add([{ addr: TX_BUFFER, len: NET_HDR + frame.length }], 0);
    eventfdWrite(this.txFds.kick);
    if (!this.fe.waitCall(this.txFds.call, timeoutMs)) return null;
    return this.tx.popUsed();
  }
}
