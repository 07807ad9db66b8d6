// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures for the virtio-net switch: a switch whose ports are each driven by an in-process
 * harness (one guest driver per port, all on one ManualReactor clock), Ethernet frame builders
 * written independently of the device code, the driver's side of transmitting and receiving
 * (header in front of the frame; `num_buffers` collection on receive), and a fake uplink.
 * Exported through `avp/testing`, not the main entry.
 */
import { DeviceHarness } from '../../device/harness.js';
import { ManualReactor } from '../../device/manual-reactor.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import type { NetUplink } from './host.js';
import type { NetPort } from './model.js';
import { NetSwitch, type NetPortConfig, type NetSwitchOptions } from './switch.js';

/** `aa:bb:..` → 6 bytes (test input is trusted). */
export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** An Ethernet frame: dst, src, EtherType 0x88b5 (IEEE local experimental), then `payload` bytes (pattern or given). */
export function frame(dst: string, src: string, payload: number | Uint8Array, etherType = 0x88b5): Uint8Array {
  const body = typeof payload === 'number' ? Uint8Array.from({ length: payload }, (_, i) => (i * 7 + 3) & 0xff) : payload;
  const f = new Uint8Array(14 + body.length);
  f.set(mac(dst), 0);
  f.set(mac(src), 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f.set(body, 14);
  return f;
}

/** A 12-byte virtio_net_hdr, built by hand: flags, gso_type, then zeros, num_buffers. */
export function netHdr(fields: { flags?: number; gsoType?: number; numBuffers?: number } = {}): Uint8Array {
  const h = new Uint8Array(12);
  h[0] = fields.flags ?? 0;
  h[1] = fields.gsoType ?? 0;
  h[10] = (fields.numBuffers ?? 0) & 0xff;
  h[11] = (fields.numBuffers ?? 0) >> 8;
  return h;
}

/** A frame as the receiving driver saw it. */
export interface Received {
  /** `num_buffers` from the header. */
  numBuffers: number;
  /** Used length of each chain, in order. */
  lens: number[];
  /** The 12-byte header. */
  hdr: Uint8Array;
  /** The frame (header stripped). */
  frame: Uint8Array;
}

/** One port's guest driver. */
export class PortDriver {
  readonly h: DeviceHarness<NetPort>;
  readonly #rxAddr = new Map<number, { addr: number; len: number }>();

  constructor(h: DeviceHarness<NetPort>) {
    this.h = h;
  }

  get port(): NetPort {
    return this.h.device;
  }

  /** Queues a frame (header + frame in one buffer, or `split` buffers) on the transmit queue; returns the head. */
  send(f: Uint8Array, opts: { hdr?: Uint8Array; split?: number[] } = {}): number {
    const bytes = new Uint8Array(12 + f.length);
    bytes.set(opts.hdr ?? netHdr(), 0);
    bytes.set(f, 12);
    return this.sendRaw(bytes, opts.split);
  }

  /** Queues raw bytes as a transmit chain, cut into pieces of the given sizes (the rest last). */
  sendRaw(bytes: Uint8Array, split: number[] = []): number {
    const bufs: DriverBuffer[] = [];
    let off = 0;
    for (const n of [...split, bytes.length]) {
      const take = Math.min(n, bytes.length - off);
      if (take <= 0 && bufs.length > 0) break;
      const addr = this.h.alloc.alloc(Math.max(1, take));
      this.h.memory.write(addr, bytes.subarray(off, off + take));
      bufs.push({ addr, len: take });
      off += take;
    }
    return this.h.submit(1, bufs);
  }

  /** Offers `n` receive buffers of `size` bytes each. */
  addRx(n: number, size = 2048): void {
    for (let i = 0; i < n; i++) {
      const addr = this.h.alloc.alloc(size);
      const head = this.h.submit(0, [{ addr, len: size, writable: true }]);
      this.#rxAddr.set(head, { addr, len: size });
    }
  }

  /** Transmit chains the device returned: their used lengths. */
  txCompleted(): number[] {
    const out: number[] = [];
    for (let u = this.h.queue(1).popUsed(); u !== null; u = this.h.queue(1).popUsed()) out.push(u.len);
    return out;
  }

  /** Collects every received frame, joining `num_buffers` chains as a mergeable-buffer driver does. */
  received(): Received[] {
    const q = this.h.queue(0);
    const out: Received[] = [];
    for (let u = q.popUsed(); u !== null; u = q.popUsed()) {
      const first = this.#take(u.head, u.len);
      const hdr = first.subarray(0, 12);
      const numBuffers = hdr[10]! | (hdr[11]! << 8);
      const parts = [first];
      const lens = [u.len];
      for (let i = 1; i < numBuffers; i++) {
        const next = q.popUsed();
        if (next === null) throw new Error(`num_buffers ${numBuffers} but only ${i} chains were used`);
        parts.push(this.#take(next.head, next.len));
        lens.push(next.len);
      }
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        all.set(p, off);
        off += p.length;
      }
      out.push({ numBuffers, lens, hdr: all.slice(0, 12), frame: all.slice(12) });
    }
    return out;
  }

  #take(head: number, len: number): Uint8Array {
    const b = this.#rxAddr.get(head);
    if (b === undefined) throw new Error(`used head ${head} is not a receive buffer of this driver`);
    this.#rxAddr.delete(head);
    return this.h.memory.read(b.addr, Math.min(len, b.len));
  }
}

/** A switch with `ports` harness-driven ports on one clock. */
export class SwitchBed {
  readonly reactor = new ManualReactor();
  readonly sw: NetSwitch;
  readonly drivers: PortDriver[];

  constructor(ports: NetPortConfig[], opts: NetSwitchOptions = {}, harness: { features?: bigint; queueSize?: number } = {}) {
    this.sw = new NetSwitch(opts);
    const devices = ports.map((p) => this.sw.addPort(p));
    this.drivers = devices.map((d) => new PortDriver(new DeviceHarness(d, { reactor: this.reactor, memorySize: 8 << 20, ...harness })));
  }

  d(i: number): PortDriver {
    const d = this.drivers[i];
    if (d === undefined) throw new RangeError(`no port ${i}`);
    return d;
  }

  /** Port `i`'s metrics. */
  m(i: number): ReturnType<NetPort['metrics']> {
    return this.d(i).port.metrics();
  }
}

/**
 * An uplink for tests: frames the test queues in `inbox` are read by the switch (after the test
 * fires `fd` on the ManualReactor); frames the switch writes land in `sent`. `full` makes writes
 * fail, as a TAP whose queue is full.
 */
export class FakeUplink implements NetUplink {
  readonly name: string;
  readonly fd: number;
  readonly inbox: Uint8Array[] = [];
  readonly sent: Uint8Array[] = [];
  full = false;
  closed = false;

  constructor(name = 'fake0', fd = 1000) {
    this.name = name;
    this.fd = fd;
  }

  read(buf: Uint8Array): number {
    const f = this.inbox.shift();
    if (f === undefined) return 0;
    const n = Math.min(f.length, buf.length);
    buf.set(f.subarray(0, n));
    return n;
  }

  write(frame: Uint8Array): boolean {
    if (this.full) return false;
    this.sent.push(frame.slice());
    return true;
  }

  close(): void {
    this.closed = true;
  }
}
