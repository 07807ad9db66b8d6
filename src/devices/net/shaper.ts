// SPDX-License-Identifier: Apache-2.0
/**
 * Ingress traffic shaping of one switch port: a token bucket for bytes and one for packets, driven
 * by the switch's clock (`HostReactor.now()`, milliseconds), so tests run it on a fake clock.
 *
 * Owns: the token arithmetic and the two policies when tokens run out.
 * - `backpressure` (default): the switch stops popping the port's transmit ring until the buckets
 *   allow a frame again; frames wait in the guest's ring (and then in its qdisc), nothing is lost,
 *   and TCP sees a slower link instead of losses. The switch cannot see a frame's size before
 *   popping it, so a frame is admitted while the byte bucket is positive and then charged in full:
 *   the bucket may go negative by at most one frame, and the port waits until it is positive
 *   again. Over any interval of t seconds a port sends at most `burst + rate·t + one frame` bytes.
 * - `drop`: frames are popped as usual; one that the buckets cannot pay for in full is dropped
 *   (counted as `drops.rateLimit`) and costs nothing.
 * The packet bucket never goes negative: each frame costs exactly one token.
 * Does not own: when to look again (the switch arms a reactor timer for `msUntilAdmit`).
 */
import { NetConfigError } from './errors.js';

/** A bucket of `rate` tokens per second holding at most `burst`, full at creation. */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #last: number;

  /** @throws NetConfigError NET_BAD_OPTION unless rate and burst are positive finite numbers. */
  constructor(rate: number, burst: number, now: number) {
    if (!Number.isFinite(rate) || rate <= 0) throw new NetConfigError('NET_BAD_OPTION', `token rate must be positive, got ${rate}`);
    if (!Number.isFinite(burst) || burst <= 0) throw new NetConfigError('NET_BAD_OPTION', `token burst must be positive, got ${burst}`);
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Tokens after refilling up to `now` (the clock never runs backwards; a step back adds nothing). */
  tokens(now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + (this.rate * (now - this.#last)) / 1000);
      this.#last = now;
    }
    return this.#tokens;
  }

  /** Removes `n` tokens (may go negative: see the back-pressure rule above). */
  take(n: number, now: number): void {
    this.tokens(now);
    this.#tokens -= n;
  }

  /** Milliseconds until the bucket holds more than `level` tokens (0 when it already does). */
  msUntilAbove(level: number, now: number): number {
    const missing = level - this.tokens(now);
    if (missing < 0) return 0;
    // +1 ms: strictly above `level`, even when the refill lands exactly on it.
    return Math.floor((missing * 1000) / this.rate) + 1;
  }

  /** Milliseconds until the bucket holds at least `level` tokens (0 when it already does). */
  msUntilAtLeast(level: number, now: number): number {
    const missing = level - this.tokens(now);
    // Float refills land a hair short of whole numbers (0.1 + 0.2); within 1e-9 counts as there.
    if (missing <= 1e-9) return 0;
    // The epsilon absorbs float error (0.3 · 1000 / 10 = 30.000000000000004 must give 30).
    return Math.ceil((missing * 1000) / this.rate - 1e-9);
  }
}

export type RatePolicy = 'backpressure' | 'drop';

export interface ShaperOptions {
  /** Bytes per second (Ethernet frame bytes, without the virtio-net header); undefined: no limit. */
  bytesPerSec?: number;
  /** Frames per second; undefined: no limit. */
  packetsPerSec?: number;
  /** Byte bucket size (default: see `defaultBurstBytes`). */
  burstBytes?: number;
  /** Packet bucket size (default: see `defaultBurstPackets`). */
  burstPackets?: number;
  policy?: RatePolicy;
}

/** Default byte burst: 10 ms of traffic, but never less than one frame of `maxFrame` bytes. */
export function defaultBurstBytes(bytesPerSec: number, maxFrame: number): number {
  return Math.max(maxFrame, Math.ceil(bytesPerSec / 100));
}

/** Default packet burst: 10 ms of traffic, at least one frame. */
export function defaultBurstPackets(packetsPerSec: number): number {
  return Math.max(1, Math.ceil(packetsPerSec / 100));
}

/** The two buckets of one port. */
export class Shaper {
  readonly policy: RatePolicy;
  readonly bytes: TokenBucket | undefined;
  readonly packets: TokenBucket | undefined;

  /** @throws NetConfigError NET_BAD_OPTION for a non-positive rate or burst. */
  constructor(opts: ShaperOptions, maxFrame: number, now: number) {
    this.policy = opts.policy ?? 'backpressure';
    const { bytesPerSec, packetsPerSec } = opts;
    this.bytes = bytesPerSec === undefined ? undefined : new TokenBucket(bytesPerSec, opts.burstBytes ?? defaultBurstBytes(bytesPerSec, maxFrame), now);
    this.packets = packetsPerSec === undefined ? undefined : new TokenBucket(packetsPerSec, opts.burstPackets ?? defaultBurstPackets(packetsPerSec), now);
  }

  /** Back-pressure: may the next frame (size unknown yet) be popped now? */
  mayPop(now: number): boolean {
    return this.msUntilAdmit(now) === 0;
  }

  /** Back-pressure: milliseconds until `mayPop` turns true (0: now). */
  msUntilAdmit(now: number): number {
    // Bytes: admitted while positive (a frame may then overdraw). Packets: a whole token.
    const b = this.bytes?.msUntilAbove(0, now) ?? 0;
    const p = this.packets?.msUntilAtLeast(1, now) ?? 0;
    return Math.max(b, p);
  }

  /** Charges a frame of `len` bytes that was sent. */
  charge(len: number, now: number): void {
    this.bytes?.take(len, now);
    this.packets?.take(1, now);
  }

  /** Drop policy: charges and returns true when both buckets can pay for the frame in full. */
  tryCharge(len: number, now: number): boolean {
    if (this.bytes !== undefined && this.bytes.tokens(now) < len) return false;
    if (this.packets !== undefined && this.packets.tokens(now) < 1) return false;
    this.charge(len, now);
    return true;
  }
}
