// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-gpio device (VIRTIO 1.3 §5.17): named lines whose direction and output the guest
 * sets, whose external levels the host drives (control socket, trace, script), with interrupts.
 *
 * Owns: the requestq protocol and the eventq interrupt protocol.
 * - requestq: GET_LINE_NAMES answers `status` + the names block (used length 1 + gpio_names_size,
 *   which Linux checks exactly); GET/SET_DIRECTION; GET_VALUE reads the guest's own output value
 *   on an output line and the external level otherwise; SET_VALUE records the output value (used
 *   when the line is or becomes an output, §5.17.6.5); SET_IRQ_TYPE needs VIRTIO_GPIO_F_IRQ and an
 *   input line. Any bad type, line, value or a response buffer that is too short gets
 *   VIRTIO_GPIO_STATUS_ERR. SET_DIRECTION NONE discards the line's state (§5.17.6 device
 *   requirements): output value, trigger type, latched edge, queued eventq buffer.
 * - eventq: a buffer pair per line unmasks its interrupt; the device keeps it until the interrupt
 *   fires (status VALID) or is disabled (status INVALID). Edges are latched while enabled but masked
 *   ("MUST latch an edge interrupt"); levels are not ("MUST NOT latch a level interrupt") but fire
 *   as soon as a buffer arrives while the level is active. A buffer for a line whose interrupt is
 *   not enabled, for a line that does not exist, or a second buffer for the same line, is returned
 *   INVALID at once.
 * - the host side: external levels change through `setLevel` (control socket `set`, the trace and
 *   the script, scheduled from the device's first activation), and every change is published to
 *   the control socket's clients.
 * Guest faults never throw. A reset returns the lines to their configured direction and output
 * value and drops queued buffers; external levels are the world's and stay.
 * Does not own: option parsing (lines.ts), the socket protocol (control.ts), rings.
 */
import type { DeviceContext, HostReactor, HostTimer, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import { DescriptorChain, type GuestBuffer } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask, hasFeature } from '../../spec/virtio.js';
import type { GpioControlHandler, GpioControlServer, LineInfo } from './control.js';
import { type GpioLineSpec, type LevelChange, lineIndex, namesBlock } from './lines.js';
import type { GpioMetrics } from './metrics.js';
import {
  GPIO_CFG_NAMES_SIZE,
  GPIO_CFG_NGPIO,
  GPIO_CONFIG_SIZE,
  GPIO_DEVICE_ID,
  GPIO_EVENTQ,
  GPIO_IRQ_REQUEST_SIZE,
  GPIO_IRQ_RESPONSE_SIZE,
  GPIO_IRQ_TYPES,
  GPIO_QUEUE_MAX_SIZE,
  GPIO_REQUEST_SIZE,
  GPIO_REQUESTQ,
  GPIO_RESPONSE_SIZE,
  VIRTIO_GPIO_DIRECTION_IN,
  VIRTIO_GPIO_DIRECTION_NONE,
  VIRTIO_GPIO_DIRECTION_OUT,
  VIRTIO_GPIO_F_IRQ,
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_IRQ_STATUS_VALID,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
  VIRTIO_GPIO_IRQ_TYPE_NONE,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_GET_LINE_NAMES,
  VIRTIO_GPIO_MSG_GET_VALUE,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
  VIRTIO_GPIO_STATUS_ERR,
  VIRTIO_GPIO_STATUS_OK,
  directionName,
  irqTypeName,
} from './spec.js';

export interface GpioOptions {
  readonly lines: readonly GpioLineSpec[];
  /** Offer VIRTIO_GPIO_F_IRQ (default true). */
  readonly irq?: boolean;
  /** External level changes from the trace and the script, in time order (lines.ts buildTimeline). */
  readonly timeline?: readonly LevelChange[];
  /** Builds the control socket around the device's handler (kind.ts passes the real one). */
  readonly control?: (handler: GpioControlHandler) => GpioControlServer;
}

interface Line {
  readonly spec: GpioLineSpec;
  direction: number;
  /** The value the guest set with SET_VALUE (driven while the line is an output). */
  output: 0 | 1;
  /** The external level (host, trace, script). */
  level: 0 | 1;
  irqType: number;
  /** An edge happened while the interrupt was enabled and masked. */
  latched: boolean;
  /** The eventq buffer pair that unmasks the line: its head and its device-writable part. */
  pending: { head: number; writable: readonly GuestBuffer[] } | undefined;
}

function initialDirection(spec: GpioLineSpec): number {
  return spec.direction === 'out' ? VIRTIO_GPIO_DIRECTION_OUT : VIRTIO_GPIO_DIRECTION_IN;
}

export class GpioDevice implements VirtioDevice, GpioControlHandler {
  readonly deviceId = GPIO_DEVICE_ID;
  readonly name = 'gpio';
  readonly queueMaxSizes = [GPIO_QUEUE_MAX_SIZE, GPIO_QUEUE_MAX_SIZE];
  readonly offeredFeatures: bigint;
  readonly configSize = GPIO_CONFIG_SIZE;
  readonly #lines: Line[];
  readonly #names: Uint8Array;
  readonly #timeline: readonly LevelChange[];
  readonly #control: GpioControlServer | undefined;
  #cursor = 0;
  #t0: number | undefined;
  #reactor: HostReactor | undefined;
  #timer: HostTimer | undefined;
  #ctx: DeviceContext | undefined;
  #counters = { requests: 0, errors: 0, malformed: 0, interrupts: 0, invalidated: 0, levelChanges: 0, guestChanges: 0 };

  /** @throws GpioConfigError from the control socket */
  constructor(opts: GpioOptions) {
    this.#lines = opts.lines.map((spec) => ({ spec, direction: initialDirection(spec), output: spec.direction === 'out' ? spec.level : 0, level: spec.direction === 'in' ? spec.level : 0, irqType: VIRTIO_GPIO_IRQ_TYPE_NONE, latched: false, pending: undefined }));
    this.#names = namesBlock(opts.lines);
    this.#timeline = opts.timeline ?? [];
    this.offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX) | (opts.irq === false ? 0n : featureBit(VIRTIO_GPIO_F_IRQ));
    this.#control = opts.control?.(this);
  }

  /* ---- VirtioDevice ------------------------------------------------------------------------ */

  readConfig(offset: number, length: number): Uint8Array {
    const cfg = new Uint8Array(GPIO_CONFIG_SIZE);
    const v = new DataView(cfg.buffer);
    v.setUint16(GPIO_CFG_NGPIO, this.#lines.length, true);
    v.setUint32(GPIO_CFG_NAMES_SIZE, this.#names.length, true);
    return cfg.slice(offset, offset + length);
  }

  /** The config space is read-only (§5.17.4). */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    if (this.#reactor === undefined) {
      // The host side starts with the first activation and keeps running across resets.
      this.#reactor = ctx.reactor;
      this.#t0 = ctx.reactor.now();
      this.#control?.start(ctx.reactor);
      this.#advanceTimeline();
    }
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === GPIO_REQUESTQ) serveQueue(ctx, index, (chain) => this.#request(chain));
    else if (index === GPIO_EVENTQ) this.#takeEventBuffers(ctx);
  }

  reset(): void {
    this.#ctx = undefined;
    for (const l of this.#lines) {
      l.direction = initialDirection(l.spec);
      l.output = l.spec.direction === 'out' ? l.spec.level : 0;
      l.irqType = VIRTIO_GPIO_IRQ_TYPE_NONE;
      l.latched = false;
      l.pending = undefined;
    }
  }

  dispose(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#control?.close();
  }

  metrics(): GpioMetrics {
    const q = this.#ctx?.queue(GPIO_REQUESTQ);
    const e = this.#ctx?.queue(GPIO_EVENTQ);
    return {
      device: 'gpio',
      ...this.#counters,
      controlClients: this.#control?.clientCount ?? 0,
      rejectedChains: (q?.stats.chainsRejected ?? 0) + (e?.stats.chainsRejected ?? 0),
      notifications: (q?.stats.notificationsSent ?? 0) + (e?.stats.notificationsSent ?? 0),
      lines: Object.fromEntries(this.lines().map((l) => [l.name === '' ? String(l.line) : l.name, { direction: l.direction, value: l.value, level: l.level }])),
    };
  }

  /* ---- GpioControlHandler (the control socket) --------------------------------------------- */

  lines(): LineInfo[] {
    return this.#lines.map((_, i) => this.#info(i));
  }

  line(ref: string): LineInfo | string {
    const i = lineIndex(this.#lines.map((l) => l.spec), ref);
    return i === undefined ? `no line '${ref}'` : this.#info(i);
  }

  setLevel(ref: string, value: 0 | 1): LineInfo | string {
    const i = lineIndex(this.#lines.map((l) => l.spec), ref);
    if (i === undefined) return `no line '${ref}'`;
    this.driveLevel(i, value, 'host');
    return this.#info(i);
  }

  /** Sets line `index`'s external level, as the world outside does; interrupts follow. */
  driveLevel(index: number, value: 0 | 1, by: 'host' | 'trace' | 'script'): void {
    const l = this.#lines[index];
    if (l === undefined || l.level === value) return;
    const rising = value === 1;
    l.level = value;
    this.#counters.levelChanges++;
    this.#event({ event: 'level', line: index, name: l.spec.name, value, by });
    if (l.direction === VIRTIO_GPIO_DIRECTION_OUT || l.irqType === VIRTIO_GPIO_IRQ_TYPE_NONE) return;
    const edge =
      l.irqType === VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH ||
      (l.irqType === VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING && rising) ||
      (l.irqType === VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING && !rising);
    if (edge) {
      if (l.pending !== undefined) this.#complete(index, VIRTIO_GPIO_IRQ_STATUS_VALID);
      else l.latched = true;
    } else if (this.#levelActive(l) && l.pending !== undefined) this.#complete(index, VIRTIO_GPIO_IRQ_STATUS_VALID);
  }

  #info(i: number): LineInfo {
    // Safe: callers pass indexes of existing lines.
    const l = this.#lines[i]!;
    return { line: i, name: l.spec.name, direction: directionName(l.direction), value: this.#value(l), level: l.level, irq: irqTypeName(l.irqType) };
  }

  #value(l: Line): 0 | 1 {
    return l.direction === VIRTIO_GPIO_DIRECTION_OUT ? l.output : l.level;
  }

  #levelActive(l: Line): boolean {
    return (l.irqType === VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH && l.level === 1) || (l.irqType === VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW && l.level === 0);
  }

  #event(e: Record<string, unknown>): void {
    this.#control?.broadcast(e);
    this.#ctx?.log.debug(`gpio: ${JSON.stringify(e)}`);
  }

  /* ---- the trace and the script ------------------------------------------------------------ */

  /** Applies every change that is due and sets a timer for the next one. */
  #advanceTimeline(): void {
    const reactor = this.#reactor;
    const t0 = this.#t0;
    if (reactor === undefined || t0 === undefined) return;
    const elapsed = reactor.now() - t0;
    for (; this.#cursor < this.#timeline.length; this.#cursor++) {
      // Safe: the loop bound keeps the cursor inside the timeline.
      const c = this.#timeline[this.#cursor]!;
      if (c.time * 1000 > elapsed) break;
      this.driveLevel(c.line, c.value, c.source);
    }
    const next = this.#timeline[this.#cursor];
    this.#timer = next === undefined ? undefined : reactor.setTimer(Math.max(0, next.time * 1000 - elapsed), () => this.#advanceTimeline());
  }

  /* ---- requestq ---------------------------------------------------------------------------- */

  #request(chain: DescriptorChain): number {
    this.#counters.requests++;
    if (chain.readableLength < GPIO_REQUEST_SIZE || chain.writableLength < 1) {
      this.#counters.malformed++;
      this.#ctx?.log.warn(`gpio: a request of ${chain.readableLength} readable and ${chain.writableLength} writable bytes (expected ${GPIO_REQUEST_SIZE} and ${GPIO_RESPONSE_SIZE})`);
      return 0;
    }
    const req = new DataView(chain.reader().readBytes(GPIO_REQUEST_SIZE).buffer);
    const type = req.getUint16(0, true);
    const gpio = req.getUint16(2, true);
    const value = req.getUint32(4, true);
    const w = chain.writer();
    if (type === VIRTIO_GPIO_MSG_GET_LINE_NAMES) {
      const size = 1 + this.#names.length;
      if (this.#names.length > 0 && gpio === 0 && value === 0 && chain.writableLength >= size) {
        w.writeU8(VIRTIO_GPIO_STATUS_OK);
        w.write(this.#names);
        return size;
      }
      return this.#respond(w, undefined);
    }
    const l = this.#lines[gpio];
    if (l === undefined) return this.#respond(w, undefined);
    return this.#respond(w, this.#lineRequest(gpio, l, type, value));
  }

  /** The response value of a request on an existing line, or undefined for ERR. */
  #lineRequest(gpio: number, l: Line, type: number, value: number): number | undefined {
    switch (type) {
      case VIRTIO_GPIO_MSG_GET_DIRECTION:
        return l.direction;
      case VIRTIO_GPIO_MSG_SET_DIRECTION:
        return this.#setDirection(gpio, l, value) ? 0 : undefined;
      case VIRTIO_GPIO_MSG_GET_VALUE:
        return this.#value(l);
      case VIRTIO_GPIO_MSG_SET_VALUE: {
        if (value > 1) return undefined;
        const before = this.#value(l);
        l.output = value === 1 ? 1 : 0;
        if (l.direction === VIRTIO_GPIO_DIRECTION_OUT && before !== l.output) this.#guestChange({ event: 'output', line: gpio, name: l.spec.name, value: l.output });
        return 0;
      }
      case VIRTIO_GPIO_MSG_SET_IRQ_TYPE:
        return this.#setIrqType(gpio, l, value) ? 0 : undefined;
      default:
        return undefined;
    }
  }

  #setDirection(gpio: number, l: Line, d: number): boolean {
    if (d !== VIRTIO_GPIO_DIRECTION_NONE && d !== VIRTIO_GPIO_DIRECTION_OUT && d !== VIRTIO_GPIO_DIRECTION_IN) return false;
    const before = { direction: l.direction, value: this.#value(l) };
    if (d === VIRTIO_GPIO_DIRECTION_NONE) {
      // "The device MUST discard all state information corresponding to a GPIO line, once the
      // driver has requested to set its direction to VIRTIO_GPIO_DIRECTION_NONE."
      l.output = 0;
      this.#disableIrq(gpio, l);
    } else if (d === VIRTIO_GPIO_DIRECTION_OUT) this.#disableIrq(gpio, l);
    l.direction = d;
    if (before.direction !== d) this.#guestChange({ event: 'direction', line: gpio, name: l.spec.name, direction: directionName(d) });
    if (d === VIRTIO_GPIO_DIRECTION_OUT && (before.direction !== d || before.value !== l.output)) this.#guestChange({ event: 'output', line: gpio, name: l.spec.name, value: l.output });
    return true;
  }

  #setIrqType(gpio: number, l: Line, t: number): boolean {
    // "This request is allowed only if the VIRTIO_GPIO_F_IRQ feature has been negotiated."
    if (this.#ctx === undefined || !hasFeature(this.#ctx.features, VIRTIO_GPIO_F_IRQ)) return false;
    if (t === VIRTIO_GPIO_IRQ_TYPE_NONE) {
      this.#disableIrq(gpio, l);
      this.#event({ event: 'irq-type', line: gpio, name: l.spec.name, type: irqTypeName(t) });
      return true;
    }
    // "The driver MUST NOT send IRQ messages for a GPIO line configured for output."
    if (!GPIO_IRQ_TYPES.has(t) || l.direction === VIRTIO_GPIO_DIRECTION_OUT) return false;
    l.irqType = t;
    // Edges are latched "from this point onward".
    l.latched = false;
    this.#event({ event: 'irq-type', line: gpio, name: l.spec.name, type: irqTypeName(t) });
    if (this.#levelActive(l) && l.pending !== undefined) this.#complete(gpio, VIRTIO_GPIO_IRQ_STATUS_VALID);
    return true;
  }

  /** Interrupt disabled: the latched edge is discarded and a queued buffer returned INVALID. */
  #disableIrq(gpio: number, l: Line): void {
    l.irqType = VIRTIO_GPIO_IRQ_TYPE_NONE;
    l.latched = false;
    if (l.pending !== undefined) this.#complete(gpio, VIRTIO_GPIO_IRQ_STATUS_INVALID);
  }

  #guestChange(e: Record<string, unknown>): void {
    this.#counters.guestChanges++;
    this.#event(e);
  }

  /** Writes `status, value` (or ERR) into what fits; returns the used length. */
  #respond(w: ReturnType<DescriptorChain['writer']>, value: number | undefined): number {
    if (value === undefined || w.remaining < GPIO_RESPONSE_SIZE) {
      this.#counters.errors++;
      w.writeU8(VIRTIO_GPIO_STATUS_ERR);
      if (w.remaining > 0) w.writeU8(0);
      return w.consumed;
    }
    w.writeU8(VIRTIO_GPIO_STATUS_OK);
    w.writeU8(value);
    return GPIO_RESPONSE_SIZE;
  }

  /* ---- eventq ------------------------------------------------------------------------------ */

  /** Takes every new eventq buffer pair: keeps it for its line, or returns it at once. */
  #takeEventBuffers(ctx: DeviceContext): void {
    const q = ctx.queue(GPIO_EVENTQ);
    if (q === undefined) return;
    do {
      q.disableNotifications();
      for (let chain = q.pop(); chain !== null; chain = q.pop()) this.#eventBuffer(chain);
    } while (q.enableNotifications());
    if (q.needsNotification()) ctx.notify(GPIO_EVENTQ);
  }

  #eventBuffer(chain: DescriptorChain): void {
    // Safe: only called while popping from a live eventq.
    const q = this.#ctx!.queue(GPIO_EVENTQ)!;
    if (chain.readableLength < GPIO_IRQ_REQUEST_SIZE || chain.writableLength < GPIO_IRQ_RESPONSE_SIZE) {
      this.#counters.malformed++;
      q.pushUsed(chain.head, 0);
      return;
    }
    const gpio = new DataView(chain.reader().readBytes(GPIO_IRQ_REQUEST_SIZE).buffer).getUint16(0, true);
    const l = this.#lines[gpio];
    // Not a line, a second pair for the same line ("MUST NOT add multiple pairs"), or an interrupt
    // unmasked without being enabled: returned at once, INVALID.
    if (l === undefined || l.pending !== undefined || l.irqType === VIRTIO_GPIO_IRQ_TYPE_NONE) {
      chain.writer().writeU8(VIRTIO_GPIO_IRQ_STATUS_INVALID);
      this.#counters.invalidated++;
      q.pushUsed(chain.head, GPIO_IRQ_RESPONSE_SIZE);
      return;
    }
    l.pending = { head: chain.head, writable: chain.writable };
    if (l.latched || this.#levelActive(l)) {
      l.latched = false;
      this.#complete(gpio, VIRTIO_GPIO_IRQ_STATUS_VALID, false);
    }
  }

  /**
   * Returns line `gpio`'s queued buffer with `status`. The buffer is written through the memory of
   * now (a memory-table change may have replaced the one it was popped with). `notify` false when
   * the caller notifies once for a batch.
   */
  #complete(gpio: number, status: number, notify = true): void {
    const l = this.#lines[gpio];
    const p = l?.pending;
    const ctx = this.#ctx;
    if (l === undefined || p === undefined) return;
    l.pending = undefined;
    const q = ctx?.queue(GPIO_EVENTQ);
    if (ctx === undefined || q === undefined) return;
    try {
      new DescriptorChain(ctx.memory, p.head, [], p.writable).writer().writeU8(status);
    } catch (e: unknown) {
      // The buffer's memory is gone (a memory-table change under a held buffer): return it empty.
      this.#counters.malformed++;
      ctx.log.warn(`gpio: line ${gpio}: the held eventq buffer is no longer in guest memory: ${(e as Error).message}`);
      q.pushUsed(p.head, 0);
      if (notify && q.needsNotification()) ctx.notify(GPIO_EVENTQ);
      return;
    }
    q.pushUsed(p.head, GPIO_IRQ_RESPONSE_SIZE);
    if (status === VIRTIO_GPIO_IRQ_STATUS_VALID) {
      this.#counters.interrupts++;
      this.#event({ event: 'interrupt', line: gpio, name: l.spec.name });
    } else this.#counters.invalidated++;
    if (notify && q.needsNotification()) ctx.notify(GPIO_EVENTQ);
  }
}
