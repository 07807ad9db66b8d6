// SPDX-License-Identifier: Apache-2.0
/**
 * The host side of the switch: an optional uplink to a host network interface (a TAP device), as an
 * interface the switch uses (the fake for tests, `FakeUplink`, is in `testing.ts`).
 *
 * Owns: the `NetUplink` contract. Opening a TAP needs native calls (open /dev/net/tun, TUNSETIFF),
 * which live in `sys/tap.ts`; the composition root passes `openTap` in through the registry's host
 * capabilities, so this folder never imports `sys`.
 * Does not own: forwarding (`switch.ts`), polling the fd (the switch watches it with the reactor).
 *
 * Frames on the uplink are plain Ethernet frames: the TAP is opened with IFF_NO_PI and without
 * IFF_VNET_HDR, so there is no packet-information or virtio-net header on that side.
 */

/** A host network interface carrying Ethernet frames. */
export interface NetUplink {
  /** Interface name (e.g. `avp0`). */
  readonly name: string;
  /** The fd the switch watches for readability (non-blocking). */
  readonly fd: number;
  /**
   * Reads one frame into `buf`; returns its length, or 0 when no frame is pending. A frame longer
   * than `buf` is cut to `buf.length` (the switch passes one byte more than it accepts to see that).
   */
  read(buf: Uint8Array): number;
  /** Sends one frame; false when the host cannot take it now (its queue is full): the frame is lost. */
  write(frame: Uint8Array): boolean;
  /** Closes the fd; a TAP that is not persistent disappears with it. */
  close(): void;
}

/** Opens the named TAP device (creating it when it does not exist and the process may). */
export type OpenUplink = (name: string) => NetUplink;
