// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of virtio-can: the CAN bus the device's controller sits on.
 *
 * Owns: the `CanLink` interface the device drives (start and stop the controller, offer a frame,
 * hear frames, bus-off and back-pressure) and `StandaloneLink`, a bus with nobody else on it that
 * still acknowledges every frame (so a guest can send without a peer): frames are dropped, or
 * echoed back in loopback mode (a controller's self-test mode), and an optional fault makes the
 * controller go bus-off after N frames, for conformance tests of bus-off handling.
 * Does not own: the AVP CAN bus connection (bus-link.ts), virtqueues (model.ts).
 */
import type { CanFrame } from '../../can/index.js';
import type { HostReactor } from '../../device/contract.js';

/** What the link tells the device. */
export interface CanLinkEvents {
  /** A frame from the bus. */
  frame(f: CanFrame): void;
  /** The controller went bus-off (the bus said so, or a fault). */
  busOff(): void;
  /** The link can take frames again after `send` said 'busy'. */
  writable(): void;
}

export interface CanLink {
  /** Called once at device activation: where events go, and the device's reactor. */
  attach(events: CanLinkEvents, reactor: HostReactor): void;
  /** The controller joins the bus (SET_CTRL_MODE_START; restarts a bus-off controller); false when the bus cannot be reached. */
  start(): boolean;
  /** The controller leaves the bus. */
  stop(): void;
  /** Offers a frame: 'ok' (scheduled), 'busy' (try again after `writable`), 'refused' (the bus said no). */
  send(f: CanFrame): 'ok' | 'busy' | 'refused';
  /** The device is reset or gone: drop events, release host resources (idempotent). */
  detach(): void;
  /** Counters for metrics. */
  readonly stats: Record<string, number | string | boolean>;
}

/** A bus with only this controller (and an acknowledging monitor) on it. */
export class StandaloneLink implements CanLink {
  readonly stats = { sent: 0, looped: 0, faults: 0 };
  readonly #loopback: boolean;
  readonly #busOffAfter: number | undefined;
  #events: CanLinkEvents | undefined;
  #reactor: HostReactor | undefined;
  #sinceStart = 0;

  /** `busOffAfter`: the N-th frame since the controller's last start drives it bus-off (and fails). */
  constructor(opts: { loopback?: boolean; busOffAfter?: number } = {}) {
    this.#loopback = opts.loopback ?? false;
    this.#busOffAfter = opts.busOffAfter;
  }

  attach(events: CanLinkEvents, reactor: HostReactor): void {
    this.#events = events;
    this.#reactor = reactor;
  }

  start(): boolean {
    this.#sinceStart = 0;
    return true;
  }

  stop(): void {}

  send(f: CanFrame): 'ok' | 'busy' | 'refused' {
    this.#sinceStart++;
    if (this.#busOffAfter !== undefined && this.#sinceStart >= this.#busOffAfter) {
      // The fault: this frame's transmission drives the controller bus-off (the device is told now).
      this.stats.faults++;
      this.#events?.busOff();
      return 'refused';
    }
    this.stats.sent++;
    if (this.#loopback) {
      this.stats.looped++;
      // The echo arrives after the send completes, as a frame from the bus would.
      this.#reactor?.setTimer(0, () => this.#events?.frame(f));
    }
    return 'ok';
  }

  detach(): void {
    this.#events = undefined;
    this.#reactor = undefined;
  }
}
