// SPDX-License-Identifier: Apache-2.0
/**
 * Controlling and watching a running platform: the `RunControl` interface, which the dashboard
 * (ui/) talks to, and `LocalControl`, its implementation over a `PlatformRun` in this process.
 * The control socket (control-socket.ts) serves a RunControl to other processes (`avp ui
 * RUNDIR`) and its client is a RunControl too, so the dashboard works the same in `avp run --ui`
 * (in-process) and attached to a run directory.
 *
 * Owns: what a control snapshot holds (the run's snapshot, plus the verdict of the control rules
 * on each target, the screens of each VM and the buses), and that a snapshot refreshes back-end
 * counters (PlatformRun.refreshMetrics, at most every METRICS_REFRESH_MS for all its callers).
 * Does not own: the rules (control-rules.ts), carrying out requests (supervisor.ts), screens and
 * buses (extensions.ts and the back-ends that register them), the wire format (control-socket.ts).
 */
import { ControlRefusedError, ControlTargetError } from '../errors.js';
import { verdicts, type ActionVerdicts, type ControlRequest } from './control-rules.js';
import type { BusInfo, DisplayInfo, InputEvent } from './extensions.js';
import type { BalloonInfo, PlatformRun } from './supervisor.js';
import type { BackendStatus, RunEvent, VmStatus } from './types.js';

/** The version of the control protocol and of the snapshot shape; bumped on incompatible change. */
export const CONTROL_PROTOCOL_VERSION = 1;

export interface ControlVm extends VmStatus {
  /** What the control rules say to start, stop and restart now. */
  actions: ActionVerdicts;
  /** Its screens (none without a display device). */
  displays: DisplayInfo[];
  /** Whether its screens take input (touch, keys). */
  input: boolean;
}

export interface ControlBackend extends BackendStatus {
  actions: ActionVerdicts;
}

/** A run as the control socket reports it. */
export interface ControlSnapshot {
  protocol: number;
  /** Date.now() when it was taken. */
  at: number;
  name: string;
  runDir: string;
  startedAt: number;
  ending: boolean;
  vms: ControlVm[];
  backends: ControlBackend[];
  buses: BusInfo[];
}

/** Live events: a VM's console line, a message of the run, a line of a bus's trace. */
export type ControlEvent = RunEvent | { type: 'bus'; bus: string; line: string };

/** A running platform, to watch and control (in this process, or through its control socket). */
export interface RunControl {
  snapshot(): Promise<ControlSnapshot>;
  /** The last console lines of a VM. @throws ControlTargetError */
  consoleTail(vm: string): Promise<string[]>;
  /** The last lines of a bus's trace. @throws ControlTargetError */
  busTail(bus: string): Promise<string[]>;
  /** Start/stop/restart (supervisor's rules); resolves with what was done. @throws ControlRefusedError, ControlTargetError */
  act(req: ControlRequest): Promise<string>;
  /** A PNG of one display of a VM. @throws ControlTargetError */
  screenshot(vm: string, display: string): Promise<Buffer>;
  /** Input to one display of a VM. @throws ControlTargetError, ControlRefusedError (view-only screens) */
  input(vm: string, display: string, event: InputEvent): Promise<void>;
  /**
   * The balloon of a VM: sets its target (bytes) when given, and reports the guest's size now.
   * @throws ControlTargetError (no such VM or no balloon), ControlRefusedError (not running, target out of range)
   */
  balloon(vm: string, targetBytes?: number): Promise<BalloonInfo>;
  /** Calls `listener` with every event from now on, until the returned function is called. */
  subscribe(listener: (e: ControlEvent) => void): () => void;
}

/** RunControl over a PlatformRun of this process. */
export class LocalControl implements RunControl {
  readonly #run: PlatformRun;

  constructor(run: PlatformRun) {
    this.#run = run;
  }

  async snapshot(): Promise<ControlSnapshot> {
    await this.#run.refreshMetrics();
    const run = this.#run;
    const snap = run.snapshot();
    return {
      protocol: CONTROL_PROTOCOL_VERSION,
      at: Date.now(),
      name: snap.name,
      runDir: snap.runDir,
      startedAt: snap.startedAt,
      ending: snap.ending,
      vms: snap.vms.map((v) => ({
        ...v,
        actions: verdicts(snap, 'vm', v.name, run.busy),
        displays: run.extensions.displays(v.name),
        input: run.extensions.screens(v.name)?.input !== undefined,
      })),
      backends: snap.backends.map((b) => ({ ...b, actions: verdicts(snap, 'backend', b.id, run.busy) })),
      buses: run.extensions.buses(),
    };
  }

  async consoleTail(vm: string): Promise<string[]> {
    return this.#run.consoleTail(vm);
  }

  busTail(bus: string): Promise<string[]> {
    const trace = this.#run.extensions.bus(bus);
    if (trace === undefined) return Promise.reject(new ControlTargetError(`this run has no bus '${bus}'`));
    return Promise.resolve(trace.recent());
  }

  act(req: ControlRequest): Promise<string> {
    return this.#run.act(req);
  }

  async screenshot(vm: string, display: string): Promise<Buffer> {
    return this.#screens(vm).provider.screenshot(display);
  }

  async input(vm: string, display: string, event: InputEvent): Promise<void> {
    const input = this.#screens(vm).input;
    if (input === undefined) throw new ControlRefusedError(`the screens of VM ${vm} take no input`);
    return input.send(display, event);
  }

  balloon(vm: string, targetBytes?: number): Promise<BalloonInfo> {
    return this.#run.balloon(vm, targetBytes);
  }

  subscribe(listener: (e: ControlEvent) => void): () => void {
    const offRun = this.#run.onEvent(listener);
    const offBus = this.#run.extensions.onBusLine((bus, line) => listener({ type: 'bus', bus, line }));
    return () => {
      offRun();
      offBus();
    };
  }

  #screens(vm: string): NonNullable<ReturnType<PlatformRun['extensions']['screens']>> {
    if (!this.#run.snapshot().vms.some((v) => v.name === vm)) throw new ControlTargetError(`this run has no VM '${vm}' (yet)`);
    const screens = this.#run.extensions.screens(vm);
    if (screens === undefined) throw new ControlTargetError(`VM ${vm} has no display`);
    return screens;
  }
}
