// SPDX-License-Identifier: Apache-2.0
/**
 * What a check of the vhost-user conformance suite is, what it gets to work with, and the helpers
 * every check group shares.
 *
 * Owns: the `Check` type (metadata from `device/conformance.ts` plus `run`), the `CheckContext`
 * the runner hands to a check (fresh connections to the back-end under test, the device's probe
 * and deadlines), classifying exceptions (a back-end that went silent, closed the connection, or
 * answered something malformed), and `probeOnce`, the "does the device still work" request.
 * Does not own: running checks or verdict overrides (runner.ts), the checks themselves (checks/).
 */
import type { CheckInfo, CheckOutcome, DeviceConformance } from '../device/conformance.js';
import { QueueError } from '../queue/errors.js';
import { SysError } from '../sys/index.js';
import { VhostUserFrontendError } from '../vhost-user/frontend-errors.js';
import { VhostUserProtocolError } from '../vhost-user/errors.js';
import type { VhostUserDriver } from './driver.js';
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

export { hex } from '../errors.js';
