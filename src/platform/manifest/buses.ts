// SPDX-License-Identifier: Apache-2.0
/**
 * CAN buses in the platform manifest: the `buses:` section (one AVP CAN bus each, `avp canbus`),
 * the VMs' `can:` lists (a guest joins over slcan on a virtio console port), and virtio-can
 * devices' `bus:` field (their back-end joins the bus as a node).
 *
 *   buses:
 *     - name: vehicle
 *       bitrate: 500000            # default; dataBitrate for CAN FD's data phase
 *       log: true                  # candump log at <runDir>/_canbus/<name>.candump (a path: there instead)
 *       replay: { file: speed.candump, loop: true, start: all-open }
 *       socketcan: vcan0           # bridge to a host interface (skipped with a warning if absent)
 *       hostSocket: true           # <runDir>/_canbus/<name>.sock: host programs join over slcan
 *   vms:
 *     - name: cluster
 *       can:
 *         - bus: vehicle           # the i-th entry is the guest's /dev/hvc<i>
 *           receive: ["100:700"]   # SocketCAN filters
 *           send: ["100:700"]
 *           rateLimit: 100         # frames per second (burst: rateBurst)
 *
 * Owns: those schema parts, the rules across entries (bus names unique, buses that exist, a VM
 * joins a bus at most once over slcan, filters that parse), the model, and the bus back-end's plan
 * (node sockets, the bus config, the VM's virtio-serial ports). Does not own: the schema's other
 * parts (schema.ts), running the bus (platform/canbus, run/).
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { type CanFilter, parseCanFilter } from '../../can/index.js';
import { errorText } from '../../errors.js';
import type { CanBusConfig, CanNodeConfig } from '../canbus/index.js';
import { IFNAME_RE, int, name, path } from './fields.js';

const FILTER_RE = /^[0-9A-Fa-f]{1,8}[:~][0-9A-Fa-f]{1,8}$/;

const filters = (description: string) =>
  z
    .array(z.string({ error: 'expected a filter such as "100:7FF" (a string)' }).regex(FILTER_RE, { error: 'expected <id>:<mask> or <id>~<mask> in hex, e.g. "100:7FF"' }), { error: 'expected a list of filters' })
    .meta({ description })
    .optional();

/** schema.ts's strict-object builder (its unknown-key messages list the keys). */
export type StrictObject = <T extends z.core.$ZodLooseShape>(shape: T, what: string) => z.ZodObject<T, z.core.$strict>;

/** The schema of one bus; `isolation` and `restart` are schema.ts's, passed in. */
export function busSchema<I extends z.ZodType, R extends z.ZodType>(strictObject: StrictObject, isolation: I, restart: R) {
  return strictObject(
    {
      name: name('Bus name, unique on the platform; VMs join it under can:, virtio-can devices under bus:. The candump log names its frames by it.'),
      bitrate: int(1000, 10_000_000, 'Nominal bit rate in bit/s (default 500000): frames take the time their bits take at this rate.').default(500_000),
      dataBitrate: int(1000, 10_000_000, 'CAN FD data-phase bit rate in bit/s (frames with BRS); default: the nominal rate.').optional(),
      log: z
        .union([z.boolean(), path('')], { error: 'expected true, false or a path' })
        .default(true)
        .meta({ description: 'candump log of every frame on the bus: true (default) for <runDir>/_canbus/<name>.candump, false for none, or a path relative to the run directory.' }),
      replay: strictObject(
        {
          file: path('candump log (can-utils candump -l) to replay, relative to the manifest.'),
          loop: z.boolean({ error: 'expected true or false' }).default(false).meta({ description: 'Start over after the last frame (default false).' }),
          start: z.enum(['all-open', 'now'], { error: "expected 'all-open' or 'now'" }).default('all-open').meta({ description: "'all-open' (default): once every VM and device on the bus has joined; 'now': when the bus starts." }),
          ifname: z.string({ error: 'expected an interface name' }).regex(IFNAME_RE, { error: 'expected an interface name of 1-15 letters, digits, _ . or -' }).meta({ description: 'Replay only the lines of this interface.' }).optional(),
        },
        'a replay section',
      )
        .meta({ description: 'A node that replays a candump log, to feed recorded vehicle signals.' })
        .optional(),
      socketcan: z.string({ error: 'expected an interface name' }).regex(IFNAME_RE, { error: 'expected an interface name of 1-15 letters, digits, _ . or -' }).meta({ description: 'Host SocketCAN interface to bridge (skipped with a warning when the host has no CAN or no such interface).' }).optional(),
      hostSocket: z.boolean({ error: 'expected true or false' }).default(true).meta({ description: 'A Unix socket <runDir>/_canbus/<name>.sock where host programs join over slcan (default true).' }),
      isolation,
      restart,
    },
    'a CAN bus',
  ).meta({ description: 'An AVP CAN bus (`avp canbus`): VMs join it over slcan (can:) or with a virtio-can device; frames in arbitration order at the bit rate.' });
}

/** The schema of one entry of a VM's `can:` list. */
export function canPortSchema(strictObject: StrictObject) {
  return strictObject(
    {
      bus: name('The bus to join (its name under buses:).'),
      receive: filters('SocketCAN filters (<id>:<mask>, <id>~<mask>, hex) of the frames this VM receives; default all.'),
      send: filters('SocketCAN filters of the frames this VM may send; others are refused and counted (a gateway policy). Default all.'),
      rateLimit: z.number({ error: 'expected frames per second (a number)' }).positive({ error: 'expected a positive number of frames per second' }).max(1_000_000, { error: 'expected at most 1000000 frames per second' }).meta({ description: 'Frames per second this VM may send; more wait (back-pressure).' }).optional(),
      rateBurst: int(1, 1_000_000, 'Frames the VM may send at once before rateLimit applies (default: one second of it).').optional(),
    },
    'a CAN bus port',
  ).meta({ description: 'Joins a CAN bus over slcan on a QEMU virtio console port: the i-th entry is /dev/hvc<i> in the guest (slcand -o -s6 /dev/hvc0 can0; ip link set can0 up).' });
}

/** A bus as parsed. */
export interface ManifestBus {
  name: string;
  bitrate: number;
  dataBitrate?: number | undefined;
  log: boolean | string;
  replay?: { file: string; loop: boolean; start: 'all-open' | 'now'; ifname?: string | undefined } | undefined;
  socketcan?: string | undefined;
  hostSocket: boolean;
  isolation: 'shared' | 'thread' | 'process';
  restart: 'no' | 'on-failure';
}

/** A VM's `can:` entry as parsed. */
export interface ManifestCanPort {
  bus: string;
  receive?: string[] | undefined;
  send?: string[] | undefined;
  rateLimit?: number | undefined;
  rateBurst?: number | undefined;
}

type Add = (path: ReadonlyArray<string | number>, message: string, at?: 'key') => void;

/**
 * Cross-entry rules: unique bus names; every `can:` entry and virtio-can `bus:` names a bus; a VM
 * joins a bus once over slcan; filters parse; a rate burst needs a rate.
 */
export function checkBuses(m: { buses: readonly ManifestBus[]; vms: ReadonlyArray<{ name: string; can: readonly ManifestCanPort[]; devices: ReadonlyArray<{ kind: string; [k: string]: unknown }> }> }, add: Add): void {
  const seen = new Map<string, number>();
  m.buses.forEach((b, i) => {
    const first = seen.get(b.name);
    if (first !== undefined) add(['buses', i, 'name'], `duplicate bus name '${b.name}' (also buses[${first}].name)`);
    else seen.set(b.name, i);
  });
  const unknown = (bus: string) => (m.buses.length === 0 ? `unknown bus '${bus}': no buses are defined (add it under buses:)` : `unknown bus '${bus}'; buses: ${m.buses.map((b) => b.name).join(', ')}`);
  m.vms.forEach((vm, i) => {
    const joined = new Map<string, number>();
    vm.can.forEach((p, j) => {
      const at = ['vms', i, 'can', j];
      if (!seen.has(p.bus)) add([...at, 'bus'], unknown(p.bus));
      const before = joined.get(p.bus);
      if (before !== undefined) add([...at, 'bus'], `VM '${vm.name}' already joins bus '${p.bus}' (can[${before}])`);
      joined.set(p.bus, j);
      for (const key of ['receive', 'send'] as const) {
        (p[key] ?? []).forEach((f, k) => {
          try {
            parseCanFilter(f);
          } catch (e: unknown) {
            add([...at, key, k], errorText(e));
          }
        });
      }
      if (p.rateBurst !== undefined && p.rateLimit === undefined) add([...at, 'rateBurst'], 'rateBurst goes with rateLimit', 'key');
    });
    vm.devices.forEach((d, j) => {
      if (d.kind === 'can' && typeof d['bus'] === 'string' && !seen.has(d['bus'])) add(['vms', i, 'devices', j, 'bus'], unknown(d['bus']));
    });
  });
}

/** A bus with defaults resolved. */
export interface BusModel extends ManifestBus {
  path: string;
}

/** A VM's port on a bus, filters parsed. */
export interface CanPortModel {
  bus: string;
  path: string;
  receive: CanFilter[];
  send: CanFilter[];
  rate?: { framesPerSecond: number; burst?: number };
}

export function toBusModel(b: ManifestBus, i: number): BusModel {
  return { ...b, path: `buses[${i}]` };
}

/** Call only after checkBuses found nothing (filters parse). */
export function toCanPortModel(p: ManifestCanPort, at: string): CanPortModel {
  return {
    bus: p.bus,
    path: at,
    receive: (p.receive ?? []).map(parseCanFilter),
    send: (p.send ?? []).map(parseCanFilter),
    ...(p.rateLimit === undefined ? {} : { rate: { framesPerSecond: p.rateLimit, ...(p.rateBurst === undefined ? {} : { burst: p.rateBurst }) } }),
  };
}

/** The folder of the buses' files in the run directory. */
export const CANBUS_DIR = '_canbus';

/** A node of a planned bus: a VM's slcan port or a virtio-can device. */
export interface PlannedCanNode extends CanNodeConfig {
  vm: string;
  /** `<vm>/can-<bus>` or `<vm>/<device>`: how the run names the port. */
  portName: string;
}

/** The bus config `avp canbus` (or the in-process server) gets; paths are absolute. */
export function busConfig(b: BusModel, runDir: string, baseDir: string, nodes: readonly PlannedCanNode[]): CanBusConfig {
  const dir = join(runDir, CANBUS_DIR);
  const log = b.log === true ? join(dir, `${b.name}.candump`) : b.log === false ? undefined : resolve(runDir, b.log);
  return {
    name: b.name,
    bitrate: b.bitrate,
    ...(b.dataBitrate === undefined ? {} : { dataBitrate: b.dataBitrate }),
    nodes: nodes.map((n) => ({ name: n.name, socket: n.socket, ...(n.receive === undefined ? {} : { receive: n.receive }), ...(n.send === undefined ? {} : { send: n.send }), ...(n.rate === undefined ? {} : { rate: n.rate }) })),
    ...(b.hostSocket ? { hostSocket: join(dir, `${b.name}.sock`) } : {}),
    ...(log === undefined ? {} : { log }),
    ...(b.replay === undefined ? {} : { replay: { file: resolve(baseDir, b.replay.file), loop: b.replay.loop, start: b.replay.start, ...(b.replay.ifname === undefined ? {} : { ifname: b.replay.ifname }) } }),
    ...(b.socketcan === undefined ? {} : { socketcan: b.socketcan }),
  };
}
