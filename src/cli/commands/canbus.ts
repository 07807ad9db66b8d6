// SPDX-License-Identifier: Apache-2.0
/**
 * `avp canbus`: one AVP CAN bus (platform/canbus) as a program. Each node is a Unix socket the
 * bus listens on, joined by one peer speaking slcan: a guest's virtio console port (QEMU
 * `-chardev socket,path=...` + `virtconsole`; in the guest `slcand -o -s6 /dev/hvc0 can0`), a
 * virtio-can back-end, a host program. The same conventions as `avp switch`: sockets mode 0600,
 * removed on exit, clean exit on SIGTERM/SIGINT, one-line errors with exit status 1, SIGUSR1 logs
 * the counters, `--stats-file` rewrites them as JSON.
 *
 *   avp canbus --name vehicle --node socket=/run/a.sock,name=cluster,receive=100:700 \
 *     --node socket=/run/b.sock,name=ivi,send=400:700,rate=200:20 --bitrate 500000 \
 *     [--data-bitrate 2000000] [--host-socket /run/host.sock] [--log vehicle.log] \
 *     [--replay trace.log [--replay-loop] [--replay-start all-open|now] [--replay-ifname can0]] \
 *     [--socketcan vcan0] [--stats-file F] [--stats-interval ms] [-v]
 *
 * Node keys: socket (required), name (default node<i>), receive and send (SocketCAN filters
 * `<id>:<mask>` or `<id>~<mask>`, several joined with '+'), rate (frames/s[:burst]).
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type CanFilter, parseCanFilter } from '../../can/index.js';
import { errorText } from '../../errors.js';
import { type CanBusConfig, CanBusServer, type CanNodeConfig, checkBusConfig } from '../../platform/canbus/index.js';
import { openCanRaw } from '../../sys/index.js';
import { trapStopSignals } from '../backend-lifecycle.js';
import { UsageError } from '../errors.js';
import { createLogger } from '../log.js';

export interface CanbusCliOptions {
  name?: string;
  node?: string[];
  bitrate?: string;
  dataBitrate?: string;
  hostSocket?: string;
  log?: string;
  replay?: string;
  replayLoop?: boolean;
  replayStart?: string;
  replayIfname?: string;
  socketcan?: string;
  statsFile?: string;
  statsInterval?: string;
  verbose?: boolean;
}

export interface CanbusPlan {
  config: CanBusConfig;
  statsFile: string | undefined;
  statsIntervalMs: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const NODE_KEYS = ['socket', 'name', 'receive', 'send', 'rate'] as const;

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

export function registerCanbusCommand(program: Command): void {
  program
    .command('canbus')
    .description('serve an AVP CAN bus: nodes join over slcan on Unix sockets (guests: virtio console + slcand); arbitration order, bit rate, filters, rate limits, candump log, replay, SocketCAN bridge')
    .option('--name <name>', 'bus name: the interface name in the candump log (default can0)')
    .option('--node <spec>', "a node as 'socket=PATH[,name=N][,receive=ID:MASK+...][,send=ID:MASK+...][,rate=FPS[:BURST]]' (repeat)", collect)
    .option('--bitrate <bps>', 'nominal bit rate, 1000-10000000 (default 500000)')
    .option('--data-bitrate <bps>', 'CAN FD data phase bit rate (default: the nominal rate)')
    .option('--host-socket <path>', 'a socket any number of host programs join (slcan; each connection is a node, open at once)')
    .option('--log <file>', 'append every frame on the bus to this candump log')
    .option('--replay <file>', 'replay this candump log as a node')
    .option('--replay-loop', 'start the replay over after its last frame')
    .option('--replay-start <when>', "'all-open' (default: once every --node has joined) or 'now'")
    .option('--replay-ifname <name>', 'replay only the lines of this interface')
    .option('--socketcan <ifname>', 'bridge to this host SocketCAN interface (skipped with a warning when the host has none)')
    .option('--stats-file <file>', 'write the counters as JSON to this file, periodically')
    .option('--stats-interval <ms>', 'how often to write --stats-file (default 1000)')
    .option('-v, --verbose', 'log at debug level')
    .action(async (opts: CanbusCliOptions) => {
      process.exitCode = await runCanbus(planCanbus(opts), opts.verbose === true);
    });
}

function filters(spec: string, key: string, text: string): CanFilter[] {
  return text.split('+').map((f) => {
    try {
      return parseCanFilter(f);
    } catch (e: unknown) {
      throw new UsageError(`canbus: --node '${spec}': ${key}: ${errorText(e)}`);
    }
  });
}

function rate(spec: string, text: string): NonNullable<CanNodeConfig['rate']> {
  const m = /^(\d+(?:\.\d+)?)(?::(\d+))?$/.exec(text);
  const fps = Number(m?.[1]);
  if (m === null || !(fps > 0) || fps > 1_000_000) throw new UsageError(`canbus: --node '${spec}': rate: expected frames per second (0-1000000, not 0), optionally :burst, e.g. 200:20; got '${text}'`);
  if (m[2] === undefined) return { framesPerSecond: fps };
  const burst = Number(m[2]);
  if (burst < 1) throw new UsageError(`canbus: --node '${spec}': rate: the burst is at least 1 frame`);
  return { framesPerSecond: fps, burst };
}

/** One `--node` spec. @throws UsageError naming the spec and key. */
function parseNode(spec: string, index: number): CanNodeConfig {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq);
    if (eq <= 0 || !(NODE_KEYS as readonly string[]).includes(key)) throw new UsageError(`canbus: --node '${spec}': '${part}' is not one of ${NODE_KEYS.map((k) => `${k}=`).join(', ')}`);
    if (kv.has(key)) throw new UsageError(`canbus: --node '${spec}': ${key} is given twice`);
    kv.set(key, part.slice(eq + 1));
  }
  const socket = kv.get('socket');
  if (socket === undefined || socket === '') throw new UsageError(`canbus: --node '${spec}' has no socket=PATH`);
  const name = kv.get('name') ?? `node${index}`;
  if (!NAME_RE.test(name)) throw new UsageError(`canbus: --node '${spec}': name: expected 1-32 letters, digits, _ . -, got '${name}'`);
  const receive = kv.get('receive');
  const send = kv.get('send');
  const r = kv.get('rate');
  return { name, socket, ...(receive === undefined ? {} : { receive: filters(spec, 'receive', receive) }), ...(send === undefined ? {} : { send: filters(spec, 'send', send) }), ...(r === undefined ? {} : { rate: rate(spec, r) }) };
}

function bitrate(flag: string, text: string | undefined, fallback: number | undefined): number | undefined {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1000 || v > 10_000_000) throw new UsageError(`canbus: ${flag}: expected an integer from 1000 to 10000000 bit/s, got '${text}'`);
  return v;
}

/** The command line → what to serve. Pure: unit-tested. @throws UsageError naming the option at fault. */
export function planCanbus(opts: CanbusCliOptions): CanbusPlan {
  const name = opts.name ?? 'can0';
  if (!NAME_RE.test(name)) throw new UsageError(`canbus: --name: expected 1-32 letters, digits, _ . -, got '${name}'`);
  const nodes = (opts.node ?? []).map(parseNode);
  if (nodes.length === 0 && opts.hostSocket === undefined) throw new UsageError('canbus: give at least one --node socket=PATH (or --host-socket PATH)');
  const start = opts.replayStart ?? 'all-open';
  if (start !== 'all-open' && start !== 'now') throw new UsageError(`canbus: --replay-start: expected 'all-open' or 'now', got '${start}'`);
  if (opts.replay === undefined && (opts.replayLoop === true || opts.replayStart !== undefined || opts.replayIfname !== undefined)) throw new UsageError('canbus: --replay-loop, --replay-start and --replay-ifname go with --replay FILE');
  if (opts.socketcan !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(opts.socketcan)) throw new UsageError(`canbus: --socketcan: expected an interface name of 1-15 letters, digits, _ . -, got '${opts.socketcan}'`);
  const dataBitrate = bitrate('--data-bitrate', opts.dataBitrate, undefined);
  const config: CanBusConfig = {
    name,
    // Safe: a fallback is given.
    bitrate: bitrate('--bitrate', opts.bitrate, 500_000)!,
    ...(dataBitrate === undefined ? {} : { dataBitrate }),
    nodes,
    ...(opts.hostSocket === undefined ? {} : { hostSocket: opts.hostSocket }),
    ...(opts.log === undefined ? {} : { log: opts.log }),
    ...(opts.replay === undefined ? {} : { replay: { file: opts.replay, loop: opts.replayLoop === true, start, ...(opts.replayIfname === undefined ? {} : { ifname: opts.replayIfname }) } }),
    ...(opts.socketcan === undefined ? {} : { socketcan: opts.socketcan }),
  };
  try {
    checkBusConfig(config);
  } catch (e: unknown) {
    throw new UsageError(`canbus: ${errorText(e)}`);
  }
  const interval = opts.statsInterval === undefined ? 1000 : Number(opts.statsInterval);
  if (!Number.isSafeInteger(interval) || interval < 50 || interval > 3_600_000) throw new UsageError(`canbus: --stats-interval must be an integer from 50 to 3600000 ms, got ${opts.statsInterval}`);
  return { config, statsFile: opts.statsFile, statsIntervalMs: interval };
}

/** `{ time, bus, ports: { <node>: {...} }, replay?, socketcan? }`: `ports` as avp run reads it. */
export function canbusStats(metrics: Record<string, unknown>, now = new Date()): Record<string, unknown> {
  const { nodes, ...rest } = metrics;
  return { time: now.toISOString(), ...rest, ports: nodes };
}

async function runCanbus(plan: CanbusPlan, verbose: boolean): Promise<number> {
  const log = createLogger('avp-canbus', verbose ? 'debug' : undefined);
  const trap = trapStopSignals(log);
  const server = new CanBusServer(plan.config, {
    log: { info: (m) => log.info(m), warn: (m) => log.warn(m), debug: (m) => log.debug(m) },
    openCanRaw,
  });
  try {
    await server.start();
  } catch (e: unknown) {
    trap.release();
    throw new UsageError(`canbus: ${errorText(e)}`);
  }
  const c = plan.config;
  log.info(`serving canbus ${c.name} at ${c.bitrate} bit/s on ${[...c.nodes.map((n) => `${n.name}=${n.socket}`), ...(c.hostSocket === undefined ? [] : [`host=${c.hostSocket}`])].join(', ')}`);
  const onUsr1 = (): void => log.info({ stats: canbusStats(server.metrics()) }, 'stats');
  process.on('SIGUSR1', onUsr1);
  let timer: NodeJS.Timeout | undefined;
  if (plan.statsFile !== undefined) {
    const file = plan.statsFile;
    const tick = (): void => {
      try {
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, `${JSON.stringify(canbusStats(server.metrics()), null, 2)}\n`, { mode: 0o644 });
        renameSync(tmp, file);
      } catch (e: unknown) {
        log.warn(`--stats-file ${file}: ${errorText(e)}`);
      }
      timer = setTimeout(tick, plan.statsIntervalMs);
    };
    tick();
  }
  const signal = await new Promise<string>((resolve) => trap.onStop(resolve));
  clearTimeout(timer);
  process.off('SIGUSR1', onUsr1);
  await server.stop();
  trap.release();
  log.info(`stopped (${signal})`);
  return 0;
}
