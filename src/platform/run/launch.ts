// SPDX-License-Identifier: Apache-2.0
/**
 * Starting the back-ends of a planned platform: which back-ends this build can run, and the two
 * ways to run one. `isolation: thread` runs it in a worker thread of this process
 * (`BackendThread`); `isolation: process` runs `avp serve <kind> --fd 3` as a child process that
 * inherits the listening socket. For those the supervisor owns the listening sockets, so a
 * restarted back-end serves the very socket QEMU reconnects to. Back-ends serving several VMs run
 * as processes through SHARED_PROCESS_COMMANDS, programs that create their sockets themselves.
 *
 * Owns: availability (`unavailableReason`), the `avp serve` argv for a device (`serveArgv`), and
 * the `BackendHandle`s: start, stop, crash notification, logs to the run directory, connection
 * state and counters for the status display.
 * Does not own: the policy on a crash (supervisor.ts), socket files (supervisor.ts), devices
 * (the registry builds them in the worker or in the child).
 *
 * Adding a back-end kind: a device kind in DEVICE_KINDS (src/devices/registry.ts) makes its
 * devices start here with no other change, as threads, and as `avp serve` processes when its
 * options have `avp serve` flags. Back-ends that serve several VMs (a switch; the vsock devices of
 * VMs that talk to each other) run as threads, or as processes through SHARED_PROCESS_COMMANDS
 * (`avp switch`; `avp serve vsock --vm ...`), which create their sockets themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toServeFlags } from '../../devices/options.js';
import { findKind } from '../../devices/registry.js';
import { errorText } from '../../errors.js';
import { BackendThread, type LoopTuning } from '../../vhost-user/server.js';
import { BACKEND_WORKER_ENTRY } from '../backends.js';
import { BackendStartError } from '../errors.js';
import type { BackendPlan, PortPlan } from '../manifest/plan.js';
import { InProcessBusBackend, canbusArgv } from './canbus-backend.js';

/** The `avp` program (bin/avp.js of this package): this file is <pkg>/{src,dist}/platform/run/launch.*. */
export const AVP_BIN = fileURLToPath(new URL('../../../bin/avp.js', import.meta.url));

/** How a back-end that serves several VMs runs as a process of its own. */
export interface SharedProcessCommand {
  /** The argv after the node binary and bin/avp.js. */
  argv(backend: BackendPlan): string[];
  /**
   * 'fds': the program inherits the listening sockets as fds 3, 4, ... in `ports` order; 'paths':
   * it creates them at the ports' paths itself (and replaces the stale file a dead one left).
   */
  sockets: 'fds' | 'paths';
  /** The name the program gives port `p` in its log records (pino's `port` field). */
  portName(p: PortPlan): string;
}

/** `key=value,...` for the programs' port specs (values are paths, names and numbers without commas). */
function spec(fields: Array<[string, unknown]>): string {
  return fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(',');
}

/**
 * Every back-end of a run refuses guest memory that cannot be sealed against shrinking: the runner
 * starts QEMU with `memory-backend-memfd` (seal=on by default, so F_SEAL_SHRINK is already there),
 * which passes, and the window in which a shrunk file could crash a back-end (SIGBUS,
 * docs/reliability.md) is closed for the whole platform.
 */
const SEALED_MEMORY_FLAG = '--require-sealed-memory';
/** The same for the run's thread and shared back-ends. */
const RUN_TUNING: LoopTuning = { requireSealedMemory: true };

/**
 * Process commands of the back-ends that serve several VMs. The options are those plan.ts gives
 * the ports (the net and vsock device kinds' names).
 */
export const SHARED_PROCESS_COMMANDS: Partial<Record<'switch' | 'vsock-group' | 'canbus', SharedProcessCommand>> = {
  // avp switch --port socket=P,name=N,mac=M,priority=N[,rate=B:P] ... --mtu N [--uplink-tap T]
  switch: {
    sockets: 'paths',
    portName: (p) => p.name,
    argv: (b) => {
      const first = b.ports[0]?.spec.options ?? {};
      const ports = b.ports.flatMap((p) => {
        const o = p.spec.options;
        return ['--port', spec([['socket', p.socket], ['name', p.name], ['mac', o['mac']], ['priority', o['priority']], ['rate', o['rate']]])];
      });
      const tap = first['uplinkTap'];
      return ['switch', ...ports, '--mtu', String(first['mtu'] ?? 1500), ...(typeof tap === 'string' ? ['--uplink-tap', tap] : []), SEALED_MEMORY_FLAG];
    },
  },
  // avp canbus --name B --node socket=P,name=N[,receive=F+F][,send=F+F][,rate=R:B] ... [--host-socket S] [--log L] [--replay F ...]
  canbus: {
    sockets: 'paths',
    portName: (p) => p.device,
    argv: (b) => canbusArgv(b),
  },
  // avp serve vsock --vm socket=P,cid=N,uds=U[,allow=A+B] ... (one process, one group)
  'vsock-group': {
    sockets: 'paths',
    portName: (p) => `vsock-${String(p.spec.options['guestCid'])}`,
    argv: (b) => [
      'serve',
      'vsock',
      ...b.ports.flatMap((p) => {
        const o = p.spec.options;
        return ['--vm', spec([['socket', p.socket], ['cid', o['guestCid']], ['uds', o['udsPath']], ['allow', o['allowPeer']]])];
      }),
      SEALED_MEMORY_FLAG,
    ],
  },
};

/** Whether `b` runs as a program that creates its sockets itself (the supervisor must not). A CAN bus always does. */
export function processCreatesSockets(b: BackendPlan): boolean {
  if (b.role === 'canbus') return true;
  return b.isolation === 'process' && b.role !== 'device' && SHARED_PROCESS_COMMANDS[b.role]?.sockets === 'paths';
}

/** How long a back-end may take to start (the worker loads koffi; a process also loads Node). */
export const BACKEND_START_TIMEOUT_MS = 30_000;
/** How long stop() waits for a back-end process after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

/**
 * Why this build cannot run `b`, or undefined when it can. The reasons are what `avp run`
 * prints, so they name what is missing.
 */
export function unavailableReason(b: BackendPlan): string | undefined {
  // A CAN bus is not a device kind: it runs in this process or as `avp canbus`, always available.
  if (b.role === 'canbus') return undefined;
  const kinds = b.role === 'switch' ? ['net'] : [...new Set(b.ports.map((p) => p.spec.kind))];
  for (const kind of kinds) {
    if (findKind(kind) === undefined) {
      const what = kind === 'net' ? 'virtio-net switches are' : `${kind} back-ends are`;
      return `${what} not available in this build (there is no '${kind}' device kind in the device registry yet); avp validate and avp qemu-args accept them`;
    }
  }
  if (b.isolation !== 'process') return undefined;
  if (b.role !== 'device') {
    if (SHARED_PROCESS_COMMANDS[b.role] !== undefined) return undefined;
    return `isolation: process is not available in this build for ${b.role === 'switch' ? 'a switch' : 'vsock devices that talk to each other'}; use isolation: thread`;
  }
  try {
    serveArgv(b);
    return undefined;
  } catch (e: unknown) {
    return `isolation: process is not available for this device: ${errorText(e)}`;
  }
}

/**
 * `serve <kind> --fd 3 --option value ...`: the `avp serve` command line of a one-device back-end
 * whose listening socket is inherited as fd 3. Options map to the kind's flags (`maxBytes` →
 * `--max-bytes`, devices/options.ts toServeFlags).
 * @throws BackendStartError when the kind has no flag for an option.
 */
export function serveArgv(b: BackendPlan): string[] {
  const port = b.ports[0];
  if (b.role !== 'device' || port === undefined || b.ports.length !== 1) throw new BackendStartError(b.id, 'avp serve runs one device');
  const kind = findKind(port.spec.kind);
  if (kind === undefined) throw new BackendStartError(b.id, `no device kind '${port.spec.kind}'`);
  try {
    return ['serve', port.spec.kind, '--fd', '3', ...toServeFlags(kind, port.spec.options), SEALED_MEMORY_FLAG];
  } catch (e: unknown) {
    throw new BackendStartError(b.id, errorText(e), { cause: e });
  }
}

/** How a back-end instance ended. */
export interface BackendExit {
  /** The process that ended (isolation: process). */
  pid?: number;
  /** Thread exit code or process exit status. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last log lines, for the report. */
  tail: string[];
}

/** Connection state and counters of one port. */
export interface PortState {
  name: string;
  connected: boolean;
  /** The latest metrics of the port's device and session (empty until asked). */
  metrics: Record<string, unknown>;
  /** Date.now() when `metrics` arrived (rates of counters are measured against it). */
  metricsAt?: number;
}

export interface BackendHandleOptions {
  plan: BackendPlan;
  /** Listening fds in `plan.ports` order; owned by the caller. */
  listenFds: readonly number[];
  /** Called when a started instance ends without stop() having been called. */
  onCrash: (exit: BackendExit) => void;
  /** The run's one loop thread for `isolation: shared` back-ends (created by the caller, stopped by it). */
  sharedLoop?: SharedLoopThread;
}

/** A running back-end (thread or process) that can be stopped, restarted, and asked for counters. */
export interface BackendHandle {
  readonly plan: BackendPlan;
  /** The child's pid (isolation: process), while it runs. */
  readonly pid: number | undefined;
  readonly ports: ReadonlyMap<string, PortState>;
  /** Starts an instance and resolves once it serves. @throws BackendStartError */
  start(): Promise<void>;
  /** Stops the current instance (no crash report) and resolves when it is gone. Idempotent. */
  stop(): Promise<void>;
  /** Refreshes `ports[*].metrics` (best effort; a busy or dead back-end keeps the old values). */
  refreshMetrics(): Promise<void>;
  /** Closes the log file (after the last stop). */
  close(): Promise<void>;
  /**
   * Serves port `i` on `fd` from the next start() on: the caller listens on a new socket file
   * because the old one was removed while the back-end ran. The caller owns both fds.
   */
  replaceListenFd(i: number, fd: number): void;
}

export function createBackendHandle(opts: BackendHandleOptions): BackendHandle {
  if (opts.plan.role === 'canbus' && opts.plan.isolation !== 'process') return new InProcessBusBackend(opts.plan, opts.onCrash);
  if (opts.plan.isolation === 'process') return new ProcessBackend(opts);
  if (opts.plan.isolation === 'shared') {
    if (opts.sharedLoop === undefined) throw new BackendStartError(opts.plan.id, 'isolation: shared needs the run\'s shared loop thread');
    return new SharedBackend(opts, opts.sharedLoop);
  }
  return new ThreadBackend(opts);
}

/** Shared parts: the log file, the tail kept for crash reports, port states. */
abstract class BaseBackend implements BackendHandle {
  readonly plan: BackendPlan;
  readonly ports = new Map<string, PortState>();
  protected readonly listenFds: number[];
  protected readonly onCrash: (exit: BackendExit) => void;
  readonly #log: WriteStream;
  readonly #tail: string[] = [];

  constructor(opts: BackendHandleOptions) {
    this.plan = opts.plan;
    this.listenFds = [...opts.listenFds];
    this.onCrash = opts.onCrash;
    for (const p of opts.plan.ports) this.ports.set(p.name, { name: p.name, connected: false, metrics: {} });
    this.#log = createWriteStream(opts.plan.log, { flags: 'a' });
    // A log that cannot be written must not take the run down; the run directory was created
    // before, so this is a full disk or similar, and the console shows what matters.
    this.#log.on('error', () => {});
  }

  abstract get pid(): number | undefined;
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract refreshMetrics(): Promise<void>;

  replaceListenFd(i: number, fd: number): void {
    this.listenFds[i] = fd;
  }

  protected log(line: string): void {
    this.#log.write(`${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > 20) this.#tail.shift();
  }

  protected tail(): string[] {
    return [...this.#tail];
  }

  /** A log line from a worker thread serving this back-end's ports. */
  onLog(level: string, msg: string, port?: string): void {
    this.log(`${new Date().toISOString()} ${level} ${port ?? this.plan.id} ${msg}`);
  }

  /** A connection event from a worker thread serving this back-end's ports. */
  onEvent(event: { kind: string }, port?: string): void {
    if (event.kind === 'connected') this.setConnected(port, true);
    else if (event.kind === 'disconnected') this.setConnected(port, false);
  }

  /** Records a connection event of port `name` (undefined, or unknown, with one port: that port). */
  protected setConnected(name: string | undefined, connected: boolean): void {
    const state = (name === undefined ? undefined : this.ports.get(name)) ?? (this.ports.size === 1 ? [...this.ports.values()][0] : undefined);
    if (state !== undefined) state.connected = connected;
  }

  protected setMetrics(byPort: Record<string, unknown>): void {
    for (const [name, value] of Object.entries(byPort)) {
      const state = this.ports.get(name) ?? (this.ports.size === 1 ? [...this.ports.values()][0] : undefined);
      if (state !== undefined && typeof value === 'object' && value !== null) {
        state.metrics = value as Record<string, unknown>; // checked: a non-null object
        state.metricsAt = Date.now();
      }
    }
  }

  protected allDisconnected(): void {
    for (const s of this.ports.values()) s.connected = false;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#log.end(resolve));
  }
}

/** isolation: thread — a BackendThread in this process. */
class ThreadBackend extends BaseBackend {
  #thread: BackendThread | undefined;
  #stopping = false;

  get pid(): number | undefined {
    return undefined;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    const ports: PortPlan[] = this.plan.ports;
    let thread: BackendThread;
    const starting = BackendThread.start({
      entry: BACKEND_WORKER_ENTRY,
      ports: ports.map((p, i) => ({ name: p.name, listenFd: this.#fd(i), device: p.spec })),
      onLog: (level, msg, port) => this.onLog(level, msg, port),
      onEvent: (event, port) => this.onEvent(event, port),
      tuning: RUN_TUNING,
    });
    try {
      thread = await withTimeout(starting, BACKEND_START_TIMEOUT_MS, 'the worker did not become ready');
    } catch (e: unknown) {
      // A worker that becomes ready after the deadline must not serve on unnoticed.
      void starting.then(
        (late) => late.stop(),
        () => {},
      );
      throw new BackendStartError(this.plan.id, errorText(e), { cause: e });
    }
    this.#thread = thread;
    void thread.exited.then((code) => {
      if (this.#thread === thread) this.#thread = undefined;
      this.allDisconnected();
      if (!this.#stopping) {
        this.log(`${new Date().toISOString()} error ${this.plan.id} worker thread exited (code ${code})`);
        this.onCrash({ code, signal: null, tail: this.tail() });
      }
    });
  }

  #fd(i: number): number {
    const fd = this.listenFds[i];
    if (fd === undefined) throw new BackendStartError(this.plan.id, `no listening socket for port ${i}`);
    return fd;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const thread = this.#thread;
    this.#thread = undefined;
    if (thread !== undefined) await thread.stop();
    this.allDisconnected();
  }

  async refreshMetrics(): Promise<void> {
    const thread = this.#thread;
    if (thread === undefined) return;
    // Safe: metrics() resolves with plain objects (per port name, or one device's metrics).
    const m = (await withTimeout(thread.metrics(), 2_000, 'metrics').catch(() => undefined)) as Record<string, unknown> | undefined;
    if (m !== undefined) this.setMetrics(perPort(m, this.plan));
  }
}

/** What a member of the shared loop is told about its ports. */
interface SharedMember {
  readonly plan: BackendPlan;
  onLog(level: string, msg: string, port: string): void;
  onEvent(event: { kind: string }, port: string): void;
  /** The loop thread ended while this member's ports were in it. */
  crashed(code: number): void;
}

/**
 * isolation: shared — one worker thread serving the back-ends of a whole run, each joining and
 * leaving on its own (BackendThread.addPorts/removePorts). One V8 isolate for all of them instead
 * of one per back-end (about 25 MB each, docs/performance.md). They share the thread's time and
 * its fate: a crash of the thread ends every member (each then follows its restart policy, and
 * the first restart starts a new thread). Ports are named `<back-end id>|<port>` inside it.
 */
export class SharedLoopThread {
  #thread: BackendThread | undefined;
  #starting: Promise<BackendThread> | undefined;
  /** Members with ports in the current thread, by back-end id. */
  readonly #members = new Map<string, SharedMember>();
  #stopping = false;

  static portName(plan: BackendPlan, port: string): string {
    return `${plan.id}|${port}`;
  }

  /** Splits an inside port name into its member and the member's port name. */
  #route(inside: string): { member: SharedMember; port: string } | undefined {
    const bar = inside.lastIndexOf('|');
    const member = this.#members.get(inside.slice(0, bar));
    return bar < 0 || member === undefined ? undefined : { member, port: inside.slice(bar + 1) };
  }

  #ensure(): Promise<BackendThread> {
    if (this.#thread !== undefined) return Promise.resolve(this.#thread);
    if (this.#starting !== undefined) return this.#starting;
    const starting = BackendThread.start({
      entry: BACKEND_WORKER_ENTRY,
      ports: [],
      tuning: RUN_TUNING,
      onLog: (level, msg, port) => {
        const r = this.#route(port);
        r?.member.onLog(level, msg, r.port);
      },
      onEvent: (event, port) => {
        const r = this.#route(port);
        r?.member.onEvent(event, r.port);
      },
    });
    this.#starting = withTimeout(starting, BACKEND_START_TIMEOUT_MS, 'the shared worker did not become ready').then(
      (thread) => {
        this.#starting = undefined;
        this.#thread = thread;
        void thread.exited.then((code) => {
          if (this.#thread === thread) this.#thread = undefined;
          const members = [...this.#members.values()];
          this.#members.clear();
          if (!this.#stopping) for (const m of members) m.crashed(code);
        });
        return thread;
      },
      (e: unknown) => {
        this.#starting = undefined;
        void starting.then((late) => late.stop(), () => {});
        throw e;
      },
    );
    return this.#starting;
  }

  /** Serves `member`'s ports in the shared thread (starting it if needed). @throws Error */
  async join(member: SharedMember, ports: Array<{ name: string; listenFd: number; device: unknown }>): Promise<void> {
    if (this.#stopping) throw new Error('the run is stopping');
    const thread = await this.#ensure();
    this.#members.set(member.plan.id, member);
    try {
      await thread.addPorts(ports.map((p) => ({ ...p, name: SharedLoopThread.portName(member.plan, p.name) })));
    } catch (e: unknown) {
      this.#members.delete(member.plan.id);
      throw e;
    }
  }

  /** Stops serving `member`'s ports; the thread goes on for the others. */
  async leave(member: SharedMember): Promise<void> {
    if (!this.#members.delete(member.plan.id)) return;
    const thread = this.#thread;
    if (thread === undefined) return;
    await thread.removePorts(member.plan.ports.map((p) => SharedLoopThread.portName(member.plan, p.name))).catch(() => {});
  }

  /** Metrics of `member`'s ports, under its own port names (empty when the thread is gone). */
  async metrics(member: SharedMember): Promise<Record<string, unknown>> {
    const thread = this.#thread;
    if (thread === undefined || !this.#members.has(member.plan.id)) return {};
    const all = await thread.metrics();
    const out: Record<string, unknown> = {};
    for (const p of member.plan.ports) {
      const m = all[SharedLoopThread.portName(member.plan, p.name)];
      if (m !== undefined) out[p.name] = m;
    }
    return out;
  }

  /**
   * Ends the current thread abruptly, as a crash would (a fault drill; tests): every member's
   * crashed() is called and the supervisor handles each as it handles a crashed back-end.
   * @returns the thread's exit code, or undefined when no thread was running.
   */
  async terminate(): Promise<number | undefined> {
    return this.#thread?.terminate();
  }

  /** Ends the thread (after every member left or at the end of the run). */
  async stop(): Promise<void> {
    this.#stopping = true;
    const thread = this.#thread ?? (await this.#starting?.catch(() => undefined));
    this.#thread = undefined;
    this.#members.clear();
    await thread?.stop();
  }
}

/** isolation: shared — this back-end's ports in the run's shared loop thread. */
class SharedBackend extends BaseBackend implements SharedMember {
  readonly #loop: SharedLoopThread;
  #joined = false;

  constructor(opts: BackendHandleOptions, loop: SharedLoopThread) {
    super(opts);
    this.#loop = loop;
  }

  get pid(): number | undefined {
    return undefined;
  }

  crashed(code: number): void {
    if (!this.#joined) return;
    this.#joined = false;
    this.allDisconnected();
    this.log(`${new Date().toISOString()} error ${this.plan.id} the shared back-end thread exited (code ${code})`);
    this.onCrash({ code, signal: null, tail: this.tail() });
  }

  async start(): Promise<void> {
    const ports = this.plan.ports.map((p, i) => {
      const fd = this.listenFds[i];
      if (fd === undefined) throw new BackendStartError(this.plan.id, `no listening socket for port ${i}`);
      return { name: p.name, listenFd: fd, device: p.spec };
    });
    try {
      await this.#loop.join(this, ports);
    } catch (e: unknown) {
      throw new BackendStartError(this.plan.id, errorText(e), { cause: e });
    }
    this.#joined = true;
  }

  async stop(): Promise<void> {
    if (!this.#joined) return;
    this.#joined = false;
    await this.#loop.leave(this);
    this.allDisconnected();
  }

  async refreshMetrics(): Promise<void> {
    if (!this.#joined) return;
    const m = await withTimeout(this.#loop.metrics(this), 2_000, 'metrics').catch(() => undefined);
    if (m !== undefined) this.setMetrics(m);
  }
}

/** isolation: process — `avp serve <kind> --fd 3` as a child process in its own process group. */
class ProcessBackend extends BaseBackend {
  /** The program's port names → ours. */
  readonly #aliases: Map<string, string>;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stopping = false;
  /** Whether the current instance got as far as serving: only then is its end a crash. */
  #serving = false;

  constructor(opts: BackendHandleOptions) {
    super(opts);
    const shared = opts.plan.role === 'device' ? undefined : SHARED_PROCESS_COMMANDS[opts.plan.role];
    this.#aliases = new Map(opts.plan.ports.map((p) => [shared?.portName(p) ?? p.name, p.name]));
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #rename(byPort: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(byPort).map(([k, v]) => [this.#aliases.get(k) ?? k, v]));
  }

  async start(): Promise<void> {
    this.#stopping = false;
    this.#serving = false;
    const shared = this.plan.role === 'device' ? undefined : SHARED_PROCESS_COMMANDS[this.plan.role];
    const argv = shared === undefined ? serveArgv(this.plan) : shared.argv(this.plan);
    const fds = shared?.sockets === 'paths' ? [] : this.listenFds;
    // --title puts the back-end and its sockets in ps/pgrep output (the argv shows only fds).
    const title = `avp-backend ${this.plan.id} ${this.plan.ports.map((p) => p.socket).join(' ')}`;
    const child = spawn(process.execPath, [`--title=${title}`, AVP_BIN, ...argv], {
      // fds 3, 4, ... of the child are the listening sockets (libuv dup2s them, which clears FD_CLOEXEC).
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      // Its own process group: a Ctrl-C at the terminal reaches avp run only, which stops the
      // VMs first and then the back-ends, in that order.
      detached: true,
    });
    liveChildren.add(child);
    installExitHook();
    this.#child = child;
    this.log(`${new Date().toISOString()} info ${this.plan.id} started: ${[process.execPath, AVP_BIN, ...argv].join(' ')} (pid ${String(child.pid)})`);
    let serving: () => void = () => {};
    let failed: (e: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      serving = resolve;
      failed = reject;
    });
    let partial = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#onLogLine(line, serving);
    });
    child.stdout?.resume(); // avp serve prints nothing on stdout while serving; keep the pipe drained
    this.#exited = new Promise((resolve) => {
      child.once('error', (e) => {
        failed(e);
        resolve();
      });
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        if (this.#child === child) this.#child = undefined;
        this.allDisconnected();
        this.log(`${new Date().toISOString()} ${this.#stopping ? 'info' : 'error'} ${this.plan.id} process ${String(child.pid)} exited (${signal ?? `status ${String(code)}`})`);
        failed(new Error(`it exited (${signal ?? `status ${String(code)}`}) before serving; last log lines:\n${this.tail().join('\n')}`));
        if (!this.#stopping && this.#serving) this.onCrash({ ...(child.pid === undefined ? {} : { pid: child.pid }), code, signal, tail: this.tail() });
        resolve();
      });
    });
    try {
      await withTimeout(ready, BACKEND_START_TIMEOUT_MS, 'it did not log "serving" in time');
      this.#serving = true;
    } catch (e: unknown) {
      await this.stop();
      throw new BackendStartError(this.plan.id, errorText(e), { cause: e });
    }
  }

  /** One pino JSON line from the child: kept in the log; connection and metrics lines update the state. */
  #onLogLine(line: string, serving: () => void): void {
    if (line === '') return;
    this.log(line);
    let entry: { msg?: unknown; port?: unknown; metrics?: unknown; stats?: { ports?: unknown } };
    try {
      entry = JSON.parse(line) as typeof entry; // pino writes one JSON object per line
    } catch {
      return; // not a log record (a Node warning, say); it is in the log file
    }
    const msg = typeof entry.msg === 'string' ? entry.msg : '';
    const port = typeof entry.port === 'string' ? this.#aliases.get(entry.port) : undefined;
    if (msg.startsWith('serving ')) serving();
    else if (msg === 'front-end connected') this.setConnected(port, true);
    else if (msg.startsWith('front-end disconnected')) this.setConnected(port, false);
    else {
      // avp serve logs {metrics} on SIGUSR1, avp switch {stats: {ports}}; both keyed by its port names.
      const byPort = msg === 'metrics' ? entry.metrics : msg === 'stats' ? entry.stats?.ports : undefined;
      if (typeof byPort === 'object' && byPort !== null) this.setMetrics(this.#rename(perPort(byPort as Record<string, unknown>, this.plan))); // checked: a non-null object
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return this.#exited;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), STOP_GRACE_MS);
    });
    const first = await Promise.race([this.#exited, grace]);
    clearTimeout(timer);
    if (first === 'late') {
      child.kill('SIGKILL');
      await this.#exited;
    }
  }

  async refreshMetrics(): Promise<void> {
    // avp serve logs its metrics on SIGUSR1; #onLogLine picks the line up when it arrives.
    const child = this.#child;
    if (child !== undefined && child.exitCode === null) child.kill('SIGUSR1');
    return Promise.resolve();
  }
}

/**
 * Metrics as one back-end reports them → per port name. A multi-port back-end keys them by port
 * name; a single device may report its own metrics directly, or keyed by its kind.
 */
function perPort(m: Record<string, unknown>, plan: BackendPlan): Record<string, unknown> {
  const only = plan.ports.length === 1 ? plan.ports[0] : undefined;
  if (only === undefined) return m;
  if ('device' in m || 'session' in m) return { [only.name]: m };
  const first = Object.values(m)[0];
  return first === undefined ? {} : { [only.name]: first };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Back-end processes not yet exited, killed when this process exits however it exits. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Back-end processes this process started that have not exited (for tests of cleanup). */
export function liveBackendProcessCount(): number {
  return liveChildren.size;
}
