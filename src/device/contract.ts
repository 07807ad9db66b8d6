// SPDX-License-Identifier: Apache-2.0
/**
 * The device contract: what every AVP device model implements, and what a transport hands it.
 *
 * Owns: the `VirtioDevice` interface and the `DeviceContext` given at activation. A device model
 * implements semantics only; the same object runs in-process (harness, unit tests), behind
 * vhost-user (real guests) and under the conformance driver.
 * Does not own: negotiation and the status state machine (`runner.ts`, written once for every
 * device), ring mechanics (`queue/`), or any transport.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { Virtqueue as DeviceQueue } from '../queue/virtqueue.js';

/** The logging a device may do; the CLI backs it with pino, tests with an array. */
export interface DeviceLog {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** A watched host fd; `close` stops watching (it does not close the fd). */
export interface HostWatch {
  close(): void;
  /** Also (or no longer) wake up when the fd is writable, for back-pressure on host sockets. */
  setWritable(on: boolean): void;
  /**
   * Wake up (default) or no longer wake up when the fd is readable: a device that cannot take more
   * data (no credit, no guest buffers) stops reading without closing the watch. Polling is
   * level-triggered, so an fd with unread data and read interest off would otherwise wake the loop
   * on every turn. Hang-ups and errors are still reported.
   */
  setReadable(on: boolean): void;
}

/** A pending timer. */
export interface HostTimer {
  cancel(): void;
}

/**
 * Host-side events for devices whose work does not only come from kicks: frames from another
 * switch port, data on a host socket (vsock), a token bucket refilling. The transport's event loop
 * implements it (the vhost-user loop polls these fds together with the kick fds, in the same
 * thread, so callbacks never race with queue processing); the harness implements it by hand.
 * Devices still never call the OS themselves: fds come from host capabilities injected at creation.
 */
export interface HostReactor {
  /** Calls `onReady(readable, writable, hangup)` whenever `fd` is ready, until the watch is closed. */
  watch(fd: number, onReady: (ready: { readable: boolean; writable: boolean; hangup: boolean }) => void): HostWatch;
  /** Calls `fn` once, `ms` milliseconds from now (0: on the next loop turn, after pending I/O). */
  setTimer(ms: number, fn: () => void): HostTimer;
  /** Monotonic milliseconds, the clock timers use. */
  now(): number;
}

/** What a device gets at activation. */
export interface DeviceContext {
  /** The features both sides agreed on (VIRTIO 1.3 §2.2). */
  readonly features: bigint;
  /** Guest-physical memory holding the buffers. */
  readonly memory: GuestMemory;
  /** The started queue at `index`, or undefined while the transport has it stopped. */
  queue(index: number): DeviceQueue | undefined;
  /** Sends a used-buffer notification for queue `index` (interrupt / vhost-user call eventfd). */
  notify(index: number): void;
  /** Marks the device DEVICE_NEEDS_RESET (§2.1.2): it stops processing until reset. */
  needsReset(reason: string): void;
  readonly log: DeviceLog;
  /** Host fds and timers (see HostReactor). */
  readonly reactor: HostReactor;
}

/**
 * Sessions a front-end creates and closes beside the virtqueues. QEMU's virtio-crypto keeps the
 * control queue itself and forwards the guest's CREATE_SESSION and DESTROY_SESSION to a vhost-user
 * back-end as CREATE_CRYPTO_SESSION and CLOSE_CRYPTO_SESSION; a transport that carries such
 * messages hands them here untouched (vhost-user offers PROTOCOL_F_CRYPTO_SESSION only to devices
 * that have this). The message layout is the front-end's and only the device reads it.
 */
export interface DeviceSessionControl {
  /**
   * Creates a session from the front-end's description; returns the reply (the same layout with
   * the session id, or the failure the layout can express). Never throws for hostile input.
   */
  createSession(message: Uint8Array): Uint8Array;
  /** Closes session `id`; false when there is no such session (the transport reports a failure). */
  closeSession(id: bigint): boolean;
}

/** A VIRTIO device model. */
export interface VirtioDevice {
  /** Device ID (VIRTIO 1.3 §5), e.g. 4 for the entropy device. */
  readonly deviceId: number;
  /** Short name used in logs and metrics, e.g. `rng`. */
  readonly name: string;
  /** Maximum size of each queue; the array length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Every feature bit the device offers, device-independent ones (VERSION_1, ...) included. */
  readonly offeredFeatures: bigint;
  /**
   * Offered bits a driver must accept, or the device refuses it (FEATURES_OK not latched; over
   * vhost-user a failed SET_FEATURES), as a device type may demand (virtio-i2c: "MUST reject any
   * driver that doesn't negotiate" ZERO_LENGTH_REQUEST). VERSION_1 is always required.
   */
  readonly requiredFeatures?: bigint | undefined;
  /** Size of the device configuration space in bytes (0 when there is none). */
  readonly configSize: number;
  /**
   * The features to run with when a front-end negotiates with the guest itself and tells the
   * back-end nothing: a transport whose feature set lacks VIRTIO_F_VERSION_1 falls back to these
   * and treats the rings it starts as enabled. QEMU's virtio-crypto over cryptodev-vhost-user sends
   * SET_FEATURES with bit 30 only while its guest has negotiated VERSION_1, INDIRECT_DESC and
   * EVENT_IDX, and never sends SET_VRING_ENABLE (shared/reference/device-wave-2.md §5b; both seen
   * on the wire with QEMU 10.0). Undefined: such a feature set is refused (VERSION_1 required).
   */
  readonly featuresWhenUndisclosed?: bigint | undefined;
  /** Sessions created out of band by the front-end (see DeviceSessionControl); most devices have none. */
  readonly sessions?: DeviceSessionControl | undefined;
  /**
   * The device wants its in-flight requests recorded in front-end-kept shared memory so that a
   * restarted back-end can serve them again (vhost-user INFLIGHT_SHMFD). Only for devices whose
   * requests can be repeated without harm (a block write or read can; a network frame cannot).
   */
  readonly inflightTracking?: boolean | undefined;

  /** Reads `length` bytes of config space at `offset` (bounds already checked by the runner). */
  readConfig(offset: number, length: number): Uint8Array;
  /** Writes config space; devices without writable fields ignore writes (§4.1.3.1 allows none). */
  writeConfig(offset: number, data: Uint8Array): void;

  /** The driver set DRIVER_OK (or the transport started the first queue): start serving. */
  activate(ctx: DeviceContext): void;
  /** The driver made buffers available on queue `index`. */
  queueNotify(index: number): void;
  /** Back to the initial state: forget the context and all queue state. */
  reset(): void;
  /** Counters for `metrics.ts`' documented JSON shape. */
  metrics(): Record<string, unknown>;
  /**
   * Host work that does not wait for a guest driver (a control socket the device listens on): the
   * transport's event loop calls it once, before it serves, with the reactor the device will also
   * get at activation. Optional.
   */
  serveHost?(reactor: HostReactor, log: DeviceLog): void;
  /**
   * The front-end handed the device a socket for a side channel of the device type (vhost-user
   * GPU_SET_SOCKET: QEMU's display socket of vhost-user-gpu-pci). The fd is connected and
   * non-blocking. Returns true when the device took it (it closes it when done); false leaves it
   * to the transport, which closes it and refuses the request. Optional: without it, transports
   * refuse such requests.
   */
  frontendChannel?(fd: number): boolean;
  /**
   * Releases host resources the device opened itself (listening sockets, socket files) when the
   * back-end stops for good. Optional: most devices hold nothing that outlives the process.
   */
  dispose?(): void;
}
