// SPDX-License-Identifier: Apache-2.0
/**
 * Extension points of a run for what the dashboard shows beyond VMs and back-end counters: the
 * screens of a VM's display device (with input to it) and the traffic of a bus, as a trace of
 * lines. The back-ends that have them (a virtio-gpu display with virtio-input; a CAN bus)
 * register a provider here when they start, and the control socket and the dashboard pick them
 * up; with none registered, a VM shows "no display on this VM" and the bus panel "no buses".
 *
 * Wiring (device-views.ts, once the run's back-ends serve): each VM with gpu devices gets a
 * `ScreenProvider` listing their scanouts and taking a PNG of one through the device's control
 * socket, and, with an input device, an `InputSink` that turns a `touch` event (display pixels)
 * into an input step of its touch device and a `key` event (KeyboardEvent.code) into a key press
 * or release of its keyboard. A click on the screen in the dashboard arrives as touch down then
 * touch up at the same point. Each CAN bus with a candump log gets a `BusTrace` whose lines are
 * the log's new lines (one frame a line). `removeBus`/`removeScreens` when the run ends.
 *
 * Owns: those interfaces and the registry of them for one run. Does not own: any display or bus
 * (their back-ends), the transport (control.ts, control-socket.ts), drawing (ui/).
 */

/** One display (scanout) of a VM's display device. */
export interface DisplayInfo {
  /** Stable within the run, unique per VM: `0`, `1`, ... (the scanout index) or a name. */
  id: string;
  width: number;
  height: number;
  /** For the panel title (`gpu scanout 0`). */
  label?: string;
}

/**
 * Input to a display. Coordinates are the display's pixels (0 ≤ x < width, 0 ≤ y < height) of
 * the `DisplayInfo` the page saw; `code` is a KeyboardEvent.code (`KeyA`, `Enter`, `ArrowUp`).
 */
export type InputEvent =
  | { type: 'touch'; action: 'down' | 'move' | 'up'; x: number; y: number }
  | { type: 'key'; action: 'down' | 'up'; code: string };

/** The screens of one VM, as its display back-end shows them. */
export interface ScreenProvider {
  /** The displays now enabled (empty while the guest has none up). */
  displays(): DisplayInfo[];
  /** A PNG of `display` as it is now. @throws ControlTargetError when there is no such display. */
  screenshot(display: string): Promise<Buffer>;
}

/** Where input to one VM's screens goes (its virtio-input devices). */
export interface InputSink {
  /** Delivers `event` to the guest as input on `display`. @throws ControlTargetError */
  send(display: string, event: InputEvent): Promise<void>;
}

/** What the dashboard shows about a bus. */
export interface BusInfo {
  name: string;
  /** `can`, `i2c`, ...: for the panel title. */
  kind: string;
}

/** The traffic of one bus as text lines (one frame a line). */
export interface BusTrace extends BusInfo {
  /** The most recent lines, oldest first (a few hundred at most). */
  recent(): string[];
  /** Calls `onLine` for each new line until the returned function is called. */
  subscribe(onLine: (line: string) => void): () => void;
}

/** The providers registered for one run. */
export class RunExtensions {
  readonly #screens = new Map<string, { provider: ScreenProvider; input: InputSink | undefined }>();
  readonly #buses = new Map<string, BusTrace>();
  readonly #busListeners = new Set<(bus: string, line: string) => void>();
  readonly #busUnsubscribe = new Map<string, () => void>();

  /** Registers (or replaces) the screens of `vm`; `input` absent: the screens are view-only. */
  addScreens(vm: string, provider: ScreenProvider, input?: InputSink): void {
    this.#screens.set(vm, { provider, input });
  }

  removeScreens(vm: string): void {
    this.#screens.delete(vm);
  }

  /** The displays of `vm` now (none without a provider, or when the provider fails). */
  displays(vm: string): DisplayInfo[] {
    try {
      return this.#screens.get(vm)?.provider.displays() ?? [];
    } catch {
      return []; // a display back-end that is restarting has no displays for the moment
    }
  }

  screens(vm: string): { provider: ScreenProvider; input: InputSink | undefined } | undefined {
    return this.#screens.get(vm);
  }

  /** Registers (or replaces) a bus; its lines reach every `onBusLine` listener. */
  addBus(trace: BusTrace): void {
    this.removeBus(trace.name);
    this.#buses.set(trace.name, trace);
    this.#busUnsubscribe.set(
      trace.name,
      trace.subscribe((line) => {
        for (const l of this.#busListeners) l(trace.name, line);
      }),
    );
  }

  removeBus(name: string): void {
    this.#busUnsubscribe.get(name)?.();
    this.#busUnsubscribe.delete(name);
    this.#buses.delete(name);
  }

  buses(): BusInfo[] {
    return [...this.#buses.values()].map((b) => ({ name: b.name, kind: b.kind }));
  }

  bus(name: string): BusTrace | undefined {
    return this.#buses.get(name);
  }

  /** Calls `listener` with every new line of every bus, until the returned function is called. */
  onBusLine(listener: (bus: string, line: string) => void): () => void {
    this.#busListeners.add(listener);
    return () => this.#busListeners.delete(listener);
  }
}
