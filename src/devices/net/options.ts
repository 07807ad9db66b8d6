// SPDX-License-Identifier: Apache-2.0
/**
 * Building switches and their ports from plain options (what the device registry receives from
 * `avp switch`, `avp serve net` or a platform manifest, after it crossed into the back-end's
 * worker thread). One options object per port:
 *
 * | option | scope | value | default |
 * |---|---|---|---|
 * | `switch` | grouping | name: ports with the same name share one switch | `default` |
 * | `name` | port | name in logs and metrics | `port<i>` |
 * | `mac` | port | the VM's MAC, `52:54:00:12:34:56` | `02:00:00:00:00:<i+1>` |
 * | `rate` | port | ingress limit `BYTES_PER_S[:PACKETS_PER_S]`, each with an optional k/M/G (×1000) suffix; `0` or `-` for none | none |
 * | `burst` | port | bucket sizes `BYTES[:PACKETS]` | 10 ms of the rate, at least one frame |
 * | `ratePolicy` | port | `backpressure` or `drop` (`shaper.ts`) | `backpressure` |
 * | `priority` | port | 0..7, higher served first | 0 |
 * | `link` | port | `up` or `down` | `up` |
 * | `mtu` | switch | 68..65535 | 1500 |
 * | `macAgeing` | switch | seconds, > 0 | 300 |
 * | `budget` | switch | frames per port per turn, 1..65536 | 64 |
 * | `uplinkTap` | switch | TAP interface name to bridge to | none |
 *
 * Switch-wide options may be given on any port of the switch; ports that give one must agree.
 * Does not own: command-line syntax (cli), forwarding (switch.ts), the TAP's native calls
 * (injected as `openTap`).
 */
import { NetConfigError } from './errors.js';
import type { OpenUplink, NetUplink } from './host.js';
import type { NetPort } from './model.js';
import type { RatePolicy, ShaperOptions } from './shaper.js';
import { NetSwitch, type NetPortConfig, type NetSwitchOptions } from './switch.js';
import { errorText } from '../../errors.js';

/** Capability names for `--print-capabilities`. */
export const NET_CAPABILITIES = ['mac', 'mtu', 'rate', 'priority', 'uplink-tap'] as const;

const SUFFIX: Readonly<Record<string, number>> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 };

function flag(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function bad(name: string, expected: string, got: unknown): NetConfigError {
  return new NetConfigError('NET_BAD_OPTION', `${flag(name)} must be ${expected}, got ${JSON.stringify(got)}`);
}

/** `1500`, `2.5M`, `10k` → a positive number (0 allowed when `allowZero`). */
function parseAmount(text: string, name: string, allowZero: boolean): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text.trim());
  const v = m === null ? NaN : Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? NaN);
  if (!Number.isFinite(v) || v > 1e15 || (v === 0 && !allowZero)) throw bad(name, 'a positive number with an optional k/M/G suffix (e.g. 125k or 1M:1000)', text);
  return v;
}

/** `A[:B]` → [A, B?]; `0` or `-` → undefined (no limit). */
function parsePair(v: unknown, name: string): [number | undefined, number | undefined] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') v = String(v);
  if (typeof v !== 'string') throw bad(name, 'BYTES[:PACKETS]', v);
  if (v === '-' || v === '0') return undefined;
  const parts = v.split(':');
  if (parts.length > 2) throw bad(name, 'BYTES[:PACKETS]', v);
  const [a, b] = parts;
  const bytes = a === undefined || a === '' || a === '-' ? undefined : parseAmount(a, name, true) || undefined;
  const packets = b === undefined || b === '' || b === '-' ? undefined : parseAmount(b, name, true) || undefined;
  return [bytes, packets];
}

function intOpt(o: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw bad(name, `an integer from ${min} to ${max}`, v);
  return n;
}

function numOpt(o: Record<string, unknown>, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw bad(name, 'a positive number', v);
  return n;
}

function strOpt(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(name, 'a non-empty string', v);
  return v;
}

/** The port part of one options object. @throws NetConfigError */
export function parsePortOptions(o: Record<string, unknown>): NetPortConfig {
  const cfg: NetPortConfig = {};
  const name = strOpt(o, 'name');
  if (name !== undefined) cfg.name = name;
  const mac = strOpt(o, 'mac');
  if (mac !== undefined) cfg.mac = mac;
  const priority = intOpt(o, 'priority', 0, 7);
  if (priority !== undefined) cfg.priority = priority;
  const link = o['link'];
  if (link !== undefined) {
    if (link !== 'up' && link !== 'down') throw bad('link', "'up' or 'down'", link);
    cfg.linkUp = link === 'up';
  }
  const rate = parsePair(o['rate'], 'rate');
  const burst = parsePair(o['burst'], 'burst');
  const policy = o['ratePolicy'];
  if (policy !== undefined && policy !== 'backpressure' && policy !== 'drop') throw bad('ratePolicy', "'backpressure' or 'drop'", policy);
  if (rate !== undefined && (rate[0] !== undefined || rate[1] !== undefined)) {
    const shaping: ShaperOptions = {};
    if (rate[0] !== undefined) shaping.bytesPerSec = rate[0];
    if (rate[1] !== undefined) shaping.packetsPerSec = rate[1];
    if (burst?.[0] !== undefined) shaping.burstBytes = burst[0];
    if (burst?.[1] !== undefined) shaping.burstPackets = burst[1];
    if (policy !== undefined) shaping.policy = policy as RatePolicy;
    cfg.shaping = shaping;
  } else if (burst !== undefined) throw bad('burst', 'given only together with --rate', o['burst']);
  return cfg;
}

/** The switch-wide part of one options object (undefined fields were not given). */
function parseSwitchOptions(o: Record<string, unknown>): { mtu?: number; macAgeing?: number; budget?: number; uplinkTap?: string } {
  const out: { mtu?: number; macAgeing?: number; budget?: number; uplinkTap?: string } = {};
  const mtu = intOpt(o, 'mtu', 68, 65535);
  if (mtu !== undefined) out.mtu = mtu;
  const ageing = numOpt(o, 'macAgeing');
  if (ageing !== undefined) out.macAgeing = ageing;
  const budget = intOpt(o, 'budget', 1, 65536);
  if (budget !== undefined) out.budget = budget;
  const tap = strOpt(o, 'uplinkTap');
  if (tap !== undefined) out.uplinkTap = tap;
  return out;
}

/** Merges the switch-wide options of a switch's ports. @throws NetConfigError when they disagree. */
function mergeSwitchOptions(name: string, all: ReadonlyArray<Record<string, unknown>>): ReturnType<typeof parseSwitchOptions> {
  const merged: Record<string, unknown> = {};
  for (const o of all) {
    for (const [k, v] of Object.entries(parseSwitchOptions(o))) {
      if (merged[k] !== undefined && merged[k] !== v) {
        throw new NetConfigError('NET_CONFLICTING_OPTION', `switch ${name}: ports disagree on ${flag(k)} (${String(merged[k])} and ${String(v)})`);
      }
      merged[k] = v;
    }
  }
  // Safe: every key and value came out of parseSwitchOptions.
  return merged as ReturnType<typeof parseSwitchOptions>;
}

export interface NetHost {
  /** Opens a TAP (sys/tap.ts); absent where the host cannot (then `uplinkTap` is refused). */
  openTap?: OpenUplink;
}

/**
 * Builds the switches for these ports, in order: ports with the same `switch` option share one
 * switch. Opens the uplink TAP when one is asked for (failing early: a back-end must not start
 * without a feature it was asked for).
 * @throws NetConfigError naming the bad option, or NET_UPLINK_UNAVAILABLE.
 */
export function createNetGroup(options: ReadonlyArray<Record<string, unknown>>, host: NetHost = {}): NetPort[] {
  const bySwitch = new Map<string, number[]>();
  options.forEach((o, i) => {
    const name = o['switch'] === undefined ? 'default' : strOpt(o, 'switch') ?? 'default';
    bySwitch.set(name, [...(bySwitch.get(name) ?? []), i]);
  });
  const out = new Array<NetPort>(options.length);
  for (const [name, indexes] of bySwitch) {
    // Safe: indexes come from options.forEach.
    const group = indexes.map((i) => options[i]!);
    const ports = buildSwitch(name, group, host);
    indexes.forEach((i, j) => {
      // Safe: buildSwitch returns one port per options object.
      out[i] = ports[j]!;
    });
  }
  return out;
}

function buildSwitch(name: string, group: ReadonlyArray<Record<string, unknown>>, host: NetHost): NetPort[] {
  const s = mergeSwitchOptions(name, group);
  const portCfgs = group.map(parsePortOptions);
  let uplink: NetUplink | undefined;
  if (s.uplinkTap !== undefined) {
    if (host.openTap === undefined) throw new NetConfigError('NET_UPLINK_UNAVAILABLE', `--uplink-tap ${s.uplinkTap}: this back-end cannot open TAP devices`);
    try {
      uplink = host.openTap(s.uplinkTap);
    } catch (e: unknown) {
      throw new NetConfigError('NET_UPLINK_UNAVAILABLE', `--uplink-tap ${s.uplinkTap}: ${errorText(e)}`, { cause: e });
    }
  }
  try {
    const opts: NetSwitchOptions = { name };
    if (s.mtu !== undefined) opts.mtu = s.mtu;
    if (s.macAgeing !== undefined) opts.macAgeingMs = s.macAgeing * 1000;
    if (s.budget !== undefined) opts.budget = s.budget;
    if (uplink !== undefined) opts.uplink = uplink;
    const sw = new NetSwitch(opts);
    return portCfgs.map((cfg) => sw.addPort(cfg));
  } catch (e: unknown) {
    uplink?.close();
    if (e instanceof RangeError) throw new NetConfigError('NET_BAD_OPTION', e.message, { cause: e });
    throw e;
  }
}
