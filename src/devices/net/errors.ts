// SPDX-License-Identifier: Apache-2.0
/**
 * Errors of the virtio-net switch.
 *
 * Owns: `NetConfigError`, a switch or port option that is missing, malformed or contradictory
 * (what `avp switch`, `avp serve net` and the platform runner report to the user, naming the
 * option). Guest faults are never errors here: a bad frame or chain is dropped and counted
 * (`metrics.ts`), and the switch goes on.
 */
import { AvpError } from '../../errors.js';

export type NetConfigErrorCode =
  /** An option value is malformed or out of range. */
  | 'NET_BAD_OPTION'
  /** Ports of one switch disagree on a switch-wide option (MTU, ageing, uplink, budget). */
  | 'NET_CONFLICTING_OPTION'
  /** The uplink TAP could not be opened, or this host cannot open one. */
  | 'NET_UPLINK_UNAVAILABLE';

/** A switch or port option is wrong; the message names it and says what is expected. */
export class NetConfigError extends AvpError {
  override readonly code: NetConfigErrorCode;

  constructor(code: NetConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
