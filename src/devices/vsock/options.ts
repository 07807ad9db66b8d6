// SPDX-License-Identifier: Apache-2.0
/**
 * Building vsock devices from plain options (what the device registry receives from the CLI or a
 * platform manifest, after they crossed into the back-end's worker thread).
 *
 * Owns: option names and checks: `guestCid` (required), `udsPath`, `allowPeer` (CIDs: a number, a
 * string such as "4,5", or an array of them), `connBuffer`, `maxConnections` (commander spells them
 * `--guest-cid`, `--uds-path`, `--allow-peer`, `--conn-buffer`, `--max-connections`), and the
 * `--vm 'socket=P,cid=N[,uds=U][,allow=A+B]'` syntax with which one `avp serve vsock` process
 * serves several VMs as one group.
 * Does not own: command-line parsing (cli), sockets (injected), device semantics.
 */
import { VsockError } from './errors.js';
import { VsockFabric } from './fabric.js';
import type { UnixStreamOps } from './host.js';
import { VsockDevice, type VsockOptions } from './model.js';
import { VSOCK_MAX_GUEST_CID, VSOCK_MIN_GUEST_CID } from './spec.js';

/** Capability names for `--print-capabilities` (vhost-user.rst defines none for vsock). */
export const VSOCK_CAPABILITIES = ['guest-cid', 'uds-path'] as const;

function flagName(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function bad(message: string): VsockError {
  return new VsockError('VSOCK_BAD_OPTION', message);
}

/** An integer option given as a number or a decimal string. @throws VsockError */
function intOpt(options: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw bad(`${flagName(name)} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return n;
}

/** CIDs from a number, "4,5" / "4+5", or an array of those. @throws VsockError */
export function parseCidList(v: unknown, what = '--allow-peer'): number[] {
  if (v === undefined) return [];
  const items = Array.isArray(v) ? (v as unknown[]) : [v];
  const out: number[] = [];
  for (const item of items) {
    const parts = typeof item === 'number' ? [item] : typeof item === 'string' ? item.split(/[,+\s]+/).filter((p) => p !== '') : [item];
    for (const p of parts) {
      const n = typeof p === 'string' ? Number(p) : p;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < VSOCK_MIN_GUEST_CID || n > VSOCK_MAX_GUEST_CID) {
        throw bad(`${what} takes guest CIDs from ${VSOCK_MIN_GUEST_CID} to ${VSOCK_MAX_GUEST_CID}, got ${String(p)}`);
      }
      out.push(n);
    }
  }
  return out;
}

/** Device options from plain options (without the sockets and group). @throws VsockError */
export function vsockOptionsFrom(options: Record<string, unknown>): Omit<VsockOptions, 'host' | 'fabric'> {
  const guestCid = intOpt(options, 'guestCid', VSOCK_MIN_GUEST_CID, VSOCK_MAX_GUEST_CID);
  if (guestCid === undefined) throw bad(`--guest-cid N is required: the guest's CID (${VSOCK_MIN_GUEST_CID} or more)`);
  const out: Omit<VsockOptions, 'host' | 'fabric'> = { guestCid, allowPeers: parseCidList(options['allowPeer']) };
  const uds = options['udsPath'];
  if (uds !== undefined) {
    if (typeof uds !== 'string' || uds === '') throw bad(`--uds-path must be a socket path, got ${String(uds)}`);
    out.udsPath = uds;
  }
  const buf = intOpt(options, 'connBuffer', 4096, 64 << 20);
  if (buf !== undefined) out.connBufferBytes = buf;
  const max = intOpt(options, 'maxConnections', 1, 65536);
  if (max !== undefined) out.maxConnections = max;
  return out;
}

/**
 * Builds the vsock devices of one back-end thread as one group: guests can reach each other where
 * both allow-lists agree. If one device cannot be built, those already built are disposed.
 * @throws VsockError naming the bad option (or a duplicate CID)
 */
export function createVsockGroup(optionsList: ReadonlyArray<Record<string, unknown>>, host: UnixStreamOps | undefined): VsockDevice[] {
  const fabric = new VsockFabric();
  const built: VsockDevice[] = [];
  try {
    for (const options of optionsList) {
      const o = vsockOptionsFrom(options);
      built.push(new VsockDevice({ ...o, fabric, ...(host === undefined ? {} : { host }) }));
    }
    return built;
  } catch (e: unknown) {
    for (const d of built) d.dispose();
    throw e;
  }
}

/** One VM of `--vm`: its vhost-user socket and its device options. */
export interface VsockVmPort {
  name: string;
  socketPath: string;
  options: Record<string, unknown>;
}

/**
 * Parses one `--vm` value: `socket=PATH,cid=N[,uds=PATH][,allow=CID+CID...]` (fields in any order;
 * `allow` may be repeated). `inherit` supplies tuning options (`connBuffer`, `maxConnections`).
 * @throws VsockError naming the field
 */
export function parseVmSpec(text: string, inherit: Record<string, unknown> = {}): VsockVmPort {
  let socketPath: string | undefined;
  const options: Record<string, unknown> = {};
  for (const key of ['connBuffer', 'maxConnections']) if (inherit[key] !== undefined) options[key] = inherit[key];
  const allow: string[] = [];
  for (const field of text.split(',')) {
    const eq = field.indexOf('=');
    const k = eq < 0 ? field : field.slice(0, eq);
    const v = eq < 0 ? '' : field.slice(eq + 1);
    if (v === '') throw bad(`--vm ${JSON.stringify(text)}: field ${JSON.stringify(field)} needs a value (socket=PATH,cid=N[,uds=PATH][,allow=CID+CID])`);
    if (k === 'socket') socketPath = v;
    else if (k === 'cid') options['guestCid'] = v;
    else if (k === 'uds') options['udsPath'] = v;
    else if (k === 'allow') allow.push(v);
    else throw bad(`--vm ${JSON.stringify(text)}: unknown field ${JSON.stringify(k)} (socket, cid, uds, allow)`);
  }
  if (socketPath === undefined) throw bad(`--vm ${JSON.stringify(text)}: socket=PATH is required`);
  if (options['guestCid'] === undefined) throw bad(`--vm ${JSON.stringify(text)}: cid=N is required`);
  if (allow.length > 0) options['allowPeer'] = parseCidList(allow, '--vm allow=');
  // Checked now, in the CLI, so a typo fails before any socket is created.
  const cid = vsockOptionsFrom(options).guestCid;
  return { name: `vsock-${cid}`, socketPath, options };
}

/**
 * Splits `avp serve vsock` options into its ports: the main one (from --guest-cid and friends,
 * served on --socket-path/--fd; undefined when only --vm was given) and one per --vm.
 * @throws VsockError
 */
export function splitVsockPorts(options: Record<string, unknown>): { main: Record<string, unknown> | undefined; extra: VsockVmPort[] } {
  const { vm, ...rest } = options;
  const specs = vm === undefined ? [] : Array.isArray(vm) ? (vm as unknown[]) : [vm];
  const extra = specs.map((s) => {
    if (typeof s !== 'string') throw bad(`--vm takes 'socket=PATH,cid=N,...', got ${String(s)}`);
    return parseVmSpec(s, rest);
  });
  const main = rest['guestCid'] === undefined && extra.length > 0 ? undefined : rest;
  return { main, extra };
}
