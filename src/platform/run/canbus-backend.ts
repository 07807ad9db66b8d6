// SPDX-License-Identifier: Apache-2.0
/**
 * A CAN bus of `avp run` with `isolation: thread`: the bus server (platform/canbus) inside the run's
 * own process, on its event loop (the bus is sockets and timers, no blocking work, so it needs no
 * thread of its own). `isolation: process` runs `avp canbus` instead, through launch.ts's
 * ProcessBackend (SHARED_PROCESS_COMMANDS.canbus), with the same config.
 *
 * Owns: the BackendHandle of an in-process bus: start, stop, the log file in the run directory,
 * connection state and counters per node; and `canbusArgv`, the `avp canbus` command line of a
 * process-isolated bus. Does not own: the bus.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { type CanFilter, formatCanFilter } from '../../can/index.js';
import { errorText } from '../../errors.js';
import { openCanRaw } from '../../sys/index.js';
import { CanBusServer } from '../canbus/index.js';
import { BackendStartError } from '../errors.js';
import type { BackendPlan } from '../manifest/plan.js';
import type { BackendExit, BackendHandle, PortState } from './launch.js';

export class InProcessBusBackend implements BackendHandle {
  readonly plan: BackendPlan;
  readonly ports = new Map<string, PortState>();
  readonly #log: WriteStream;
  #server: CanBusServer | undefined;

  /** `onCrash` is never called: the bus shares this process's fate. */
  constructor(plan: BackendPlan, _onCrash: (exit: BackendExit) => void) {
    this.plan = plan;
    for (const p of plan.ports) this.ports.set(p.name, { name: p.name, connected: false, metrics: {} });
    this.#log = createWriteStream(plan.log, { flags: 'a' });
    this.#log.on('error', () => {});
  }

  get pid(): number | undefined {
    return undefined;
  }

  #line(level: string, msg: string): void {
    this.#log.write(`${new Date().toISOString()} ${level} ${this.plan.id} ${msg}\n`);
  }

  async start(): Promise<void> {
    const config = this.plan.canbus;
    if (config === undefined) throw new BackendStartError(this.plan.id, 'a CAN bus plan without its bus config');
    const server = new CanBusServer(config, {
      log: { info: (m) => this.#line('info', m), warn: (m) => this.#line('warn', m), debug: () => {} },
      openCanRaw,
    });
    try {
      await server.start();
    } catch (e: unknown) {
      throw new BackendStartError(this.plan.id, errorText(e), { cause: e });
    }
    this.#server = server;
    this.#line('info', `serving canbus ${config.name} at ${config.bitrate} bit/s`);
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s !== undefined) await s.stop();
    for (const p of this.ports.values()) p.connected = false;
  }

  refreshMetrics(): Promise<void> {
    const m = this.#server?.metrics();
    const nodes = (m?.['nodes'] ?? {}) as Record<string, Record<string, unknown> | undefined>; // metrics() documents this shape
    for (const p of this.plan.ports) {
      const state = this.ports.get(p.name);
      const node = nodes[p.device];
      if (state === undefined || node === undefined) continue;
      state.metrics = node;
      state.connected = node['connected'] === true;
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#log.end(resolve));
  }

  /** Never called: a bus creates its node sockets itself (launch.ts processCreatesSockets). */
  replaceListenFd(): void {}
}

/** `key=value,...` of an `avp canbus --node` spec; undefined values are left out (lists are already joined with '+'). */
function nodeSpec(fields: Array<[string, string | undefined]>): string {
  return fields.flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])).join(',');
}

/** `avp canbus` flags for a planned bus (the same config the in-process server gets). */
export function canbusArgv(b: BackendPlan): string[] {
  const c = b.canbus;
  if (c === undefined) throw new BackendStartError(b.id, 'a CAN bus plan without its bus config');
  const f = (list: readonly CanFilter[] | undefined) => (list === undefined || list.length === 0 ? undefined : list.map(formatCanFilter).join('+'));
  return [
    'canbus',
    '--name',
    c.name,
    '--bitrate',
    String(c.bitrate),
    ...(c.dataBitrate === undefined ? [] : ['--data-bitrate', String(c.dataBitrate)]),
    ...c.nodes.flatMap((n) => ['--node', nodeSpec([['socket', n.socket], ['name', n.name], ['receive', f(n.receive)], ['send', f(n.send)], ['rate', n.rate === undefined ? undefined : `${n.rate.framesPerSecond}${n.rate.burst === undefined ? '' : `:${n.rate.burst}`}`]])]),
    ...(c.hostSocket === undefined ? [] : ['--host-socket', c.hostSocket]),
    ...(c.log === undefined ? [] : ['--log', c.log]),
    ...(c.replay === undefined ? [] : ['--replay', c.replay.file, '--replay-start', c.replay.start, ...(c.replay.loop ? ['--replay-loop'] : []), ...(c.replay.ifname === undefined ? [] : ['--replay-ifname', c.replay.ifname])]),
    ...(c.socketcan === undefined ? [] : ['--socketcan', c.socketcan]),
  ];
}
