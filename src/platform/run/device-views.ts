// SPDX-License-Identifier: Apache-2.0
/**
 * What a run shows of its devices on the dashboard (extensions.ts): the screens of each VM's gpu
 * devices, input to them through its input devices, and each CAN bus's frames as a trace.
 *
 * Which devices have screens, a pointer or keys, their kinds say (devices/kind.ts `hostView`), so
 * nothing here names a device kind.
 * - Screens: one display per scanout of each display device (gpu), sized as planned; a picture is a
 *   `screenshot` request on the device's control socket (`<run>/<vm>/<name>.ctl`), the same path
 *   `avp screenshot` takes (platform/control.ts), which leaves the PNG at the back-end's default
 *   `<run>/<vm>/<name>-scanout<N>.png`. When the scanout shows nothing (the VM is off, or its guest
 *   has not drawn yet), that file is the picture: the back-end saves each scanout's last frame
 *   there at a device reset. Requests for one display are coalesced and a picture is reused for
 *   SCREENSHOT_REUSE_MS, so several pages cost the back-end one PNG encoding at a time.
 * - Input: a touch on a display (display pixels) goes to the VM's first device with a pointer (an
 *   input device of type touch, multitouch or tablet) as `down X,Y` / `move X,Y` / `up`, scaled
 *   to that device's axes; a key (KeyboardEvent.code) to the first device with keys (keyboard,
 *   buttons) that takes it as `press KEY_..` / `release KEY_..`; both as input steps on the
 *   device's control socket, as `avp input` sends them.
 * - Buses: each CAN bus with a candump log (`log:`, on by default) is followed like `tail -f`: its
 *   new lines (`(time) bus 100#5800`) are the trace, the last BUS_TAIL_LINES kept for pages that
 *   open later, at most BUS_LINES_PER_POLL passed on per poll (a busier bus shows its latest
 *   frames; the log file keeps them all).
 *
 * Owns: which devices and buses are shown and how page events become input steps. Does not own:
 * the control-socket client (platform/control.ts), the devices, the bus, the transport to pages.
 */
import { open, readFile, stat } from 'node:fs/promises';
import type { HostView } from '../../devices/kind.js';
import { findKind } from '../../devices/registry.js';
import { requestScreenshot, sendInputStep } from '../control.js';
import { ControlRefusedError, ControlTargetError } from '../errors.js';
import type { BackendPlan, PlatformPlan } from '../manifest/plan.js';
import type { BusTrace, DisplayInfo, InputEvent, InputSink, RunExtensions, ScreenProvider } from './extensions.js';

/** A picture younger than this is given again instead of asking the back-end for a new one. */
export const SCREENSHOT_REUSE_MS = 200;
/** How long a screenshot or input request may take. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Lines of a bus's trace kept for pages that connect later. */
export const BUS_TAIL_LINES = 200;
/** How often a bus's candump log is looked at. */
export const BUS_POLL_MS = 250;
/** At most this many new lines of one bus are passed on per poll (the rest are in the log file). */
export const BUS_LINES_PER_POLL = 100;
/** At most this many new bytes of a log are read per poll (older ones are skipped). */
const BUS_READ_BYTES = 64 * 1024;

/** One display: a scanout of a gpu device. */
interface Screen extends DisplayInfo {
  socket: string;
  scanout: number;
  /** Where the back-end saves the scanout's pictures (its last frame at a reset too). */
  lastFrame?: string;
}

/** An input device of a VM, as planned. */
interface InputDeviceRef {
  name: string;
  path: string;
  /** Its axes, when it takes touches. */
  pointer?: { width: number; height: number };
  keys: boolean;
}

/** What the device of `b` offers the dashboard (its kind's `hostView` of its options, defaults filled in). */
function hostViewOf(b: BackendPlan): HostView | undefined {
  const spec = b.ports[0]?.spec;
  const kind = spec === undefined ? undefined : findKind(spec.kind);
  const parsed = kind?.options.safeParse(spec?.options ?? {});
  // Safe: the options the kind's own schema parsed, which is what hostView takes.
  return parsed?.success === true ? kind?.hostView?.(parsed.data as Record<string, unknown>) : undefined;
}

/**
 * Registers the screens, input and bus traces of `plan` in `ext`; returns what stops the bus
 * traces and removes them all again.
 */
export function exposeDevices(plan: PlatformPlan, ext: RunExtensions, opts: { busPollMs?: number } = {}): () => void {
  const devices = plan.backends.filter((b) => b.role === 'device' && b.ports.length === 1);
  const vmsWithScreens: string[] = [];
  for (const vm of plan.vms) {
    const screens: Screen[] = [];
    const inputs: InputDeviceRef[] = [];
    for (const b of devices.filter((x) => x.ports[0]?.vm === vm.name)) {
      const view = hostViewOf(b);
      const device = b.ports[0]?.device ?? b.id;
      if (view === undefined) continue;
      const displays = view.displays ?? [];
      for (const d of displays) {
        screens.push({ id: displays.length === 1 ? device : `${device}-${d.scanout}`, label: `${device} (scanout ${d.scanout})`, width: d.width, height: d.height, socket: view.controlSocket, scanout: d.scanout, ...(d.lastFrame === undefined ? {} : { lastFrame: d.lastFrame }) });
      }
      if (view.pointer !== undefined || view.keys === true) inputs.push({ name: device, path: view.controlSocket, keys: view.keys === true, ...(view.pointer === undefined ? {} : { pointer: view.pointer }) });
    }
    if (screens.length === 0) continue;
    vmsWithScreens.push(vm.name);
    ext.addScreens(vm.name, new DeviceScreens(vm.name, screens), inputs.length === 0 ? undefined : new DeviceInput(vm.name, screens, inputs));
  }
  const traces: CandumpTrace[] = [];
  for (const b of plan.backends) {
    const log = b.canbus?.log;
    if (b.role !== 'canbus' || b.canbus === undefined || log === undefined) continue;
    const trace = new CandumpTrace(b.canbus.name, log, opts.busPollMs ?? BUS_POLL_MS);
    traces.push(trace);
    ext.addBus(trace);
  }
  return () => {
    for (const t of traces) {
      t.close();
      ext.removeBus(t.name);
    }
    for (const vm of vmsWithScreens) ext.removeScreens(vm);
  };
}

/** The screens of one VM's gpu devices. */
export class DeviceScreens implements ScreenProvider {
  readonly #vm: string;
  readonly #screens: Screen[];
  /** Per display: the picture being taken, or the last one and when it was taken. */
  readonly #pictures = new Map<string, { at: number; png: Promise<Buffer> }>();

  constructor(vm: string, screens: Screen[]) {
    this.#vm = vm;
    this.#screens = screens;
  }

  displays(): DisplayInfo[] {
    return this.#screens.map(({ id, width, height, label }) => ({ id, width, height, ...(label === undefined ? {} : { label }) }));
  }

  screenshot(display: string): Promise<Buffer> {
    const s = this.#screens.find((x) => x.id === display);
    if (s === undefined) return Promise.reject(new ControlTargetError(`VM ${this.#vm} has no display '${display}' (displays: ${this.#screens.map((x) => x.id).join(', ')})`));
    const last = this.#pictures.get(display);
    if (last !== undefined && Date.now() - last.at < SCREENSHOT_REUSE_MS) return last.png;
    const png = requestScreenshot(s.socket, s.scanout, undefined, REQUEST_TIMEOUT_MS).then(
      (r) => readFile(r.path),
      // Nothing on the scanout now (the VM is off, its guest has not drawn yet): its last frame, if any.
      (e: unknown) => (s.lastFrame === undefined ? Promise.reject(e) : readFile(s.lastFrame).catch(() => Promise.reject(e))),
    );
    const entry = { at: Number.POSITIVE_INFINITY, png };
    this.#pictures.set(display, entry); // coalesces requests while this one is under way
    png.then(
      () => (entry.at = Date.now()),
      () => this.#pictures.get(display) === entry && this.#pictures.delete(display),
    );
    return png;
  }
}

/** Input to one VM's screens through its input devices. */
export class DeviceInput implements InputSink {
  readonly #vm: string;
  readonly #screens: readonly DisplayInfo[];
  readonly #pointer: InputDeviceRef | undefined;
  readonly #keys: InputDeviceRef[];

  constructor(vm: string, screens: readonly DisplayInfo[], inputs: readonly InputDeviceRef[]) {
    this.#vm = vm;
    this.#screens = screens;
    this.#pointer = inputs.find((i) => i.pointer !== undefined);
    this.#keys = inputs.filter((i) => i.keys);
  }

  async send(display: string, event: InputEvent): Promise<void> {
    const d = this.#screens.find((x) => x.id === display);
    if (d === undefined) throw new ControlTargetError(`VM ${this.#vm} has no display '${display}'`);
    if (event.type === 'touch') {
      const p = this.#pointer;
      if (p === undefined) throw new ControlRefusedError(`VM ${this.#vm} has no touch or pointer input device`);
      // Safe: #pointer is a device with pointer axes.
      const step = touchStep(event, d, p.pointer!);
      await sendInputStep([p], step, REQUEST_TIMEOUT_MS);
      return;
    }
    const key = evdevKeyOf(event.code);
    if (key === undefined) throw new ControlRefusedError(`no Linux key code for the key '${event.code}'`);
    if (this.#keys.length === 0) throw new ControlRefusedError(`VM ${this.#vm} has no keyboard`);
    await sendInputStep(this.#keys, `${event.action === 'down' ? 'press' : 'release'} ${key}`, REQUEST_TIMEOUT_MS);
  }
}

/** The input step of a touch on display `d` for device `p`, scaled from the display's pixels to the device's axes. */
export function touchStep(e: Extract<InputEvent, { type: 'touch' }>, d: { width: number; height: number }, p: { width: number; height: number }): string {
  if (e.action === 'up') return 'up';
  const scale = (v: number, from: number, to: number): number => Math.min(to - 1, Math.max(0, Math.floor((v * to) / from)));
  return `${e.action} ${scale(e.x, d.width, p.width)},${scale(e.y, d.height, p.height)}`;
}

const DOM_KEYS: Readonly<Record<string, string>> = {
  Enter: 'ENTER',
  Escape: 'ESC',
  Backspace: 'BACKSPACE',
  Tab: 'TAB',
  Space: 'SPACE',
  Minus: 'MINUS',
  Equal: 'EQUAL',
  BracketLeft: 'LEFTBRACE',
  BracketRight: 'RIGHTBRACE',
  Backslash: 'BACKSLASH',
  Semicolon: 'SEMICOLON',
  Quote: 'APOSTROPHE',
  Backquote: 'GRAVE',
  Comma: 'COMMA',
  Period: 'DOT',
  Slash: 'SLASH',
  CapsLock: 'CAPSLOCK',
  ShiftLeft: 'LEFTSHIFT',
  ShiftRight: 'RIGHTSHIFT',
  ControlLeft: 'LEFTCTRL',
  ControlRight: 'RIGHTCTRL',
  AltLeft: 'LEFTALT',
  AltRight: 'RIGHTALT',
  MetaLeft: 'LEFTMETA',
  MetaRight: 'RIGHTMETA',
  ContextMenu: 'COMPOSE',
  ArrowUp: 'UP',
  ArrowDown: 'DOWN',
  ArrowLeft: 'LEFT',
  ArrowRight: 'RIGHT',
  Home: 'HOME',
  End: 'END',
  PageUp: 'PAGEUP',
  PageDown: 'PAGEDOWN',
  Insert: 'INSERT',
  Delete: 'DELETE',
  NumpadEnter: 'KPENTER',
  NumpadAdd: 'KPPLUS',
  NumpadSubtract: 'KPMINUS',
  NumpadMultiply: 'KPASTERISK',
  NumpadDivide: 'KPSLASH',
  NumpadDecimal: 'KPDOT',
  AudioVolumeUp: 'VOLUMEUP',
  AudioVolumeDown: 'VOLUMEDOWN',
  AudioVolumeMute: 'MUTE',
};

/** The Linux key name (input-event-codes.h) of a KeyboardEvent.code (`KeyA` → KEY_A), or undefined. */
export function evdevKeyOf(code: string): string | undefined {
  const m = /^(?:Key([A-Z])|Digit([0-9])|Numpad([0-9])|F([1-9]|1[0-2]))$/.exec(code);
  if (m !== null) return m[1] !== undefined || m[2] !== undefined ? `KEY_${m[1] ?? m[2] ?? ''}` : m[3] !== undefined ? `KEY_KP${m[3]}` : `KEY_F${m[4] ?? ''}`;
  const name = Object.hasOwn(DOM_KEYS, code) ? DOM_KEYS[code] : undefined;
  return name === undefined ? undefined : `KEY_${name}`;
}

/** A CAN bus's candump log, followed: its new lines are the bus's trace. */
export class CandumpTrace implements BusTrace {
  readonly name: string;
  readonly kind = 'CAN';
  readonly #file: string;
  readonly #tail: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  readonly #timer: NodeJS.Timeout;
  #offset = 0;
  #partial = '';
  #reading = false;
  #closed = false;

  constructor(bus: string, file: string, pollMs: number) {
    this.name = bus;
    this.#file = file;
    this.#timer = setInterval(() => void this.poll(), pollMs);
    this.#timer.unref();
  }

  recent(): string[] {
    return [...this.#tail];
  }

  subscribe(onLine: (line: string) => void): () => void {
    this.#listeners.add(onLine);
    return () => this.#listeners.delete(onLine);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  /** Reads what was appended since the last poll (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    if (this.#reading || this.#closed) return;
    this.#reading = true;
    try {
      const size = await stat(this.#file).then(
        (s) => s.size,
        () => undefined,
      );
      if (size === undefined) return; // not written yet (the bus has not started)
      if (size < this.#offset) {
        this.#offset = 0; // a new log (the run directory reused): start over
        this.#partial = '';
      }
      if (size === this.#offset) return;
      let from = this.#offset;
      if (size - from > BUS_READ_BYTES) {
        from = size - BUS_READ_BYTES; // too much at once: the newest part, from a line start
        this.#partial = '';
      }
      const buf = Buffer.alloc(size - from);
      const fh = await open(this.#file, 'r');
      let n: number;
      try {
        n = (await fh.read(buf, 0, buf.length, from)).bytesRead;
      } finally {
        await fh.close();
      }
      const skipped = from !== this.#offset;
      this.#offset = from + n;
      const parts = (this.#partial + buf.subarray(0, n).toString('utf8')).split('\n');
      this.#partial = parts.pop() ?? '';
      if (skipped) parts.shift(); // the first line was cut
      this.#add(parts.filter((l) => l !== ''));
    } finally {
      this.#reading = false;
    }
  }

  #add(lines: string[]): void {
    const shown = lines.length > BUS_LINES_PER_POLL ? lines.slice(-BUS_LINES_PER_POLL) : lines;
    for (const line of shown) {
      this.#tail.push(line);
      for (const l of this.#listeners) {
        try {
          l(line);
        } catch {
          // an observer's failure must not stop the trace
        }
      }
    }
    if (this.#tail.length > BUS_TAIL_LINES) this.#tail.splice(0, this.#tail.length - BUS_TAIL_LINES);
  }
}
