// SPDX-License-Identifier: Apache-2.0
/**
 * What a check of the vhost-user conformance suite is, what it gets to work with, and the helpers
 * every check group shares.
 *
 * Owns: the `Check` type (metadata from `device/conformance.ts` plus `run`), the `CheckContext`
 * the runner hands to a check (fresh connections to the back-end under test, the device's probe
 * and deadlines), `driverCheck`, the one way checks are written (a table entry whose body gets a
 * connection the builder set up; literal `Check` objects remain valid), classifying exceptions (a back-end that went silent, closed the connection, or
 * answered something malformed), and `probeOnce`, the "does the device still work" request.
 * Does not own: running checks or verdict overrides (runner.ts), the checks themselves (checks/).
 */
import { fail, pass, skip, type CheckGroup, type CheckInfo, type CheckOutcome, type DeviceConformance } from '../device/conformance.js';
import { QueueError } from '../queue/errors.js';
import { hasFeature } from '../spec/virtio.js';
import { SysError } from '../sys/index.js';
import { VhostUserFrontendError } from '../vhost-user/frontend-errors.js';
import { VhostUserProtocolError } from '../vhost-user/errors.js';
import type { VhostUserDriver, VhostUserStartOptions } from './driver.js';
import { ConformanceError } from './errors.js';

/** What a check gets from the runner. */
export interface CheckContext {
  readonly device: DeviceConformance;
  /** Deadline for one reply or completion. */
  readonly timeoutMs: number;
  /**
   * A new connection to the back-end with the offer read (GET_FEATURES, GET_PROTOCOL_FEATURES).
   * The runner closes every connection a check opened when the check ends, and looks for stray
   * writes in each.
   * @throws SysError ECONNREFUSED / ENOENT when nothing listens any more.
   */
  connect(): VhostUserDriver;
}

/** A check of the catalog. */
export interface Check extends CheckInfo {
  run(ctx: CheckContext): CheckOutcome;
}

/** How far `driverCheck` sets a fresh connection up before the check's body runs. */
export type CheckSetup =
  /** Connected, the offer read (GET_FEATURES, GET_PROTOCOL_FEATURES): the body negotiates itself. */
  | 'connected'
  /** Plus SET_PROTOCOL_FEATURES and SET_OWNER (`VhostUserDriver.handshake`). */
  | 'handshaken'
  /** Plus features, memory and the probe queue (`VhostUserDriver.start`). */
  | 'started';

/**
 * A check as a table entry: its metadata, what the back-end must offer for it to apply, how far
 * the connection is set up, and a body that gets that connection. Every check group is written
 * this way (device checks too: their `run(d)` is a body with setup 'connected'); `driverCheck`
 * writes the preamble once.
 */
export interface DriverCheckSpec extends CheckInfo {
  /** SKIP reason when the back-end cannot be checked this way, asked right after connecting. */
  readonly needs?: (d: VhostUserDriver, ctx: CheckContext) => string | null;
  /** Default 'started'. */
  readonly setup?: CheckSetup;
  /** Options of `start` (setup 'started'; default none). */
  readonly start?: (d: VhostUserDriver) => VhostUserStartOptions;
  /** The check itself. `ctx` gives further connections (reconnect and recovery checks). */
  run(d: VhostUserDriver, ctx: CheckContext): CheckOutcome;
}

/** The `Check` of a table entry: connect, `needs` (SKIP), set up, then the body. */
export function driverCheck(spec: DriverCheckSpec): Check {
  const { id, title, source, level, group, devices } = spec;
  return {
    id,
    title,
    source,
    level,
    group,
    devices,
    run(ctx) {
      const d = ctx.connect();
      const why = spec.needs?.(d, ctx) ?? null;
      if (why !== null) return skip(why);
      const setup = spec.setup ?? 'started';
      if (setup === 'handshaken') d.handshake();
      if (setup === 'started') d.start(spec.start?.(d) ?? {});
      return spec.run(d, ctx);
    },
  };
}

/** An entry of a generic group's table (protocol, queue, hostile): it applies to every device. */
export type GenericCheckSpec = Omit<DriverCheckSpec, 'group' | 'devices'>;

/** The builder of generic group `group`: supplies `group` and `devices: 'all'`. */
export function genericChecks(group: CheckGroup): (spec: GenericCheckSpec) => Check {
  return (spec) => driverCheck({ ...spec, group, devices: 'all' });
}

/** `needs`: the device offers feature `bit` (SKIP otherwise). */
export function offersFeature(bit: number, name: string): (d: VhostUserDriver) => string | null {
  return (d) => (hasFeature(d.offeredFeatures, bit) ? null : `${name} is not offered`);
}

/** SKIP reason when the back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES (bit 30). */
export const NO_PROTOCOL_FEATURES = 'VHOST_USER_F_PROTOCOL_FEATURES (bit 30) is not offered';

/** `needs`: the back-end offers protocol features and protocol feature `bit` (SKIP otherwise). */
export function offersProtocol(bit: number, name: string): (d: VhostUserDriver) => string | null {
  return (d) => {
    if (d.offeredProtocol === null) return NO_PROTOCOL_FEATURES;
    return d.offersProtocol(bit) ? null : `protocol feature ${name} is not offered`;
  };
}

/**
 * True for the ways a back-end fails to answer during a check: no completion or reply in time, a
 * ring error it signalled, a closed connection, a malformed reply. Everything else thrown inside a
 * check is either a device fault the check judges itself (VIRTQ_DRIVER_BAD_USED) or an AVP bug.
 */
export function isBackendSilence(e: unknown): e is ConformanceError | VhostUserFrontendError | VhostUserProtocolError {
  if (e instanceof ConformanceError) return e.code === 'CONFORMANCE_NO_COMPLETION' || e.code === 'CONFORMANCE_RING_ERROR';
  return e instanceof VhostUserFrontendError || e instanceof VhostUserProtocolError;
}

/** True when the device returned a used element that was not an outstanding chain (§2.7.8). */
export function isBadUsed(e: unknown): e is QueueError {
  return e instanceof QueueError && e.code === 'VIRTQ_DRIVER_BAD_USED';
}

/** True when connecting failed because nothing listens on the socket any more. */
export function isConnectRefused(e: unknown): e is SysError {
  return e instanceof SysError && (e.errnoName === 'ECONNREFUSED' || e.errnoName === 'ENOENT');
}

export { errorText } from '../errors.js';

/**
 * Sends the device's probe request on `d` (started) and checks the answer. Returns what is wrong,
 * or null. Transport failures propagate (see `isBackendSilence`).
 */
export function probeOnce(d: VhostUserDriver): string | null {
  const p = d.device.probe(d);
  const used = d.request(p.buffers);
  return p.verify(used);
}

/** Sends the probe `n` times on `d` (started); returns the first problem, or null. */
export function probes(d: VhostUserDriver, n: number): string | null {
  for (let i = 0; i < n; i++) {
    const bad = probeOnce(d);
    if (bad !== null) return `request ${i + 1}: ${bad}`;
  }
  return null;
}

/** PASS (with `details`) when nothing is `wrong`, else FAIL saying what. */
export function passUnless(wrong: string | null, details = ''): CheckOutcome {
  return wrong === null ? pass(details) : fail(wrong);
}

export { hex } from '../errors.js';
