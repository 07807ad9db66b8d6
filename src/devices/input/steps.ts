// SPDX-License-Identifier: Apache-2.0
/**
 * Input steps: the small line language the host drives a virtio-input device with, from its
 * control socket (`avp input VM ...`) and from a script (manifest `script:`). Each step becomes
 * evdev frames: events ending with EV_SYN/SYN_REPORT, as a Linux driver of real hardware would
 * report them.
 *
 *   key NAME            press and release (NAME: KEY_ENTER, BTN_LEFT, ... or a code number)
 *   press NAME          key down            release NAME   key up
 *   type TEXT           letters, digits, space and - = . , / ; ' (shift for capitals)
 *   touch X,Y [X,Y...]  a tap (several fingers at once on a multitouch screen)
 *   down X,Y [SLOT]     finger (or tablet button) down    move X,Y [SLOT]   moves it
 *   up [SLOT]           lifts it
 *   event TYPE CODE VALUE   one raw event (EV_KEY KEY_A 1, or numbers); `syn` ends a frame
 *   wait MS             (scripts only) pause;  repeat   (scripts only) start the script again
 *
 * Touch on a `touch` device: ABS_X, ABS_Y, BTN_TOUCH. On a `multitouch` device, per finger:
 * ABS_MT_SLOT, ABS_MT_TRACKING_ID (a new id per touch, -1 on release), ABS_MT_POSITION_X/Y, plus
 * BTN_TOUCH and ABS_X/ABS_Y for the first finger (type B protocol, Documentation/input/
 * multi-touch-protocol.rst). On a `tablet`: ABS_X, ABS_Y and BTN_LEFT.
 *
 * Owns: parsing and checking steps against the device's profile (codes it reports, coordinates
 * inside its axes, slots it has), and the per-device state steps need (fingers down, ids).
 * Does not own: queues and delivery (model.ts).
 */
import { InputStepError } from './errors.js';
import type { InputProfile } from './profiles.js';
import {
  ABS_MT_POSITION_X,
  ABS_MT_POSITION_Y,
  ABS_MT_SLOT,
  ABS_MT_TRACKING_ID,
  ABS_NAMES,
  ABS_X,
  ABS_Y,
  BTN_LEFT,
  BTN_TOUCH,
  CHAR_KEYS,
  EV_ABS,
  EV_KEY,
  EV_NAMES,
  EV_SYN,
  KEY_CODES,
  SYN_REPORT,
} from './spec.js';

/** One evdev event; `value` is signed (-1 releases a tracking id). */
export interface InputEvent {
  readonly type: number;
  readonly code: number;
  readonly value: number;
}

/** What a step asks for. */
export type Step = { kind: 'frames'; frames: InputEvent[][] } | { kind: 'wait'; ms: number } | { kind: 'repeat' };

/** Most raw events before a `syn` (a frame larger than a driver's 64 buffers makes no sense). */
export const MAX_RAW_EVENTS = 64;

/** Longest `wait` (one hour). */
export const MAX_WAIT_MS = 3_600_000;

const ev = (type: number, code: number, value: number): InputEvent => ({ type, code, value });
const SYN = ev(EV_SYN, SYN_REPORT, 0);

/** Turns step lines into frames for one device, keeping its finger state between steps. */
export class StepParser {
  readonly #p: InputProfile;
  readonly #slots: number;
  /** Tracking id of each multitouch slot that is down. */
  readonly #down = new Map<number, number>();
  #nextId = 0;
  /** A `raw` frame under construction (`event` lines until `syn`). */
  #raw: InputEvent[] = [];

  constructor(profile: InputProfile) {
    this.#p = profile;
    this.#slots = (profile.abs.get(ABS_MT_SLOT)?.max ?? 0) + 1;
  }

  /** Forgets fingers and partial frames (the device was reset). */
  reset(): void {
    this.#down.clear();
    this.#raw = [];
  }

  /** @throws InputStepError naming what is wrong with `line`. */
  parse(line: string, opts: { script: boolean }): Step {
    const [verb = '', ...args] = line.trim().split(/\s+/);
    const frames = (f: InputEvent[][]): Step => ({ kind: 'frames', frames: f });
    switch (verb) {
      case 'key': {
        const code = this.#key(args, 1, line);
        return frames([[ev(EV_KEY, code, 1), SYN], [ev(EV_KEY, code, 0), SYN]]);
      }
      case 'press':
      case 'release':
        return frames([[ev(EV_KEY, this.#key(args, 1, line), verb === 'press' ? 1 : 0), SYN]]);
      case 'type':
        return frames(this.#type(line.trim().slice(4).replace(/^\s/, ''), line));
      case 'touch':
        return frames(this.#touch(args, line));
      case 'down':
      case 'move':
        return frames([this.#point(verb, args, line)]);
      case 'up':
        return frames([this.#up(this.#slot(args[0], line))]);
      case 'event':
        return this.#event(args, line);
      case 'syn': {
        const f = [...this.#raw, SYN];
        this.#raw = [];
        return frames([f]);
      }
      case 'wait': {
        if (!opts.script) throw new InputStepError(`'${line}': wait is for scripts only`);
        const ms = Number(args[0]);
        if (args.length !== 1 || !Number.isInteger(ms) || ms < 0 || ms > MAX_WAIT_MS) throw new InputStepError(`'${line}': expected wait MS, MS an integer from 0 to ${MAX_WAIT_MS}`);
        return { kind: 'wait', ms };
      }
      case 'repeat':
        if (!opts.script || args.length > 0) throw new InputStepError(`'${line}': repeat takes nothing and is for scripts only`);
        return { kind: 'repeat' };
      default:
        throw new InputStepError(`'${line}': unknown step '${verb}'; expected key, press, release, type, touch, down, move, up, event, syn${opts.script ? ', wait, repeat' : ''}`);
    }
  }

  /** A key or button code the device reports. */
  #key(args: readonly string[], n: number, line: string): number {
    if (args.length !== n) throw new InputStepError(`'${line}': expected one key name (KEY_ENTER, BTN_LEFT) or code`);
    return this.#keyCode(args[0] ?? '', line);
  }

  #keyCode(name: string, line: string): number {
    const code = /^\d+$/.test(name) ? Number(name) : KEY_CODES.get(name.toUpperCase());
    if (code === undefined) throw new InputStepError(`'${line}': unknown key '${name}'`);
    if (this.#p.ev.get(EV_KEY)?.has(code) !== true) throw new InputStepError(`'${line}': this ${this.#p.type} device has no key ${name} (code ${code})`);
    return code;
  }

  #type(text: string, line: string): InputEvent[][] {
    if (text === '') throw new InputStepError(`'${line}': expected text after type`);
    const out: InputEvent[][] = [];
    for (const ch of text) {
      const k = CHAR_KEYS.get(ch);
      if (k === undefined) throw new InputStepError(`'${line}': cannot type '${ch}'`);
      const code = this.#keyCode(k[0], line);
      const shift = k[1] ? this.#keyCode('KEY_LEFTSHIFT', line) : undefined;
      if (shift !== undefined) out.push([ev(EV_KEY, shift, 1), SYN]);
      out.push([ev(EV_KEY, code, 1), SYN], [ev(EV_KEY, code, 0), SYN]);
      if (shift !== undefined) out.push([ev(EV_KEY, shift, 0), SYN]);
    }
    return out;
  }

  /** `X,Y` inside the screen axes. */
  #xy(text: string | undefined, line: string): [number, number] {
    const x = this.#p.abs.get(ABS_X);
    const y = this.#p.abs.get(ABS_Y);
    if (x === undefined || y === undefined) throw new InputStepError(`'${line}': a ${this.#p.type} device has no absolute position`);
    const m = /^(\d+),(\d+)$/.exec(text ?? '');
    const px = Number(m?.[1]);
    const py = Number(m?.[2]);
    if (m === null || px > x.max || py > y.max) throw new InputStepError(`'${line}': expected X,Y with X from 0 to ${x.max} and Y from 0 to ${y.max}`);
    return [px, py];
  }

  #slot(text: string | undefined, line: string): number {
    if (text === undefined) return 0;
    const s = Number(text);
    if (!/^\d+$/.test(text) || s >= this.#slots) throw new InputStepError(`'${line}': expected a slot from 0 to ${this.#slots - 1}`);
    return s;
  }

  get #multi(): boolean {
    return this.#p.abs.has(ABS_MT_SLOT);
  }

  #touch(args: readonly string[], line: string): InputEvent[][] {
    if (args.length === 0) throw new InputStepError(`'${line}': expected touch X,Y`);
    if (args.length > 1 && (!this.#multi || args.length > this.#slots)) throw new InputStepError(`'${line}': several fingers need a multitouch device with as many slots`);
    const points = args.map((a) => this.#xy(a, line));
    if (!this.#multi) return [this.#point('down', [args[0] ?? ''], line), this.#up(0)];
    // All fingers down in one frame, all up in the next.
    const down = points.flatMap(([x, y], s) => this.#fingerDown(s, x, y));
    const up = points.flatMap((_, s) => this.#fingerUp(s));
    return [
      [...down, ev(EV_KEY, BTN_TOUCH, 1), ...this.#single(points[0]), SYN],
      [...up, ev(EV_KEY, BTN_TOUCH, 0), SYN],
    ];
  }

  #point(verb: 'down' | 'move', args: readonly string[], line: string): InputEvent[] {
    if (args.length < 1 || args.length > 2) throw new InputStepError(`'${line}': expected ${verb} X,Y [SLOT]`);
    const [x, y] = this.#xy(args[0], line);
    const slot = this.#slot(args[1], line);
    if (!this.#multi) {
      const button = this.#p.ev.get(EV_KEY)?.has(BTN_TOUCH) === true ? BTN_TOUCH : BTN_LEFT;
      return [ev(EV_ABS, ABS_X, x), ev(EV_ABS, ABS_Y, y), ...(verb === 'down' ? [ev(EV_KEY, button, 1)] : []), SYN];
    }
    if (verb === 'move') {
      if (!this.#down.has(slot)) throw new InputStepError(`'${line}': slot ${slot} is not down`);
      return [ev(EV_ABS, ABS_MT_SLOT, slot), ev(EV_ABS, ABS_MT_POSITION_X, x), ev(EV_ABS, ABS_MT_POSITION_Y, y), ...(this.#first(slot) ? this.#single([x, y]) : []), SYN];
    }
    const first = this.#down.size === 0;
    return [...this.#fingerDown(slot, x, y), ...(first ? [ev(EV_KEY, BTN_TOUCH, 1)] : []), ...(this.#first(slot) ? this.#single([x, y]) : []), SYN];
  }

  #up(slot: number): InputEvent[] {
    if (!this.#multi) {
      const button = this.#p.ev.get(EV_KEY)?.has(BTN_TOUCH) === true ? BTN_TOUCH : BTN_LEFT;
      return [ev(EV_KEY, button, 0), SYN];
    }
    const events = this.#fingerUp(slot);
    return [...events, ...(this.#down.size === 0 ? [ev(EV_KEY, BTN_TOUCH, 0)] : []), SYN];
  }

  /** The lowest slot down is the one ABS_X/ABS_Y follow. */
  #first(slot: number): boolean {
    return Math.min(...this.#down.keys()) === slot;
  }

  #single(p: readonly [number, number] | undefined): InputEvent[] {
    return p === undefined ? [] : [ev(EV_ABS, ABS_X, p[0]), ev(EV_ABS, ABS_Y, p[1])];
  }

  #fingerDown(slot: number, x: number, y: number): InputEvent[] {
    const id = this.#down.get(slot) ?? this.#nextId++ & 0xffff;
    this.#down.set(slot, id);
    return [ev(EV_ABS, ABS_MT_SLOT, slot), ev(EV_ABS, ABS_MT_TRACKING_ID, id), ev(EV_ABS, ABS_MT_POSITION_X, x), ev(EV_ABS, ABS_MT_POSITION_Y, y)];
  }

  #fingerUp(slot: number): InputEvent[] {
    if (!this.#down.delete(slot)) return [];
    return [ev(EV_ABS, ABS_MT_SLOT, slot), ev(EV_ABS, ABS_MT_TRACKING_ID, -1)];
  }

  #event(args: readonly string[], line: string): Step {
    if (args.length !== 3) throw new InputStepError(`'${line}': expected event TYPE CODE VALUE`);
    const [t = '', c = '', v = ''] = args;
    const type = /^\d+$/.test(t) ? Number(t) : EV_NAMES[t.toUpperCase()];
    if (type === undefined || (type !== EV_SYN && !this.#p.ev.has(type))) throw new InputStepError(`'${line}': this ${this.#p.type} device does not report event type ${t}`);
    const code = /^\d+$/.test(c) ? Number(c) : type === EV_ABS ? ABS_NAMES[c.toUpperCase()] : KEY_CODES.get(c.toUpperCase());
    if (code === undefined || (type !== EV_SYN && this.#p.ev.get(type)?.has(code) !== true)) throw new InputStepError(`'${line}': this device does not report code ${c} of ${t}`);
    const value = Number(v);
    if (!/^-?\d+$/.test(v) || value < -(2 ** 31) || value >= 2 ** 31) throw new InputStepError(`'${line}': the value must be a 32-bit integer`);
    if (type === EV_SYN) {
      const f = [...this.#raw, ev(type, code, value)];
      this.#raw = [];
      return { kind: 'frames', frames: [f] };
    }
    if (this.#raw.length >= MAX_RAW_EVENTS) throw new InputStepError(`'${line}': more than ${MAX_RAW_EVENTS} events without a syn`);
    this.#raw.push(ev(type, code, value));
    return { kind: 'frames', frames: [] };
  }
}
