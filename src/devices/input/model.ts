// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-input device (VIRTIO 1.3 §5.8) as QEMU 10's vhost-user-input-pci and Linux's
 * virtio_input driver use it: a keyboard, tablet, touch screen, multitouch screen or set of
 * buttons (profiles.ts), driven from the host by input steps (steps.ts) that arrive on a control
 * socket or from a script.
 *
 * Owns: the config space's select/subsel state machine (the driver writes select and subsel, then
 * reads size and u; QEMU sends its whole 136-byte copy with every write, so bytes 0 and 1 of any
 * write that covers them are taken), the event queue (buffers are held until there are events;
 * events are queued whole frames at a time and dropped whole frames at a time past the cap, as
 * §5.8.6.2 advises: "the device SHOULD ... buffer or drop ... whole sequences up to EV_SYN"), the
 * status queue (LED and sound events from the driver, recorded), the script (it starts when the
 * driver has posted its first event buffers after activation, and again after each reset), and
 * the control socket requests.
 * Hostile input: an event buffer shorter than an event is returned with used length 0 and
 * counted; so is a status buffer shorter than an event; status events are counted, never trusted.
 * Does not own: what each profile reports (profiles.ts), step parsing (steps.ts), OS calls.
 */
import type { DeviceContext, DeviceLog, HostReactor, HostTimer, VirtioDevice } from '../../device/contract.js';
import { GuestMemoryError } from '../../memory/errors.js';
import type { DescriptorChain } from '../../queue/chain.js';
import type { Virtqueue as DeviceQueue } from '../../queue/virtqueue.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { ControlSocket, type ControlReply } from '../control-socket.js';
import type { UnixStreamOps } from '../vsock/host.js';
import { InputStepError } from './errors.js';
import type { InputMetrics } from './metrics.js';
import { configItem, type InputProfile } from './profiles.js';
import { StepParser, type InputEvent } from './steps.js';
import {
  EV_LED,
  INPUT_CFG_SELECT,
  INPUT_CFG_SIZE,
  INPUT_CFG_SUBSEL,
  INPUT_CFG_U,
  INPUT_DEVICE_ID,
  INPUT_QUEUE_MAX_SIZE,
  LED_NAMES,
  VIRTIO_INPUT_CONFIG_SIZE,
  VIRTIO_INPUT_EVENTQ,
  VIRTIO_INPUT_EVENT_SIZE,
  VIRTIO_INPUT_STATUSQ,
} from './spec.js';

export interface InputOptions {
  profile: InputProfile;
  /** Steps run after each activation once the driver posted event buffers (`wait`, `repeat` allowed). */
  script?: readonly string[];
  /** Events kept for the driver while it has no buffers; whole frames past it are dropped. */
  maxPendingEvents: number;
  controlSocket?: string;
  streams?: UnixStreamOps;
}

/** Status events remembered for `info` (the most recent ones). */
const STATUS_LOG = 32;
/** One event as written to a buffer, reused: the write copies it into guest memory at once. */
const EVENT = new Uint8Array(VIRTIO_INPUT_EVENT_SIZE);
const EVENT_VIEW = new DataView(EVENT.buffer);

export class InputDevice implements VirtioDevice {
  readonly deviceId = INPUT_DEVICE_ID;
  readonly name = 'input';
  readonly queueMaxSizes = [INPUT_QUEUE_MAX_SIZE, INPUT_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  readonly configSize = VIRTIO_INPUT_CONFIG_SIZE;
  readonly profile: InputProfile;
  readonly #opts: InputOptions;
  readonly #steps: StepParser;
  /** The script, parsed once with a parser of its own (so a bad script fails at start-up). */
  readonly #script: readonly string[];
  #ctx: DeviceContext | undefined;
  #reactor: HostReactor | undefined;
  #log: DeviceLog | undefined;
  #control: ControlSocket | undefined;
  #select = 0;
  #subsel = 0;
  /** Event buffers the driver posted, with the queue they came from (a restarted ring makes them stale). */
  #held: Array<{ chain: DescriptorChain; queue: DeviceQueue }> = [];
  /** Events waiting for buffers, whole frames only. */
  #pending: InputEvent[] = [];
  #scriptAt = -1;
  #scriptTimer: HostTimer | undefined;
  readonly #leds = new Map<number, number>();
  readonly #statusLog: InputEvent[] = [];
  readonly #c = { configWrites: 0, eventsSent: 0, framesQueued: 0, framesDropped: 0, badChains: 0, statusEvents: 0, steps: 0, badSteps: 0 };

  /** @throws InputStepError when a script step is wrong for this device. */
  constructor(opts: InputOptions) {
    this.#opts = opts;
    this.profile = opts.profile;
    this.#steps = new StepParser(opts.profile);
    this.#script = opts.script ?? [];
    checkScript(opts.profile, this.#script);
    if (opts.controlSocket !== undefined && opts.streams !== undefined) {
      this.#control = new ControlSocket(opts.controlSocket, opts.streams, { device: 'input', requests: ['input', 'info'] }, (line) => this.control(line));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Config space (§5.8.4)

  readConfig(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(VIRTIO_INPUT_CONFIG_SIZE);
    const item = configItem(this.profile, this.#select, this.#subsel);
    b[INPUT_CFG_SELECT] = this.#select;
    b[INPUT_CFG_SUBSEL] = this.#subsel;
    b[INPUT_CFG_SIZE] = item.length;
    b.set(item, INPUT_CFG_U);
    return b.slice(offset, offset + length);
  }

  /** Only select and subsel are writable ("the driver ... writes select and subsel"). */
  writeConfig(offset: number, data: Uint8Array): void {
    this.#c.configWrites++;
    if (offset <= INPUT_CFG_SELECT && offset + data.length > INPUT_CFG_SELECT) this.#select = data[INPUT_CFG_SELECT - offset] ?? 0;
    if (offset <= INPUT_CFG_SUBSEL && offset + data.length > INPUT_CFG_SUBSEL) this.#subsel = data[INPUT_CFG_SUBSEL - offset] ?? 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  serveHost(reactor: HostReactor, log: DeviceLog): void {
    this.#reactor = reactor;
    this.#log = log;
    this.#control?.serve(reactor, log);
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#log ??= ctx.log;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === VIRTIO_INPUT_EVENTQ) {
      this.#take(ctx);
      if (this.#scriptAt < 0 && this.#held.length > 0 && this.#script.length > 0) {
        this.#scriptAt = 0;
        this.#runScript();
      }
      this.#deliver();
    } else if (index === VIRTIO_INPUT_STATUSQ) this.#status(ctx);
  }

  reset(): void {
    this.#scriptTimer?.cancel();
    this.#scriptTimer = undefined;
    this.#scriptAt = -1;
    this.#held.length = 0;
    this.#pending = [];
    this.#steps.reset();
    this.#select = 0;
    this.#subsel = 0;
    this.#ctx = undefined;
  }

  dispose(): void {
    this.#scriptTimer?.cancel();
    this.#control?.close();
    this.#control = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Event queue

  /** Takes every posted event buffer; a buffer too small for one event is returned at once. */
  #take(ctx: DeviceContext): void {
    const q = ctx.queue(VIRTIO_INPUT_EVENTQ);
    if (q === undefined) return;
    let returned = false;
    do {
      q.disableNotifications();
      for (let c = q.pop(); c !== null; c = q.pop()) {
        if (c.writableLength < VIRTIO_INPUT_EVENT_SIZE) {
          this.#c.badChains++;
          q.pushUsed(c.head, 0);
          returned = true;
        } else this.#held.push({ chain: c, queue: q });
      }
    } while (q.enableNotifications());
    if (returned && q.needsNotification()) ctx.notify(VIRTIO_INPUT_EVENTQ);
  }

  /** Queues frames for the driver (whole frames; past the cap a frame is dropped whole). */
  inject(frames: readonly InputEvent[][]): void {
    for (const f of frames) {
      if (f.length === 0) continue;
      if (this.#pending.length + f.length > this.#opts.maxPendingEvents) {
        this.#c.framesDropped++;
        continue;
      }
      this.#pending.push(...f);
      this.#c.framesQueued++;
    }
    this.#deliver();
  }

  /** Puts pending events into held buffers, one event each, in order. */
  #deliver(): void {
    const ctx = this.#ctx;
    const q = ctx?.queue(VIRTIO_INPUT_EVENTQ);
    if (ctx === undefined || q === undefined) return;
    // Buffers popped from a ring that was stopped and restarted since belong to the old ring.
    this.#held = this.#held.filter((h) => h.queue === q);
    let sent = 0;
    while (this.#pending.length > sent && this.#held.length > 0) {
      // Safe: both checked by the loop condition.
      const e = this.#pending[sent]!;
      const { chain } = this.#held.shift()!;
      EVENT_VIEW.setUint16(0, e.type, true);
      EVENT_VIEW.setUint16(2, e.code, true);
      EVENT_VIEW.setUint32(4, e.value >>> 0, true);
      try {
        chain.writer().write(EVENT);
      } catch (err: unknown) {
        // The buffer's memory went away under us (a memory-table change): drop the buffer, keep the event.
        if (!(err instanceof GuestMemoryError)) throw err;
        this.#c.badChains++;
        continue;
      }
      q.pushUsed(chain.head, VIRTIO_INPUT_EVENT_SIZE);
      sent++;
    }
    if (sent === 0) return;
    this.#pending = this.#pending.slice(sent);
    this.#c.eventsSent += sent;
    if (q.needsNotification()) ctx.notify(VIRTIO_INPUT_EVENTQ);
  }

  // ---------------------------------------------------------------------------------------------
  // Status queue

  #status(ctx: DeviceContext): void {
    const q = ctx.queue(VIRTIO_INPUT_STATUSQ);
    if (q === undefined) return;
    do {
      q.disableNotifications();
      for (let c = q.pop(); c !== null; c = q.pop()) {
        if (c.readableLength < VIRTIO_INPUT_EVENT_SIZE) this.#c.badChains++;
        else {
          const v = new DataView(c.reader().readBytes(VIRTIO_INPUT_EVENT_SIZE).buffer);
          const e = { type: v.getUint16(0, true), code: v.getUint16(2, true), value: v.getInt32(4, true) };
          this.#c.statusEvents++;
          if (e.type === EV_LED) this.#leds.set(e.code, e.value);
          this.#statusLog.push(e);
          if (this.#statusLog.length > STATUS_LOG) this.#statusLog.shift();
        }
        q.pushUsed(c.head, 0);
      }
    } while (q.enableNotifications());
    if (q.needsNotification()) ctx.notify(VIRTIO_INPUT_STATUSQ);
  }

  // ---------------------------------------------------------------------------------------------
  // Host side: script and control socket

  #runScript(): void {
    this.#scriptTimer = undefined;
    for (let guard = 0; this.#scriptAt >= 0 && this.#scriptAt < this.#script.length && guard < 10_000; guard++) {
      const line = this.#script[this.#scriptAt] ?? '';
      this.#scriptAt++;
      const step = this.#steps.parse(line, { script: true });
      this.#c.steps++;
      if (step.kind === 'frames') this.inject(step.frames);
      else if (step.kind === 'repeat') this.#scriptAt = 0;
      else {
        const reactor = this.#reactor ?? this.#ctx?.reactor;
        if (reactor === undefined) return;
        this.#scriptTimer = reactor.setTimer(step.ms, () => this.#runScript());
        return;
      }
    }
  }

  /** One control-socket request: an input step, or `info`. Never throws. */
  control(line: string): ControlReply {
    const text = line.trim();
    if (text === 'info') return { ok: true, metrics: this.metrics() };
    try {
      const step = this.#steps.parse(text, { script: false });
      this.#c.steps++;
      if (step.kind !== 'frames') return { ok: false, error: `'${text}': not a step for the control socket` };
      const before = this.#c.framesDropped;
      this.inject(step.frames);
      return { ok: true, frames: step.frames.length, dropped: this.#c.framesDropped - before, pending: this.#pending.length, driver: this.#ctx !== undefined };
    } catch (e: unknown) {
      if (!(e instanceof InputStepError)) throw e;
      this.#c.badSteps++;
      return { ok: false, error: e.message };
    }
  }

  metrics(): InputMetrics {
    return {
      device: 'input',
      type: this.profile.type,
      name: this.profile.name,
      ...this.#c,
      pendingEvents: this.#pending.length,
      heldBuffers: this.#held.length,
      leds: Object.fromEntries([...this.#leds].map(([code, v]) => [LED_NAMES[code] ?? `led${code}`, v !== 0])),
      recentStatus: this.#statusLog.map((e) => [e.type, e.code, e.value]),
      controlRequests: this.#control?.requests ?? 0,
    };
  }
}

/**
 * Checks every step of a script against the device (with a parser of its own) and that a script
 * that repeats also waits, so it cannot spin.
 * @throws InputStepError
 */
export function checkScript(profile: InputProfile, script: readonly string[]): void {
  const p = new StepParser(profile);
  let waits = false;
  script.forEach((line, i) => {
    let step;
    try {
      step = p.parse(line, { script: true });
    } catch (e: unknown) {
      throw e instanceof InputStepError ? new InputStepError(`script step ${i + 1}: ${e.message}`) : e;
    }
    if (step.kind === 'wait' && step.ms > 0) waits = true;
    if (step.kind === 'repeat' && !waits) throw new InputStepError(`script step ${i + 1}: repeat needs a wait of more than 0 ms before it`);
  });
}
