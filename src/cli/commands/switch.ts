// SPDX-License-Identifier: Apache-2.0
/**
 * `avp switch`: one virtio-net switch serving several VMs, one vhost-user socket per port, in one
 * process, one worker thread and one event loop (the ports forward to each other by function
 * calls). The same program conventions as `avp serve`: sockets created mode 0600 and removed on
 * exit, clean exit on SIGTERM/SIGINT, one-line errors with exit status 1, SIGUSR1 logs the
 * counters.
 *
 * Ports, two equivalent spellings (not mixed in one command):
 *
 *   avp switch --socket-path A --socket-path B [--mac M1 --mac M2] [--rate R1 --rate R2] ...
 *     Per-port options (--name, --mac, --rate, --burst, --rate-policy, --priority, --link) are
 *     positional: each is given either never or exactly once per --socket-path, the n-th value
 *     for the n-th socket; `-` keeps a port's default (e.g. `--rate - --rate 1M`).
 *   avp switch --port socket=A,mac=M1,priority=7 --port socket=B,rate=1M:2000,name=cam
 *     keys: socket (required), name, mac, rate, burst, rate-policy, priority, link.
 *
 * Switch-wide: --mtu, --mac-ageing, --budget, --uplink-tap, --stats-file (JSON rewritten every
 * --stats-interval ms, atomically) and -v. Values are as `devices/net/options.ts` documents.
 */
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { closeQuiet } from '../../sys/index.js';
import { listenAt, type BackendThread } from '../../vhost-user/server.js';
import { BUSY_POLL_FLAG, SEALED_MEMORY_FLAG, parseBusyPollUs, runBackendProgram, trapStopSignals } from '../backend-lifecycle.js';
import { createLogger } from '../log.js';
import { UsageError, errorText } from '../errors.js';
import { parseOptions } from '../../devices/options.js';
import { kindOf } from '../../devices/registry.js';

/** Per-port options, as their CLI flag and as the device option name. */
const PORT_KEYS = [
  ['name', 'name'],
  ['mac', 'mac'],
  ['rate', 'rate'],
  ['burst', 'burst'],
  ['rate-policy', 'ratePolicy'],
  ['priority', 'priority'],
  ['link', 'link'],
] as const;

export interface SwitchCliOptions {
  socketPath?: string[];
  port?: string[];
  name?: string[];
  mac?: string[];
  rate?: string[];
  burst?: string[];
  ratePolicy?: string[];
  priority?: string[];
  link?: string[];
  mtu?: string;
  macAgeing?: string;
  budget?: string;
  uplinkTap?: string;
  statsFile?: string;
  statsInterval?: string;
  busyPollUs?: string;
  requireSealedMemory?: boolean;
  verbose?: boolean;
}

/** One port to serve: its socket, its name, and the device options for the registry's `net` kind. */
export interface SwitchPortPlan {
  socketPath: string;
  name: string;
  options: Record<string, unknown>;
}

export interface SwitchPlan {
  ports: SwitchPortPlan[];
  statsFile: string | undefined;
  statsIntervalMs: number;
  /** Adaptive busy polling window in microseconds (0: off). */
  busyPollUs: number;
  /** `--require-sealed-memory`. */
  requireSealedMemory: boolean;
}

/** Repeatable options collect their values (no default, so `--help` shows none). */
function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

export function registerSwitchCommand(program: Command): void {
  program
    .command('switch')
    .description('serve a virtio-net switch: one vhost-user socket per VM (QEMU -netdev vhost-user + virtio-net-pci), MAC learning, MTU, rate limits, priorities')
    .option('--socket-path <path>', 'a port: listen on this Unix socket (repeat for each VM)', collect)
    .option('--port <spec>', "a port as 'socket=PATH[,name=N][,mac=M][,rate=B[:P]][,burst=B[:P]][,rate-policy=P][,priority=N][,link=up|down]' (repeat)", collect)
    .option('--name <name>', 'port name in logs and stats, one per --socket-path (default port<i>)', collect)
    .option('--mac <mac>', "the VM's MAC, one per --socket-path (QEMU's mac=)", collect)
    .option('--rate <bytes[:pkts]>', "ingress limit, bytes/s[:frames/s] with k/M/G suffixes, one per --socket-path ('-' none)", collect)
    .option('--burst <bytes[:pkts]>', 'token bucket sizes, one per --socket-path', collect)
    .option('--rate-policy <policy>', "'backpressure' or 'drop', one per --socket-path", collect)
    .option('--priority <n>', '0-7, higher served first, one per --socket-path', collect)
    .option('--link <state>', "'up' or 'down', one per --socket-path", collect)
    .option('--mtu <n>', 'MTU of every port, 68-65535 (default 1500); give each VM QEMU host_mtu=N')
    .option('--mac-ageing <s>', 'seconds before a learned MAC is forgotten (default 300)')
    .option('--budget <n>', 'frames a port may send per switch turn (default 64)')
    .option('--uplink-tap <name>', 'bridge to this host TAP interface (created if missing, which needs CAP_NET_ADMIN; bring it up with ip link set NAME up)')
    .option('--stats-file <file>', 'write the counters as JSON to this file, periodically')
    .option('--stats-interval <ms>', 'how often to write --stats-file (default 1000)')
    .option(...BUSY_POLL_FLAG)
    .option(...SEALED_MEMORY_FLAG)
    .option('-v, --verbose', 'log at debug level')
    .action(async (opts: SwitchCliOptions) => {
      process.exitCode = await runSwitch(planSwitch(opts), opts.verbose === true);
    });
}

/** Splits a `--port` spec `k=v,k=v`. @throws UsageError */
function parsePortSpec(spec: string): { socketPath: string; options: Record<string, unknown> } {
  const options: Record<string, unknown> = {};
  let socketPath: string | undefined;
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`switch: --port '${spec}': '${part}' is not key=value`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === 'socket') {
      socketPath = value;
      continue;
    }
    const known = PORT_KEYS.find(([flag]) => flag === key);
    if (known === undefined) throw new UsageError(`switch: --port '${spec}': unknown key '${key}' (known: socket, ${PORT_KEYS.map(([f]) => f).join(', ')})`);
    options[known[1]] = value;
  }
  if (socketPath === undefined || socketPath === '') throw new UsageError(`switch: --port '${spec}' has no socket=PATH`);
  return { socketPath, options };
}

/**
 * Turns the command line into the ports to serve. Pure (no file system): unit-tested.
 * @throws UsageError naming the option at fault.
 */
export function planSwitch(opts: SwitchCliOptions): SwitchPlan {
  const paths = opts.socketPath ?? [];
  const specs = opts.port ?? [];
  if (paths.length > 0 && specs.length > 0) throw new UsageError('switch: give ports either as --socket-path (with positional per-port options) or as --port specs, not both');
  let ports: Array<{ socketPath: string; options: Record<string, unknown> }>;
  if (specs.length > 0) {
    for (const [flag, key] of PORT_KEYS) {
      if ((opts[key] ?? []).length > 0) throw new UsageError(`switch: --${flag} goes with --socket-path; with --port write ${flag}=... inside the spec`);
    }
    ports = specs.map(parsePortSpec);
  } else {
    if (paths.length === 0) throw new UsageError('switch: give at least one port (--socket-path PATH or --port socket=PATH,...)');
    ports = paths.map((socketPath) => ({ socketPath, options: {} }));
    for (const [flag, key] of PORT_KEYS) {
      const values = opts[key] ?? [];
      if (values.length === 0) continue;
      if (values.length !== paths.length) throw new UsageError(`switch: --${flag} was given ${values.length} times for ${paths.length} ports; give it once per --socket-path, in order ('-' for the default)`);
      values.forEach((v, i) => {
        // Safe: one port per path, and values.length === paths.length.
        if (v !== '-') ports[i]!.options[key] = v;
      });
    }
  }
  const seen = new Set<string>();
  for (const p of ports) {
    if (seen.has(p.socketPath)) throw new UsageError(`switch: socket ${p.socketPath} is given twice`);
    seen.add(p.socketPath);
  }
  const wide: Record<string, unknown> = {};
  if (opts.mtu !== undefined) wide['mtu'] = opts.mtu;
  if (opts.macAgeing !== undefined) wide['macAgeing'] = opts.macAgeing;
  if (opts.budget !== undefined) wide['budget'] = opts.budget;
  if (opts.uplinkTap !== undefined) wide['uplinkTap'] = opts.uplinkTap;
  const names = new Set<string>();
  const planned = ports.map((p, i) => {
    const name = typeof p.options['name'] === 'string' ? p.options['name'] : `port${i}`;
    if (names.has(name)) throw new UsageError(`switch: two ports are named ${name}`);
    names.add(name);
    try {
      // Checked now (a typo fails before any socket exists), as the net kind's options.
      return { socketPath: p.socketPath, name, options: parseOptions(kindOf('net'), { ...p.options, name, ...wide }, 'cli') };
    } catch (e: unknown) {
      throw new UsageError(`switch: ${errorText(e)}`);
    }
  });
  const interval = opts.statsInterval === undefined ? 1000 : Number(opts.statsInterval);
  if (!Number.isSafeInteger(interval) || interval < 50 || interval > 3_600_000) throw new UsageError(`switch: --stats-interval must be an integer from 50 to 3600000 ms, got ${opts.statsInterval}`);
  return { ports: planned, statsFile: opts.statsFile, statsIntervalMs: interval, busyPollUs: parseBusyPollUs('switch', opts.busyPollUs), requireSealedMemory: opts.requireSealedMemory === true };
}

/** The stats document: the switch block once, then each port without it. */
export function statsDocument(metrics: Record<string, Record<string, unknown>>, now = new Date()): Record<string, unknown> {
  let sw: unknown = null;
  const ports: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(metrics)) {
    const { switch: s, ...rest } = m;
    sw ??= s;
    ports[name] = rest;
  }
  return { time: now.toISOString(), switch: sw, ports };
}

/** Writes `file` atomically (temp file in the same folder, then rename). */
function writeStats(file: string, doc: Record<string, unknown>): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, file);
}

async function runSwitch(plan: SwitchPlan, verbose: boolean): Promise<number> {
  const log = createLogger('avp-switch', verbose ? 'debug' : undefined);
  // Before the first socket file exists: a stop signal from now on ends in a clean exit.
  const trap = trapStopSignals(log);
  const opened: Array<{ path: string; fd: number }> = [];
  const cleanup = () => {
    for (const o of opened) {
      closeQuiet(o.fd);
      try {
        unlinkSync(o.path);
      } catch {
        // Already gone: nothing to clean.
      }
    }
  };
  try {
    for (const p of plan.ports) opened.push({ path: p.socketPath, fd: listenAt(p.socketPath) });
  } catch (e: unknown) {
    cleanup();
    trap.release();
    throw new UsageError(`switch: ${errorText(e)}`);
  }
  const snapshot = async (thread: BackendThread): Promise<Record<string, unknown>> => statsDocument(await thread.metrics());
  return runBackendProgram({
    trap,
    name: 'switch',
    // Safe: one listening fd was opened per planned port, in order.
    ports: plan.ports.map((p, i) => ({ name: p.name, listenFd: opened[i]!.fd, device: { kind: 'net', options: p.options } })),
    log,
    cleanup,
    servingMessage: `serving switch on ${plan.ports.map((p) => `${p.name}=${p.socketPath}`).join(', ')}`,
    tuning: { busyPollUs: plan.busyPollUs, requireSealedMemory: plan.requireSealedMemory },
    onUsr1: (thread) => void snapshot(thread).then((doc) => log.info({ stats: doc }, 'stats')),
    onStarted: (thread) => {
      if (plan.statsFile === undefined) return () => {};
      const file = plan.statsFile;
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      const tick = () => {
        void snapshot(thread)
          .then((doc) => {
            if (!stopped) writeStats(file, doc);
          })
          .catch((e: unknown) => log.warn(`--stats-file ${file}: ${errorText(e)}`))
          .finally(() => {
            if (!stopped) timer = setTimeout(tick, plan.statsIntervalMs);
          });
      };
      tick();
      return () => {
        stopped = true;
        clearTimeout(timer);
      };
    },
  });
}
