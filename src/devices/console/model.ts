// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-console device (VIRTIO 1.3 §5.3) with MULTIPORT, SIZE and EMERG_WRITE: named ports,
 * port 0 the console, each bound to a host endpoint (host.ts).
 *
 * Owns: the config space (80×25, max_nr_ports, emerg_wr accepted at any time, even before the
 * device is configured: §5.3.5.1 "The device MUST accept a write to emerg_wr"), the control
 * protocol as Linux's virtio_console drives it (DEVICE_READY → PORT_ADD per port; PORT_READY →
 * CONSOLE_PORT for port 0, PORT_NAME, PORT_OPEN when the host end is connected; the driver's
 * PORT_OPEN recorded), port transmit queues (bytes to the host) and receive queues (host bytes
 * into posted buffers, capped backlog).
 * Hostile: control messages shorter than 8 bytes, ids that are no port and unknown events are
 * counted and ignored; messages to the driver that do not fit its buffer are dropped and counted;
 * a port never ADDed twice; the host backlog per port is capped.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import type { Virtqueue as DeviceQueue } from '../../queue/virtqueue.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask, hasFeature } from '../../spec/virtio.js';
import { ConsoleConfigError } from './errors.js';
import { DiscardPortHost, type PortHost } from './host.js';
import type { ConsoleMetrics } from './metrics.js';
import {
  CONSOLE_CONTROL_RX,
  CONSOLE_CONTROL_TX,
  CONSOLE_DEVICE_ID,
  CONSOLE_MAX_PORTS,
  CONSOLE_QUEUE_MAX_SIZE,
  VIRTIO_CONSOLE_CONFIG_SIZE,
  VIRTIO_CONSOLE_CONSOLE_PORT,
  VIRTIO_CONSOLE_CONTROL_SIZE,
  VIRTIO_CONSOLE_DEVICE_ADD,
  VIRTIO_CONSOLE_DEVICE_READY,
  VIRTIO_CONSOLE_EMERG_WR_OFFSET,
  VIRTIO_CONSOLE_F_EMERG_WRITE,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_PORT_NAME,
  VIRTIO_CONSOLE_PORT_OPEN,
  VIRTIO_CONSOLE_PORT_READY,
  portRxQueue,
  queuePort,
} from './spec.js';

export interface ConsolePort {
  readonly name: string;
  readonly host: PortHost;
}

export interface ConsoleOptions {
  /** Port 0 is the console (hvc0); default one unnamed discarding console port. */
  ports?: readonly ConsolePort[];
  /** Receives bytes written to emerg_wr (default: port 0's host). */
  emergency?: (byte: number) => void;
  cols?: number;
  rows?: number;
}

/** Host bytes kept per port while the guest posts no receive buffer. */
export const MAX_RX_BACKLOG = 1 << 20;
/** Control messages kept while the driver posts no control buffer (each port owes at most 4). */
export const MAX_CONTROL_BACKLOG = 4 * CONSOLE_MAX_PORTS + 16;

interface PortState {
  readonly name: string;
  readonly host: PortHost;
  added: boolean;
  guestOpen: boolean;
  rx: Uint8Array[];
  rxQueued: number;
  txBytes: number;
  rxBytes: number;
  rxDropped: number;
}

/** A control message `{ id, event, value }` plus its payload (PORT_NAME's name). */
function controlMsg(id: number, event: number, value: number, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE + extra.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, id, true);
  v.setUint16(4, event, true);
  v.setUint16(6, value, true);
  b.set(extra, VIRTIO_CONSOLE_CONTROL_SIZE);
  return b;
}

/**
 * The next available chain; when there is none, re-arms notifications (EVENT_IDX avail_event) so
 * the driver kicks for its next buffer, and takes a buffer that raced in meanwhile (§2.7.10).
 */
function popOrArm(q: DeviceQueue): DescriptorChain | null {
  const c = q.pop();
  if (c !== null) return c;
  return q.enableNotifications() ? q.pop() : null;
}

export class ConsoleDevice implements VirtioDevice {
  readonly deviceId = CONSOLE_DEVICE_ID;
  readonly name = 'console';
  readonly queueMaxSizes: readonly number[];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_CONSOLE_F_SIZE, VIRTIO_CONSOLE_F_MULTIPORT, VIRTIO_CONSOLE_F_EMERG_WRITE);
  readonly configSize = VIRTIO_CONSOLE_CONFIG_SIZE;
  readonly #ports: PortState[];
  readonly #emergency: (byte: number) => void;
  readonly #cols: number;
  readonly #rows: number;
  #ctx: DeviceContext | undefined;
  #multiport = false;
  #outbox: Uint8Array[] = [];
  #control = { in: 0, out: 0, bad: 0, dropped: 0 };
  #emergencyBytes = 0;

  /** @throws ConsoleConfigError CONSOLE_BAD_OPTION */
  constructor(opts: ConsoleOptions = {}) {
    const ports = opts.ports ?? [{ name: '', host: new DiscardPortHost() }];
    if (ports.length < 1 || ports.length > CONSOLE_MAX_PORTS) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', `a console has 1 to ${CONSOLE_MAX_PORTS} ports, got ${ports.length}`);
    this.#ports = ports.map((p) => ({ name: p.name, host: p.host, added: false, guestOpen: false, rx: [], rxQueued: 0, txBytes: 0, rxBytes: 0, rxDropped: 0 }));
    this.#ports.forEach((p, i) => p.host.attach((b) => this.#hostData(i, b), (c) => this.#hostConnected(i, c)));
    this.queueMaxSizes = new Array<number>(2 * (ports.length + 1)).fill(CONSOLE_QUEUE_MAX_SIZE);
    // Safe: ports has at least one entry (checked above).
    this.#emergency = opts.emergency ?? ((byte) => this.#ports[0]!.host.write(Uint8Array.of(byte)));
    this.#cols = opts.cols ?? 80;
    this.#rows = opts.rows ?? 25;
  }

  readConfig(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(VIRTIO_CONSOLE_CONFIG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint16(0, this.#cols, true);
    v.setUint16(2, this.#rows, true);
    v.setUint32(4, this.#ports.length, true);
    return b.slice(offset, offset + length);
  }

  /** Only emerg_wr is writable; its low byte is output at once, configured or not. */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset !== VIRTIO_CONSOLE_EMERG_WR_OFFSET || data.length === 0) return;
    this.#emergencyBytes++;
    // Safe: data.length >= 1.
    this.#emergency(data[0]!);
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#multiport = hasFeature(ctx.features, VIRTIO_CONSOLE_F_MULTIPORT);
    for (const p of this.#ports) p.host.start?.(ctx.reactor);
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (!this.#multiport && index > 1) return;
    if (index === CONSOLE_CONTROL_TX) serveQueue(ctx, index, (c) => this.#controlIn(c));
    else if (index === CONSOLE_CONTROL_RX) this.#flushControl();
    else {
      const qp = queuePort(index);
      if (qp === undefined || this.#ports[qp.port] === undefined) return;
      if (qp.tx) serveQueue(ctx, index, (c) => this.#tx(qp.port, c));
      else this.#flushRx(qp.port);
    }
  }

  #tx(port: number, chain: DescriptorChain): number {
    // Safe: queueNotify checked the port exists.
    const p = this.#ports[port]!;
    const bytes = chain.reader().readBytes(Math.min(chain.readableLength, 1 << 20));
    p.txBytes += bytes.length;
    p.host.write(bytes);
    return 0;
  }

  /** One control message from the driver. */
  #controlIn(chain: DescriptorChain): number {
    if (chain.readableLength < VIRTIO_CONSOLE_CONTROL_SIZE) {
      this.#control.bad++;
      return 0;
    }
    const v = new DataView(chain.reader().readBytes(VIRTIO_CONSOLE_CONTROL_SIZE).buffer);
    const [id, event, value] = [v.getUint32(0, true), v.getUint16(4, true), v.getUint16(6, true)];
    this.#control.in++;
    if (event === VIRTIO_CONSOLE_DEVICE_READY) {
      // §5.3.6.2: the driver is ready; the device adds its ports (never one twice).
      if (value === 1)
        this.#ports.forEach((p, i) => {
          if (p.added) return;
          p.added = true;
          this.#send(controlMsg(i, VIRTIO_CONSOLE_DEVICE_ADD, 0));
        });
      return 0;
    }
    const p = this.#ports[id];
    if (p === undefined || !p.added) {
      this.#control.bad++;
      return 0;
    }
    if (event === VIRTIO_CONSOLE_PORT_READY && value === 1) {
      if (id === 0) this.#send(controlMsg(0, VIRTIO_CONSOLE_CONSOLE_PORT, 1));
      if (p.name !== '') this.#send(controlMsg(id, VIRTIO_CONSOLE_PORT_NAME, 1, new TextEncoder().encode(p.name)));
      if (p.host.connected) this.#send(controlMsg(id, VIRTIO_CONSOLE_PORT_OPEN, 1));
    } else if (event === VIRTIO_CONSOLE_PORT_OPEN) {
      p.guestOpen = value === 1;
      if (p.guestOpen) this.#flushRx(id);
    } else if (event !== VIRTIO_CONSOLE_PORT_READY) this.#control.bad++;
    return 0;
  }

  #send(msg: Uint8Array): void {
    if (this.#outbox.length >= MAX_CONTROL_BACKLOG) {
      this.#control.dropped++;
      return;
    }
    this.#outbox.push(msg);
    this.#flushControl();
  }

  /** Moves queued control messages into the driver's buffers, one per buffer. */
  #flushControl(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(CONSOLE_CONTROL_RX);
    if (ctx === undefined || q === undefined) return;
    while (this.#outbox.length > 0) {
      const chain = popOrArm(q);
      if (chain === null) break;
      // Safe: the loop runs while the outbox is not empty.
      const msg = this.#outbox.shift()!;
      if (chain.writableLength < msg.length) {
        this.#control.dropped++;
        q.pushUsed(chain.head, 0);
        continue;
      }
      chain.writer().write(msg);
      q.pushUsed(chain.head, msg.length);
      this.#control.out++;
    }
    if (q.needsNotification()) ctx.notify(CONSOLE_CONTROL_RX);
  }

  #hostData(port: number, bytes: Uint8Array): void {
    // Safe: called by the host of an existing port.
    const p = this.#ports[port]!;
    if (p.rxQueued + bytes.length > MAX_RX_BACKLOG) {
      p.rxDropped += bytes.length;
      return;
    }
    p.rx.push(bytes.slice());
    p.rxQueued += bytes.length;
    this.#flushRx(port);
  }

  #hostConnected(port: number, connected: boolean): void {
    if (this.#ports[port]?.added === true) this.#send(controlMsg(port, VIRTIO_CONSOLE_PORT_OPEN, connected ? 1 : 0));
  }

  /** Moves host bytes into the port's posted receive buffers. */
  #flushRx(port: number): void {
    const ctx = this.#ctx;
    const p = this.#ports[port];
    const index = portRxQueue(port);
    const q = ctx?.queue(index);
    if (ctx === undefined || p === undefined || q === undefined) return;
    while (p.rx.length > 0) {
      const chain = popOrArm(q);
      if (chain === null) break;
      const w = chain.writer();
      while (p.rx.length > 0 && w.remaining > 0) {
        // Safe: the loop runs while rx is not empty.
        const head = p.rx[0]!;
        const n = Math.min(head.length, w.remaining);
        w.write(head.subarray(0, n));
        if (n === head.length) p.rx.shift();
        else p.rx[0] = head.subarray(n);
        p.rxQueued -= n;
        p.rxBytes += n;
      }
      q.pushUsed(chain.head, w.consumed);
    }
    if (q.needsNotification()) ctx.notify(index);
  }

  reset(): void {
    this.#ctx = undefined;
    this.#outbox = [];
    for (const p of this.#ports) {
      p.added = false;
      p.guestOpen = false;
      p.host.stop?.();
    }
  }

  dispose(): void {
    for (const p of this.#ports) p.host.close();
  }

  metrics(): ConsoleMetrics {
    return {
      device: 'console',
      ports: this.#ports.map((p, id) => ({ id, name: p.name, guestOpen: p.guestOpen, txBytes: p.txBytes, rxBytes: p.rxBytes, rxDropped: p.rxDropped })),
      control: { ...this.#control },
      emergencyBytes: this.#emergencyBytes,
    };
  }
}
