// SPDX-License-Identifier: Apache-2.0
/**
 * The platform supervisor behind `avp run`: carries out a PlatformPlan (plan.ts) and watches it
 * until it is done.
 *
 * Sequence: prepare the run directory (folders, blk images to create) → open the vhost-user
 * sockets (this process owns them, so a restarted back-end serves the same socket; `avp switch`
 * and `avp serve vsock --vm` processes create theirs, and a restarted one replaces them) → start every
 * back-end and wait until each serves → start the VMs (QEMU connects to the back-ends as a
 * client) → watch → stop the VMs, then the back-ends, close and remove the sockets.
 *
 * Watching: console lines go to each VM's log and, prefixed, to the reporter; a VM is ready when
 * a line matches its pattern; a back-end that ends unexpectedly is restarted (`restart:
 * on-failure`, within a limit) or reported and the VMs using it are stopped.
 *
 * The run ends when (a) `untilReady` and every VM is ready → 0; (b) every VM has powered off →
 * 0 if each succeeded (built-in image: its script exited 0; own kernel: QEMU exited 0), else 1;
 * (c) `untilReady` and a VM failed or powered off before it was ready → 1; (d) the timeout → 1;
 * (e) the abort signal (Ctrl-C, SIGTERM) → 128 + the signal number. Whatever ends it, and also
 * when starting fails half-way, everything started is stopped and every socket removed.
 *
 * Watchdog and balloon: a VM with either gets a QMP socket that this process listens on before
 * QEMU starts (qmp.ts). A WATCHDOG event is reported ("watchdog fired on VM x: action") and
 * counted in the VM's status; with `restart-vm` (QEMU powers off) the VM is started again, within
 * the restart limit. `balloon()` sets a balloon target through QMP and reports the guest's size.
 *
 * Control (the control socket and the dashboard, through `act`): a VM or a back-end may be
 * stopped, started or restarted on request while the run goes on, as control-rules.ts allows. A
 * VM stopped on request is `stopped`, not a failure; with `stayUp` the run does not end when
 * every VM has ended (an operator may start them again), only on abort or timeout.
 *
 * Owns: that sequence, the crash policy and carrying out control requests. Does not own: the argv
 * (plan.ts, qemu.ts), how a back-end runs (launch.ts), the rules for control requests
 * (control-rules.ts), output formatting (the reporter, the CLI, the dashboard).
 */
import { createWriteStream, lstatSync, type WriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { closeQuiet, unlinkQuiet } from '../../sys/index.js';
import { listenAt } from '../../vhost-user/server.js';
import { BackendStartError, BackendUnavailableError, ControlRefusedError, ControlTargetError, PlatformPlanError } from '../errors.js';
import { EXIT_LINE } from '../image/markers.js';
import { commandLine, type BackendPlan, type PlatformPlan, type VmPlan } from '../manifest/plan.js';
import { formatBytes } from '../manifest/units.js';
import { DEFAULT_MEMORY_MIB, QemuVm, findQemu, type VmExit } from '../qemu.js';
import { QmpListener, type QmpEvent, type QmpSession } from '../qmp.js';
import { SharedLoopThread, createBackendHandle, processCreatesSockets, unavailableReason, type BackendExit, type BackendHandle } from './launch.js';
import { findKind } from '../../devices/registry.js';
import { errorText } from '../../errors.js';
import { checkAction, targetKey, type ControlRequest } from './control-rules.js';
import { exposeDevices } from './device-views.js';
import { RunExtensions } from './extensions.js';
import { createDisks, createRunDir } from './prepare.js';
import { LocalControl } from './control.js';
import { ControlServer } from './control-socket.js';
import { CONSOLE_TAIL_LINES, describeIsolation, type BackendStateName, type RunEvent, type RunPlatformOptions, type RunResult, type RunSnapshot, type VmStatus } from './types.js';

export type { BackendStateName, BackendStatus, RunEvent, RunPlatformOptions, RunReporter, RunResult, RunSnapshot, VmStateName, VmStatus } from './types.js';
export { CONSOLE_TAIL_LINES } from './types.js';

/** Checks that this build can run every back-end of `plan`. @throws BackendUnavailableError */
export function checkAvailability(plan: PlatformPlan): void {
  const missing = plan.backends.flatMap((b) => {
    const reason = unavailableReason(b);
    return reason === undefined ? [] : [{ path: b.path, reason }];
  });
  if (missing.length > 0) throw new BackendUnavailableError(missing);
}

/** Runs a planned platform until it ends (see the file comment); resolves with the outcome. */
export function runPlatform(options: RunPlatformOptions): Promise<RunResult> {
  return new PlatformRun(options).run();
}

interface VmEntry {
  plan: VmPlan;
  status: VmStatus;
  ready: RegExp | undefined;
  vm: QemuVm | undefined;
  log: WriteStream;
  /** The last CONSOLE_TAIL_LINES console lines. */
  tail: string[];
  /** Set by a stop on request: the exit that follows is `stopped`, not a failure. */
  stopRequested: boolean;
  /** Where QEMU's QMP connects (VMs with a watchdog or a balloon). */
  qmp: QmpListener | undefined;
  /** Set when the watchdog fired with `restart-vm`: the exit that follows starts the VM again. */
  restartAfterExit: boolean;
  /** Date.now() of each watchdog restart within the restart window. */
  restartTimes: number[];
}

/** What a balloon request reports (bytes). */
export interface BalloonInfo {
  vm: string;
  /** The guest's memory now, as the balloon driver reports it (QMP query-balloon `actual`). */
  actual: number;
  /** The VM's RAM. */
  memory: number;
  /** The target just set, if the request set one. */
  target?: number;
}

/** The smallest balloon target accepted: below it the guest would be starved (MiB). */
export const MIN_BALLOON_TARGET_MIB = 64;

interface BackendEntry {
  plan: BackendPlan;
  handle: BackendHandle;
  state: BackendStateName;
  restarts: number[];
}

/** Back-end counters are asked for at most this often (a refresh sooner than that is skipped). */
export const METRICS_REFRESH_MS = 500;

/** One run. `snapshot()` and `refreshMetrics()` may be called while `run()` is under way. */
export class PlatformRun {
  readonly #opts: RunPlatformOptions;
  readonly #plan: PlatformPlan;
  readonly #vms: VmEntry[] = [];
  readonly #backends: BackendEntry[] = [];
  readonly #listenFds = new Map<string, number>();
  /** The worker thread every `isolation: shared` back-end of this run is served by. */
  readonly #sharedLoop: SharedLoopThread;
  /** The inode of each socket file this process listens on, to notice one removed or replaced. */
  readonly #socketInodes = new Map<string, number>();
  readonly #startedAt = Date.now();
  readonly #listeners = new Set<(e: RunEvent) => void>();
  /** targetKey()s of the targets a control request is acting on. */
  readonly #busy = new Set<string>();
  /** Screens and buses registered by the back-ends that have them (the dashboard shows them). */
  readonly extensions = new RunExtensions();
  #runLog: WriteStream | undefined;
  /** When refreshMetrics() last asked the back-ends. */
  #metricsAt = Number.NEGATIVE_INFINITY;
  /** The control socket (avp ui), from when the run directory exists until the end. */
  #control: ControlServer | undefined;
  #finished: { exitCode: number; reason: string } | undefined;
  #finish: (r: { exitCode: number; reason: string }) => void = () => {};
  readonly #outcome: Promise<{ exitCode: number; reason: string }>;

  constructor(options: RunPlatformOptions) {
    this.#opts = options;
    this.#plan = options.plan;
    this.#sharedLoop = options.sharedLoop ?? new SharedLoopThread();
    this.#outcome = new Promise((resolve) => {
      this.#finish = (r) => {
        if (this.#finished !== undefined) return;
        this.#finished = r;
        resolve(r);
      };
    });
  }

  snapshot(): RunSnapshot {
    return {
      name: this.#plan.name,
      runDir: this.#plan.runDir,
      startedAt: this.#startedAt,
      vms: this.#vms.map((v) => ({ ...v.status, backends: [...v.plan.backends] })),
      backends: this.#backends.map((b) => ({
        id: b.plan.id,
        kind: b.plan.kind,
        isolation: b.plan.isolation,
        state: b.state,
        ...(b.handle.pid === undefined ? {} : { pid: b.handle.pid }),
        restarts: b.restarts.length,
        restart: b.plan.restart,
        vms: [...b.plan.vms],
        ports: [...b.handle.ports.values()].map((p) => ({ ...p })),
      })),
      ending: this.#finished !== undefined,
    };
  }

  /** Calls `listener` with every console line and log message from now on, until the returned function is called. */
  onEvent(listener: (e: RunEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The last console lines of `vm` (CONSOLE_TAIL_LINES at most). @throws ControlTargetError */
  consoleTail(vm: string): string[] {
    const entry = this.#vms.find((v) => v.plan.name === vm);
    if (entry === undefined) throw new ControlTargetError(`this run has no VM '${vm}' (yet)`);
    return [...entry.tail];
  }

  /** targetKey()s of the targets a control request is acting on now. */
  get busy(): ReadonlySet<string> {
    return this.#busy;
  }

  /**
   * Starts, stops or restarts a VM or a back-end, if control-rules.ts allows it now; resolves with
   * one line saying what was done once it is done (a back-end serves again; a VM's QEMU runs).
   * @throws ControlTargetError, ControlRefusedError; BackendStartError when a back-end does not start.
   */
  async act(req: ControlRequest): Promise<string> {
    const denied = checkAction(this.snapshot(), req, this.#busy);
    if (denied !== undefined) throw denied.code === 'unknown' ? new ControlTargetError(denied.reason) : new ControlRefusedError(denied.reason);
    const key = targetKey(req);
    this.#busy.add(key);
    try {
      return req.target === 'vm' ? await this.#actOnVm(req) : await this.#actOnBackend(req);
    } finally {
      this.#busy.delete(key);
    }
  }

  /**
   * Asks every running back-end for its counters (for the status display, the dashboard and the
   * control socket), at most every METRICS_REFRESH_MS however many of them ask: a call sooner
   * than that returns at once and the counters of the last refresh stand.
   */
  async refreshMetrics(): Promise<void> {
    const now = Date.now();
    if (now - this.#metricsAt < METRICS_REFRESH_MS) return;
    this.#metricsAt = now;
    await Promise.all(this.#backends.filter((b) => b.state === 'running').map((b) => b.handle.refreshMetrics()));
  }

  async run(): Promise<RunResult> {
    const { plan, reporter } = this.#opts;
    checkAvailability(plan);
    const readyPatterns = this.#readyPatterns();
    const signal = this.#opts.signal;
    const onAbort = (): void => this.#finish(abortOutcome(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) onAbort();
    let timer: NodeJS.Timeout | undefined;
    if (this.#opts.timeoutMs !== undefined) {
      const ms = this.#opts.timeoutMs;
      timer = setTimeout(() => this.#finish({ exitCode: 1, reason: this.#timeoutReason(ms) }), ms);
    }
    // If this process exits before shutdown ran (a second Ctrl-C, an uncaught error), the socket
    // files must not be left behind; VMs and back-end processes have exit hooks of their own.
    const removeSockets = (): void => {
      for (const socket of [...this.#plan.sockets, ...this.#plan.hostSockets, ...qmpSockets(this.#plan), this.#plan.controlSocket]) if (isSocket(socket)) unlinkQuiet(socket);
    };
    process.on('exit', removeSockets);
    let outcome: { exitCode: number; reason: string };
    let unexpose = (): void => {};
    try {
      await this.#prepare();
      this.#control = await ControlServer.listen(plan.controlSocket, new LocalControl(this));
      this.#openSockets();
      if (this.#finished === undefined) await this.#startBackends();
      // The screens, input and bus traces of the devices, for the dashboard (extensions.ts).
      if (this.#finished === undefined) unexpose = exposeDevices(plan, this.extensions);
      if (this.#finished === undefined) await this.#startVms(readyPatterns);
      outcome = await this.#outcome;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // A run stopped on request (Ctrl-C, SIGTERM) did what was asked: not an error.
      if (this.#finished !== undefined) {
        const quiet = this.#finished.exitCode === 0 || this.#finished.reason.startsWith('stopped by ');
        (quiet ? this.#info.bind(this) : this.#error.bind(this))(this.#finished.reason);
      }
      unexpose();
      await this.#shutdown();
      await this.#control?.close();
      process.off('exit', removeSockets);
      reporter.info(`logs: ${plan.runDir}`);
      await new Promise<void>((resolve) => (this.#runLog === undefined ? resolve() : this.#runLog.end(resolve)));
    }
    return { ...outcome, snapshot: this.snapshot() };
  }

  // -------------------------------------------------------------------------------------------
  // Start

  #readyPatterns(): Map<string, RegExp | undefined> {
    const out = new Map<string, RegExp | undefined>();
    for (const vm of this.#plan.vms) {
      const source = this.#opts.until ?? (vm.ready === undefined ? undefined : new RegExp(vm.ready));
      if (source === undefined && this.#opts.untilReady === true) {
        throw new PlatformPlanError(`VM '${vm.name}' has no ready pattern (boot.ready in the manifest); give one, or use --until REGEX`);
      }
      out.set(vm.name, source);
    }
    return out;
  }

  async #prepare(): Promise<void> {
    this.#runLog = await createRunDir(this.#plan);
    this.#info(`run directory ${this.#plan.runDir}`);
    const created = await createDisks(this.#plan);
    for (const disk of created) this.#info(`created blk image ${disk.path} (${formatBytes(disk.sizeBytes)}, ${disk.owner})`);
    for (const vm of this.#plan.vms) {
      await writeFile(`${vm.dir}/qemu.cmdline`, `${commandLine(safeFindQemu(this.#opts.qemu), vm.argv)}\n`).catch(() => {});
    }
  }

  #openSockets(): void {
    for (const b of this.#plan.backends) {
      if (processCreatesSockets(b)) continue;
      for (const p of b.ports) {
        try {
          this.#listenFds.set(p.socket, listenAt(p.socket));
          this.#socketInodes.set(p.socket, lstatSync(p.socket).ino);
        } catch (e: unknown) {
          throw new BackendStartError(b.id, errorText(e), { cause: e });
        }
      }
    }
  }

  /** The socket files of `b` that are not the ones this process listens on any more (removed or replaced). */
  #lostSockets(b: BackendPlan): string[] {
    return b.ports
      .map((p) => p.socket)
      .filter((socket) => {
        const want = this.#socketInodes.get(socket);
        if (want === undefined) return false; // a process that makes its own sockets (a switch, a vsock group)
        try {
          return lstatSync(socket).ino !== want;
        } catch {
          return true;
        }
      });
  }

  /**
   * Before a VM starts again: its QEMU would connect to a socket file that is not the one the
   * running back-end listens on. Making a new file would not help (the running back-end accepts on
   * the old socket), so this refuses precisely; restarting the back-end makes the file again.
   * @throws ControlRefusedError
   */
  #checkSocketsFor(vm: string, b: BackendPlan): void {
    const lost = this.#lostSockets(b);
    if (lost.length === 0) return;
    throw new ControlRefusedError(`cannot start VM ${vm}: the socket ${lost.join(', ')} of its back-end ${b.id} was removed or replaced while the run went on, so QEMU could not reach the back-end; restart the back-end (it listens at a new socket file then), then start the VM`);
  }

  /**
   * Before a stopped or crashed back-end starts again (QEMU has to connect again): a socket file of
   * `b` removed while the run went on is made again. The old listening fd still served the live
   * connections, but QEMU connects by path, so without the file it would retry forever (a
   * restarted back-end). A file there that is not ours any more (another inode) is taken over only if
   * it is a socket nobody listens on (listenAt refuses anything else, and the restart fails with
   * that reason).
   * @throws BackendStartError when the socket cannot be made again
   */
  #remakeRemovedSockets(b: BackendPlan): void {
    const lost = this.#lostSockets(b);
    for (const [i, p] of b.ports.entries()) {
      const old = this.#listenFds.get(p.socket);
      if (old === undefined || !lost.includes(p.socket)) continue;
      const what = existsQuiet(p.socket) ? 'was replaced by another file' : 'was removed';
      let fd: number;
      try {
        fd = listenAt(p.socket);
        this.#socketInodes.set(p.socket, lstatSync(p.socket).ino);
      } catch (e: unknown) {
        throw new BackendStartError(b.id, `its socket ${p.socket} ${what} while the run went on, and cannot be made again: ${errorText(e)}`, { cause: e });
      }
      closeQuiet(old);
      this.#listenFds.set(p.socket, fd);
      this.#backends.find((x) => x.plan === b)?.handle.replaceListenFd(i, fd);
      this.#error(`back-end ${b.id}: its socket ${p.socket} ${what} while the run went on; listening at a new one there so QEMU can connect again`);
    }
  }

  async #startBackends(): Promise<void> {
    for (const plan of this.#plan.backends) {
      const entry: BackendEntry = {
        plan,
        state: 'starting',
        restarts: [],
        handle: createBackendHandle({
          plan,
          listenFds: plan.ports.map((p) => this.#listenFds.get(p.socket) ?? -1),
          onCrash: (exit) => void this.#onBackendCrash(entry, exit),
          sharedLoop: this.#sharedLoop,
        }),
      };
      this.#backends.push(entry);
    }
    const results = await Promise.allSettled(
      this.#backends.map(async (b) => {
        await b.handle.start();
        b.state = 'running';
        this.#info(`back-end ${b.plan.id} serving (${describeBackend(b)})`);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #startVms(readyPatterns: Map<string, RegExp | undefined>): Promise<void> {
    for (const plan of this.#plan.vms) {
      const log = createWriteStream(plan.consoleLog, { flags: 'a' });
      log.on('error', () => {});
      const entry: VmEntry = {
        plan,
        status: { name: plan.name, state: 'pending', backends: plan.backends, ...watchdogStatus(plan) },
        ready: readyPatterns.get(plan.name),
        vm: undefined,
        log,
        tail: [],
        stopRequested: false,
        qmp: undefined,
        restartAfterExit: false,
        restartTimes: [],
      };
      this.#vms.push(entry);
      if (plan.qmp !== undefined) entry.qmp = await QmpListener.listen(plan.qmp, (session) => this.#onQmpSession(entry, session));
    }
    for (const entry of this.#vms) {
      if (this.#finished !== undefined) return;
      await this.#spawnVm(entry);
    }
  }

  /** Starts the QEMU of `entry` (again), with a fresh status. */
  async #spawnVm(entry: VmEntry): Promise<void> {
    for (const b of this.#backends) if (b.plan.vms.includes(entry.plan.name)) this.#checkSocketsFor(entry.plan.name, b.plan);
    const vm = await QemuVm.spawn(findQemu(this.#opts.qemu?.binary, this.#opts.qemu?.env), entry.plan.argv, {
      ...this.#opts.qemu,
      echo: (line) => this.#onConsole(entry, line),
    });
    entry.vm = vm;
    entry.stopRequested = false;
    entry.restartAfterExit = false;
    const before = entry.status;
    entry.status = {
      name: entry.plan.name,
      state: 'booting',
      pid: vm.pid,
      startedAt: Date.now(),
      backends: entry.plan.backends,
      // The watchdog's count and the restarts are the VM's over the whole run, not one QEMU's.
      ...(before.watchdog === undefined ? {} : { watchdog: before.watchdog }),
      ...(before.restarts === undefined ? {} : { restarts: before.restarts }),
    };
    this.#info(`VM ${entry.plan.name} started (QEMU pid ${vm.pid}, console ${entry.plan.consoleLog})`);
    // QEMU's last QMP events (a WATCHDOG before a poweroff) are read before its exit is handled:
    // its QMP connection closes when it exits, after everything it sent.
    const session = (): Promise<void> => entry.qmp?.current?.closed ?? Promise.resolve();
    // A late exit of a QEMU this entry no longer runs (stopped, then started again) changes nothing.
    void vm.exited.then(async (exit) => {
      await boundedWait(session(), QMP_DRAIN_MS);
      if (entry.vm === vm) this.#onVmExit(entry, exit);
    });
  }

  // -------------------------------------------------------------------------------------------
  // QMP: watchdog events, balloon

  #onQmpSession(entry: VmEntry, session: QmpSession): void {
    session.onEvent((e) => this.#onQmpEvent(entry, e));
    session.ready.catch((e: unknown) => this.#error(`VM ${entry.plan.name}: ${errorText(e)}`));
  }

  #onQmpEvent(entry: VmEntry, e: QmpEvent): void {
    if (e.event !== 'WATCHDOG') return;
    const wd = entry.status.watchdog;
    const configured = entry.plan.watchdog?.action ?? 'reset';
    const qemuAction = typeof e.data['action'] === 'string' ? e.data['action'] : 'unknown';
    if (wd !== undefined) {
      wd.fired += 1;
      wd.lastFiredAt = e.at;
    }
    const what =
      configured === 'restart-vm'
        ? 'restart-vm (QEMU powers off; avp run starts the VM again)'
        : configured === 'poweroff'
          ? 'poweroff (QEMU powers off)'
          : 'reset (QEMU resets the guest)';
    this.#error(`watchdog fired on VM ${entry.plan.name}: ${what}; QEMU action ${qemuAction}, ${wd?.fired ?? 1} time(s) in this run`);
    if (this.#finished !== undefined) return;
    if (configured === 'reset') {
      // The guest boots again in the same QEMU: it is booting until its ready line comes again.
      delete entry.status.readyAt;
      delete entry.status.guestStatus;
      if (entry.status.state === 'ready') entry.status.state = 'booting';
    } else if (configured === 'restart-vm') {
      entry.restartAfterExit = true;
    } else {
      entry.status.reason = `its watchdog fired (timeout ${entry.plan.watchdog?.timeoutSeconds ?? '?'} s)`;
    }
  }

  /**
   * The balloon of `vm`: sets its target to `targetBytes` when given (QMP balloon), then reports
   * the guest's size now (QMP query-balloon). The guest moves towards a target over time.
   * @throws ControlTargetError (no such VM, no balloon), ControlRefusedError (not running, target out of range), QmpError
   */
  async balloon(vm: string, targetBytes?: number): Promise<BalloonInfo> {
    const entry = this.#vms.find((v) => v.plan.name === vm);
    if (entry === undefined) throw new ControlTargetError(`this run has no VM '${vm}' (yet)`);
    if (!entry.plan.balloon) throw new ControlTargetError(`VM ${vm} has no balloon (give it balloon: {} in the manifest)`);
    const session = entry.qmp?.current;
    // A run that is ending has stopped (or is stopping) its VMs even before their exits are handled.
    if (this.#finished !== undefined || entry.vm === undefined || entry.status.endedAt !== undefined || session === undefined) {
      throw new ControlRefusedError(`VM ${vm} is not running${this.#finished === undefined ? '' : ' (the run is ending)'}`);
    }
    const memory = (entry.plan.spec.memoryMiB ?? DEFAULT_MEMORY_MIB) * 2 ** 20;
    if (targetBytes !== undefined) {
      const min = MIN_BALLOON_TARGET_MIB * 2 ** 20;
      if (!Number.isSafeInteger(targetBytes) || targetBytes < min || targetBytes > memory) {
        throw new ControlRefusedError(`a balloon target for VM ${vm} must be from ${formatBytes(min)} to its memory, ${formatBytes(memory)}; got ${Number.isFinite(targetBytes) ? formatBytes(targetBytes) : String(targetBytes)}`);
      }
      await session.execute('balloon', { value: targetBytes });
      this.#info(`VM ${vm}: balloon target ${formatBytes(targetBytes)} of ${formatBytes(memory)}`);
    }
    const info = (await session.execute('query-balloon')) as { actual?: unknown }; // QEMU's BalloonInfo; actual checked below
    const actual = typeof info.actual === 'number' ? info.actual : memory;
    return { vm, actual, memory, ...(targetBytes === undefined ? {} : { target: targetBytes }) };
  }

  // -------------------------------------------------------------------------------------------
  // Watch

  #onConsole(entry: VmEntry, line: string): void {
    entry.log.write(`${line}\n`);
    entry.tail.push(line);
    if (entry.tail.length > CONSOLE_TAIL_LINES) entry.tail.shift();
    this.#emit({ type: 'console-line', vm: entry.plan.name, line });
    if (entry.plan.echo) this.#opts.reporter.console(entry.plan.name, line);
    const exit = EXIT_LINE.exec(line);
    if (exit !== null && entry.plan.builtin) entry.status.guestStatus = Number(exit[1]);
    if (entry.status.readyAt === undefined && entry.ready?.test(line) === true) {
      entry.status.readyAt = Date.now();
      if (entry.status.state === 'booting') entry.status.state = 'ready';
      const secs = ((entry.status.readyAt - (entry.status.startedAt ?? this.#startedAt)) / 1000).toFixed(1);
      this.#info(`VM ${entry.plan.name} is ready (${secs} s)`);
      if (this.#opts.untilReady === true && this.#vms.every((v) => v.status.readyAt !== undefined)) {
        this.#finish({ exitCode: 0, reason: `every VM is ready (${this.#vms.length})` });
      }
    }
  }

  #onVmExit(entry: VmEntry, exit: VmExit): void {
    const st = entry.status;
    st.exit = exit;
    st.endedAt = Date.now();
    for (const l of entry.vm?.stderrLines ?? []) entry.log.write(`[qemu stderr] ${l}\n`);
    if (this.#finished !== undefined) {
      if (st.state === 'booting' || st.state === 'ready') st.state = 'stopped';
      return;
    }
    if (entry.restartAfterExit && !entry.stopRequested) {
      entry.restartAfterExit = false;
      void this.#restartVm(entry);
      return;
    }
    if (entry.stopRequested) {
      st.state = 'stopped';
      st.reason = 'stopped on request';
      this.#info(`VM ${entry.plan.name} stopped on request`);
      this.#endIfAllEnded();
      return;
    }
    const how = exit.signal === null ? `status ${String(exit.code)}` : `signal ${exit.signal}`;
    let ok: boolean;
    let what: string;
    if (st.reason !== undefined) {
      ok = false;
      what = `was stopped: ${st.reason}`;
    } else if (entry.plan.builtin) {
      ok = st.guestStatus === 0;
      what = st.guestStatus === undefined ? `exited (QEMU ${how}) before its guest script ended` : `powered off (guest script exit status ${st.guestStatus})`;
    } else {
      ok = exit.code === 0 && exit.signal === null;
      what = `powered off (QEMU ${how})`;
    }
    st.state = ok ? 'exited' : 'failed';
    if (!ok && st.reason === undefined) st.reason = what;
    if (ok) this.#info(`VM ${entry.plan.name} ${what}`);
    else {
      const stderr = entry.vm?.stderrLines.slice(-5) ?? [];
      this.#error(`VM ${entry.plan.name} ${what}${stderr.length > 0 ? `; QEMU said:\n${stderr.map((l) => `  ${l}`).join('\n')}` : ''}`);
    }
    if (this.#opts.untilReady === true) {
      if (!ok) return this.#finish({ exitCode: 1, reason: `VM ${entry.plan.name} ${what}` });
      if (st.readyAt === undefined) {
        return this.#finish({ exitCode: 1, reason: `VM ${entry.plan.name} powered off before it printed a line matching ${String(entry.ready)}` });
      }
    }
    this.#endIfAllEnded();
  }

  /** Starts a VM whose watchdog fired with `restart-vm` again, within the restart limit. */
  async #restartVm(entry: VmEntry): Promise<void> {
    const name = entry.plan.name;
    const limit = this.#opts.restartLimit ?? { count: 5, windowMs: 60_000 };
    const now = Date.now();
    entry.restartTimes = entry.restartTimes.filter((t) => now - t < limit.windowMs);
    if (entry.restartTimes.length >= limit.count) {
      entry.status.state = 'failed';
      entry.status.reason = `its watchdog fired ${limit.count} times within ${limit.windowMs / 1000} s; not restarting it again`;
      this.#error(`VM ${name}: ${entry.status.reason}`);
      if (this.#opts.untilReady === true) return this.#finish({ exitCode: 1, reason: `VM ${name} ${entry.status.reason}` });
      return this.#endIfAllEnded();
    }
    entry.restartTimes.push(now);
    entry.status.restarts = (entry.status.restarts ?? 0) + 1;
    this.#info(`restarting VM ${name} after its watchdog fired (restart ${entry.restartTimes.length} of at most ${limit.count} in ${limit.windowMs / 1000} s)`);
    try {
      await this.#spawnVm(entry);
    } catch (e: unknown) {
      entry.status.state = 'failed';
      entry.status.reason = `restart after its watchdog fired failed: ${errorText(e)}`;
      this.#error(`VM ${name}: ${entry.status.reason}`);
      if (this.#opts.untilReady === true) return this.#finish({ exitCode: 1, reason: `VM ${name} ${entry.status.reason}` });
      this.#endIfAllEnded();
    }
  }

  /** Ends the run when every VM has ended, unless it is to stay up (or must wait until every VM is ready). */
  #endIfAllEnded(): void {
    if (this.#opts.stayUp === true || this.#opts.untilReady === true) return;
    if (!this.#vms.every((v) => v.status.endedAt !== undefined)) return;
    const failed = this.#vms.filter((v) => v.status.state === 'failed').map((v) => v.plan.name);
    this.#finish(
      failed.length === 0
        ? { exitCode: 0, reason: `every VM powered off successfully (${this.#vms.length})` }
        : { exitCode: 1, reason: `every VM has powered off; failed: ${failed.join(', ')}` },
    );
  }

  async #onBackendCrash(b: BackendEntry, exit: BackendExit): Promise<void> {
    if (this.#finished !== undefined) return;
    const how = exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`;
    const tail = exit.tail.slice(-5).map((l) => `  ${l}`).join('\n');
    const runs = describeIsolation(b.plan.isolation, exit.pid);
    this.#error(`back-end ${b.plan.id} (${runs}) exited unexpectedly (${how})${tail === '' ? '' : `; last log lines:\n${tail}`}`);
    const limit = this.#opts.restartLimit ?? { count: 5, windowMs: 60_000 };
    const now = Date.now();
    b.restarts = b.restarts.filter((t) => now - t < limit.windowMs);
    if (b.plan.restart === 'on-failure' && b.restarts.length < limit.count) {
      b.restarts.push(now);
      b.state = 'restarting';
      this.#info(`restarting back-end ${b.plan.id} (restart ${b.restarts.length} of at most ${limit.count} in ${limit.windowMs / 1000} s)`);
      try {
        this.#remakeRemovedSockets(b.plan);
        await b.handle.start();
        b.state = 'running';
        this.#info(`back-end ${b.plan.id} restarted (${describeBackend(b)}); QEMU reconnects to ${b.plan.ports.map((p) => p.socket).join(', ')}`);
        return;
      } catch (e: unknown) {
        if (this.#finished !== undefined) return; // the run is stopping; that stopped the restart
        this.#error(errorText(e));
      }
    } else if (b.plan.restart === 'on-failure') {
      this.#error(`back-end ${b.plan.id} failed ${limit.count} times within ${limit.windowMs / 1000} s; not restarting it again`);
    }
    b.state = 'failed';
    if (this.#vms.every((v) => v.vm === undefined)) {
      // No VM has started yet: they would connect to a socket nobody serves. End the run instead.
      this.#finish({ exitCode: 1, reason: `back-end ${b.plan.id} failed before the VMs started` });
      return;
    }
    const why = b.plan.restart === 'on-failure' ? '' : `; ${noRestartReason(b.plan)}`;
    for (const name of b.plan.vms) {
      const v = this.#vms.find((x) => x.plan.name === name);
      if (v?.vm === undefined || v.status.endedAt !== undefined) continue;
      v.status.reason = `its back-end ${b.plan.id} failed`;
      this.#error(`stopping VM ${name}: its back-end ${b.plan.id} failed${why}`);
      void v.vm.kill();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Control requests (checked by act)

  async #actOnVm(req: ControlRequest): Promise<string> {
    // Safe: act() checked that the VM exists.
    const entry = this.#vms.find((v) => v.plan.name === req.name)!;
    const running = entry.vm !== undefined && entry.status.endedAt === undefined;
    if (running && req.action !== 'start') {
      entry.stopRequested = true;
      this.#info(`stopping VM ${req.name} on request`);
      await entry.vm?.kill();
      await entry.vm?.exited;
      if (req.action === 'stop') return `VM ${req.name} stopped`;
    }
    if (this.#finished !== undefined) throw new ControlRefusedError('the run is stopping');
    await this.#spawnVm(entry);
    return `VM ${req.name} started (QEMU pid ${entry.status.pid ?? '-'})`;
  }

  async #actOnBackend(req: ControlRequest): Promise<string> {
    // Safe: act() checked that the back-end exists.
    const b = this.#backends.find((x) => x.plan.id === req.name)!;
    if (req.action !== 'start' && b.state === 'running') {
      this.#info(`stopping back-end ${b.plan.id} on request`);
      await b.handle.stop();
      b.state = 'stopped';
      this.#info(`back-end ${b.plan.id} stopped on request; QEMU reconnects once it serves again`);
      if (req.action === 'stop') return `back-end ${b.plan.id} stopped`;
    }
    if (this.#finished !== undefined) throw new ControlRefusedError('the run is stopping');
    b.state = 'starting';
    try {
      this.#remakeRemovedSockets(b.plan);
      await b.handle.start();
    } catch (e: unknown) {
      b.state = 'failed';
      this.#error(errorText(e));
      throw e;
    }
    b.state = 'running';
    this.#info(`back-end ${b.plan.id} started on request (${describeBackend(b)}); QEMU reconnects to ${b.plan.ports.map((p) => p.socket).join(', ')}`);
    return `back-end ${b.plan.id} serving (${describeBackend(b)})`;
  }

  #timeoutReason(ms: number): string {
    const s = `${Math.round(ms / 1000)} s`;
    if (this.#opts.untilReady === true) {
      const waiting = this.#vms.filter((v) => v.status.readyAt === undefined).map((v) => `${v.plan.name} (${v.status.state})`);
      const pending = waiting.length > 0 ? waiting.join(', ') : 'the VMs have not started';
      return `timed out after ${s}: not ready: ${pending}`;
    }
    const running = this.#vms.filter((v) => v.status.endedAt === undefined).map((v) => v.plan.name);
    return `timed out after ${s}; still running: ${running.join(', ') || '(none started)'}`;
  }

  // -------------------------------------------------------------------------------------------
  // Stop

  async #shutdown(): Promise<void> {
    await Promise.all(this.#vms.map(async (v) => v.vm?.kill()));
    await Promise.all(this.#vms.map(async (v) => v.qmp?.close()));
    await Promise.all(
      this.#backends.map(async (b) => {
        await b.handle.stop().catch((e: unknown) => this.#error(`stopping back-end ${b.plan.id}: ${errorText(e)}`));
        if (b.state !== 'failed') b.state = 'stopped';
        await b.handle.close();
      }),
    );
    await this.#sharedLoop.stop().catch((e: unknown) => this.#error(`stopping the shared back-end thread: ${errorText(e)}`));
    for (const [socket, fd] of this.#listenFds) {
      closeQuiet(fd);
      unlinkQuiet(socket);
    }
    this.#listenFds.clear();
    this.#socketInodes.clear();
    // Sockets back-end processes made (and left, if they were killed), and vsock host sides.
    for (const s of [...this.#plan.sockets, ...this.#plan.hostSockets]) if (isSocket(s)) unlinkQuiet(s);
    await Promise.all(this.#vms.map((v) => new Promise<void>((resolve) => v.log.end(resolve))));
  }

  // -------------------------------------------------------------------------------------------
  // Output

  #info(message: string): void {
    this.#runLog?.write(`${new Date().toISOString()} ${message}\n`);
    this.#opts.reporter.info(message);
    this.#emit({ type: 'log', level: 'info', message, at: Date.now() });
  }

  #error(message: string): void {
    this.#runLog?.write(`${new Date().toISOString()} error: ${message}\n`);
    this.#opts.reporter.error(message);
    this.#emit({ type: 'log', level: 'error', message, at: Date.now() });
  }

  #emit(e: RunEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // an observer's failure must not disturb the run
      }
    }
  }
}

/** How long a VM's exit waits for the rest of its QMP events (the connection closes as QEMU exits). */
const QMP_DRAIN_MS = 5_000;

/** Resolves when `p` settles or after `ms`, whichever is first. */
async function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function watchdogStatus(plan: VmPlan): Pick<VmStatus, 'watchdog'> {
  return plan.watchdog === undefined ? {} : { watchdog: { action: plan.watchdog.action, timeoutSeconds: plan.watchdog.timeoutSeconds, fired: 0 } };
}

function qmpSockets(plan: PlatformPlan): string[] {
  return plan.vms.flatMap((v) => (v.qmp === undefined ? [] : [v.qmp]));
}

function describeBackend(b: BackendEntry): string {
  return describeIsolation(b.plan.isolation, b.handle.pid);
}

/** Exit status for an abort: 128 + the signal number when the reason is a signal name. */
function abortOutcome(reason: unknown): { exitCode: number; reason: string } {
  const name = typeof reason === 'string' ? reason : undefined;
  const signals = osConstants.signals as Record<string, number | undefined>; // the signal-name table
  const num = name === undefined ? undefined : signals[name];
  return { exitCode: num === undefined ? 1 : 128 + num, reason: `stopped by ${name ?? 'request'}` };
}

/**
 * Why a failed back-end with `restart: no` is not started again, for the report: either the
 * manifest says so, or QEMU's front-end for its kind cannot reconnect to a new back-end (so the
 * manifest does not offer restart: on-failure for it, and the device would stay dead in that QEMU).
 */
function noRestartReason(b: BackendPlan): string {
  const frontend = findKind(b.kind)?.frontend;
  if (frontend === undefined || frontend.reconnect === true) return 'it has restart: no';
  const before = typeof frontend.reconnect === 'string' ? ` before QEMU ${frontend.reconnect}` : '';
  return `QEMU's ${frontend.qemuDevice} cannot reconnect to a restarted back-end${before} (restart: on-failure is refused for ${b.kind}), so the device would stay dead in this QEMU; start the run again to get it back`;
}

function existsQuiet(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The QEMU binary for the record (qemu.cmdline); the bare name when it is not installed. */
function safeFindQemu(qemu: RunPlatformOptions['qemu']): string {
  try {
    return findQemu(qemu?.binary, qemu?.env);
  } catch {
    return qemu?.binary ?? 'qemu-system-x86_64';
  }
}
