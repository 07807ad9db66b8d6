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
 * Owns: that sequence and the crash policy. Does not own: the argv (plan.ts, qemu.ts), how a
 * back-end runs (launch.ts), output formatting (the reporter and the CLI).
 */
import { createWriteStream, lstatSync, type WriteStream } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { closeQuiet, unlinkQuiet } from '../../sys/index.js';
import { listenAt } from '../../vhost-user/server.js';
import { BackendStartError, BackendUnavailableError, PlatformPlanError, RunDirError } from '../errors.js';
import { EXIT_LINE } from '../image/markers.js';
import { commandLine, type BackendPlan, type PlatformPlan, type VmPlan } from '../manifest/plan.js';
import { formatBytes } from '../manifest/units.js';
import { QemuVm, findQemu, type QemuVmOptions, type VmExit } from '../qemu.js';
import { createBackendHandle, processCreatesSockets, unavailableReason, type BackendExit, type BackendHandle, type PortState } from './launch.js';
import { errorText } from '../../errors.js';

/** Where the supervisor's output goes (the CLI prints it; tests collect it). */
export interface RunReporter {
  /** A console line of a VM whose console is echoed. */
  console(vm: string, line: string): void;
  info(message: string): void;
  error(message: string): void;
}

export interface RunPlatformOptions {
  plan: PlatformPlan;
  reporter: RunReporter;
  /** End with 0 as soon as every VM is ready (`--headless`, `--until`). */
  untilReady?: boolean;
  /** Replaces each VM's ready pattern. */
  until?: RegExp;
  /** End with 1 when the run has not ended by then. */
  timeoutMs?: number;
  /** Aborting stops the run; a signal name as the reason (`'SIGTERM'`) sets the exit status. */
  signal?: AbortSignal;
  /** QEMU binary, environment, kill grace. */
  qemu?: Pick<QemuVmOptions, 'binary' | 'env' | 'killGraceMs'>;
  /** At most `count` restarts of one back-end within `windowMs`; default 5 in 60 s. */
  restartLimit?: { count: number; windowMs: number };
}

export type VmStateName = 'pending' | 'booting' | 'ready' | 'exited' | 'failed' | 'stopped';

export interface VmStatus {
  name: string;
  state: VmStateName;
  pid?: number;
  startedAt?: number;
  readyAt?: number;
  endedAt?: number;
  /** From the built-in image's `AVP-GUEST: EXIT n` line. */
  guestStatus?: number;
  exit?: VmExit;
  /** Why it failed or was stopped. */
  reason?: string;
}

export type BackendStateName = 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

export interface BackendStatus {
  id: string;
  kind: string;
  isolation: 'thread' | 'process';
  state: BackendStateName;
  pid?: number;
  restarts: number;
  ports: PortState[];
}

export interface RunSnapshot {
  name: string;
  runDir: string;
  /** Date.now() when the run started. */
  startedAt: number;
  vms: VmStatus[];
  backends: BackendStatus[];
}

export interface RunResult {
  exitCode: number;
  /** One line: why the run ended. */
  reason: string;
  snapshot: RunSnapshot;
}

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
}

interface BackendEntry {
  plan: BackendPlan;
  handle: BackendHandle;
  state: BackendStateName;
  restarts: number[];
}

/** One run. `snapshot()` and `refreshMetrics()` may be called while `run()` is under way. */
export class PlatformRun {
  readonly #opts: RunPlatformOptions;
  readonly #plan: PlatformPlan;
  readonly #vms: VmEntry[] = [];
  readonly #backends: BackendEntry[] = [];
  readonly #listenFds = new Map<string, number>();
  readonly #startedAt = Date.now();
  #runLog: WriteStream | undefined;
  #finished: { exitCode: number; reason: string } | undefined;
  #finish: (r: { exitCode: number; reason: string }) => void = () => {};
  readonly #outcome: Promise<{ exitCode: number; reason: string }>;

  constructor(options: RunPlatformOptions) {
    this.#opts = options;
    this.#plan = options.plan;
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
      vms: this.#vms.map((v) => ({ ...v.status })),
      backends: this.#backends.map((b) => ({
        id: b.plan.id,
        kind: b.plan.kind,
        isolation: b.plan.isolation,
        state: b.state,
        ...(b.handle.pid === undefined ? {} : { pid: b.handle.pid }),
        restarts: b.restarts.length,
        ports: [...b.handle.ports.values()].map((p) => ({ ...p })),
      })),
    };
  }

  /** Asks every running back-end for its counters (for the status display). */
  async refreshMetrics(): Promise<void> {
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
      for (const socket of [...this.#plan.sockets, ...this.#plan.hostSockets]) if (isSocket(socket)) unlinkQuiet(socket);
    };
    process.on('exit', removeSockets);
    let outcome: { exitCode: number; reason: string };
    try {
      await this.#prepare();
      this.#openSockets();
      if (this.#finished === undefined) await this.#startBackends();
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
      await this.#shutdown();
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
    const plan = this.#plan;
    try {
      for (const dir of plan.dirs) await mkdir(dir, { recursive: true });
    } catch (e: unknown) {
      throw new RunDirError(`cannot create the run directory ${plan.runDir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e }); // fs errors carry a code
    }
    this.#runLog = createWriteStream(plan.runLog, { flags: 'a' });
    this.#runLog.on('error', () => {}); // a full disk must not end the run; the terminal still shows everything
    this.#info(`run directory ${plan.runDir}`);
    for (const disk of plan.disks) {
      let handle;
      try {
        handle = await open(disk.path, 'wx', 0o644);
      } catch (e: unknown) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue; // an existing image is used as it is
        throw new RunDirError(`cannot create the blk image ${disk.path} (${disk.owner}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      }
      try {
        await handle.truncate(disk.sizeBytes); // sparse: takes no space until the guest writes
      } finally {
        await handle.close();
      }
      this.#info(`created blk image ${disk.path} (${formatBytes(disk.sizeBytes)}, ${disk.owner})`);
    }
    for (const vm of plan.vms) {
      await writeFile(`${vm.dir}/qemu.cmdline`, `${commandLine(safeFindQemu(this.#opts.qemu), vm.argv)}\n`).catch(() => {});
    }
  }

  #openSockets(): void {
    for (const b of this.#plan.backends) {
      if (processCreatesSockets(b)) continue;
      for (const p of b.ports) {
        try {
          this.#listenFds.set(p.socket, listenAt(p.socket));
        } catch (e: unknown) {
          throw new BackendStartError(b.id, errorText(e), { cause: e });
        }
      }
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
      const entry: VmEntry = { plan, status: { name: plan.name, state: 'pending' }, ready: readyPatterns.get(plan.name), vm: undefined, log };
      this.#vms.push(entry);
    }
    for (const entry of this.#vms) {
      if (this.#finished !== undefined) return;
      const vm = await QemuVm.spawn(findQemu(this.#opts.qemu?.binary, this.#opts.qemu?.env), entry.plan.argv, {
        ...this.#opts.qemu,
        echo: (line) => this.#onConsole(entry, line),
      });
      entry.vm = vm;
      entry.status = { ...entry.status, state: 'booting', pid: vm.pid, startedAt: Date.now() };
      this.#info(`VM ${entry.plan.name} started (QEMU pid ${vm.pid}, console ${entry.plan.consoleLog})`);
      void vm.exited.then((exit) => this.#onVmExit(entry, exit));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Watch

  #onConsole(entry: VmEntry, line: string): void {
    entry.log.write(`${line}\n`);
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
    if (this.#vms.every((v) => v.status.endedAt !== undefined)) {
      const failed = this.#vms.filter((v) => v.status.state === 'failed').map((v) => v.plan.name);
      this.#finish(
        failed.length === 0
          ? { exitCode: 0, reason: `every VM powered off successfully (${this.#vms.length})` }
          : { exitCode: 1, reason: `every VM has powered off; failed: ${failed.join(', ')}` },
      );
    }
  }

  async #onBackendCrash(b: BackendEntry, exit: BackendExit): Promise<void> {
    if (this.#finished !== undefined) return;
    const how = exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`;
    const tail = exit.tail.slice(-5).map((l) => `  ${l}`).join('\n');
    const runs = exit.pid === undefined ? 'thread' : `process ${exit.pid}`;
    this.#error(`back-end ${b.plan.id} (${runs}) exited unexpectedly (${how})${tail === '' ? '' : `; last log lines:\n${tail}`}`);
    const limit = this.#opts.restartLimit ?? { count: 5, windowMs: 60_000 };
    const now = Date.now();
    b.restarts = b.restarts.filter((t) => now - t < limit.windowMs);
    if (b.plan.restart === 'on-failure' && b.restarts.length < limit.count) {
      b.restarts.push(now);
      b.state = 'restarting';
      this.#info(`restarting back-end ${b.plan.id} (restart ${b.restarts.length} of at most ${limit.count} in ${limit.windowMs / 1000} s)`);
      try {
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
    for (const name of b.plan.vms) {
      const v = this.#vms.find((x) => x.plan.name === name);
      if (v?.vm === undefined || v.status.endedAt !== undefined) continue;
      v.status.reason = `its back-end ${b.plan.id} failed`;
      this.#error(`stopping VM ${name}: its back-end ${b.plan.id} failed`);
      void v.vm.kill();
    }
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
    await Promise.all(
      this.#backends.map(async (b) => {
        await b.handle.stop().catch((e: unknown) => this.#error(`stopping back-end ${b.plan.id}: ${errorText(e)}`));
        if (b.state !== 'failed') b.state = 'stopped';
        await b.handle.close();
      }),
    );
    for (const [socket, fd] of this.#listenFds) {
      closeQuiet(fd);
      unlinkQuiet(socket);
    }
    this.#listenFds.clear();
    // Sockets back-end processes made (and left, if they were killed), and vsock host sides.
    for (const s of [...this.#plan.sockets, ...this.#plan.hostSockets]) if (isSocket(s)) unlinkQuiet(s);
    await Promise.all(this.#vms.map((v) => new Promise<void>((resolve) => v.log.end(resolve))));
  }

  // -------------------------------------------------------------------------------------------
  // Output

  #info(message: string): void {
    this.#runLog?.write(`${new Date().toISOString()} ${message}\n`);
    this.#opts.reporter.info(message);
  }

  #error(message: string): void {
    this.#runLog?.write(`${new Date().toISOString()} error: ${message}\n`);
    this.#opts.reporter.error(message);
  }
}

function describeBackend(b: BackendEntry): string {
  return b.plan.isolation === 'process' ? `process ${String(b.handle.pid ?? '-')}` : 'thread';
}

/** Exit status for an abort: 128 + the signal number when the reason is a signal name. */
function abortOutcome(reason: unknown): { exitCode: number; reason: string } {
  const name = typeof reason === 'string' ? reason : undefined;
  const signals = osConstants.signals as Record<string, number | undefined>; // the signal-name table
  const num = name === undefined ? undefined : signals[name];
  return { exitCode: num === undefined ? 1 : 128 + num, reason: `stopped by ${name ?? 'request'}` };
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
