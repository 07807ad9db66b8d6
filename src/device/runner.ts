// SPDX-License-Identifier: Apache-2.0
/**
 * Runs a device model for a transport: the device status state machine, feature negotiation and
 * queue lifecycle, written once for every device (VIRTIO 1.3 §2.1, §3.1).
 *
 * Owns: the status field and its legal transitions (ACKNOWLEDGE → DRIVER → FEATURES_OK →
 * DRIVER_OK; FAILED; NEEDS_RESET set by the device; 0 = reset), the driver's features, started
 * queues, and the `DeviceContext` the device is activated with.
 * Does not own: how a transport learns about status, features or kicks. Two kinds of transport
 * drive it:
 * - status-driven (the in-process harness, a future virtio-mmio/pci model): `writeStatus`,
 *   `setDriverFeatures`, `configureQueue`, then DRIVER_OK starts the configured queues;
 * - vhost-user, which has no status register: `acceptFeatures` then `startQueue`/`stopQueue`
 *   per ring (the device is activated when the first ring starts).
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import { DeviceQueue } from '../queue/split-device.js';
import { PackedDeviceQueue } from '../queue/packed-device.js';
import { resolvePackedRings, resolveRings, type RingAddresses, type RingViews } from '../queue/rings.js';
import type { Virtqueue } from '../queue/virtqueue.js';
import type { QueueError } from '../queue/errors.js';
import type { InflightTracker } from '../queue/inflight.js';
import { isValidQueueSize } from '../spec/split-ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  featureBit,
  hasFeature,
} from '../spec/virtio.js';
import type { DeviceContext, DeviceLog, HostReactor, VirtioDevice } from './contract.js';
import { ManualReactor } from './manual-reactor.js';
import { DeviceError } from './errors.js';
import { negotiateFeatures } from './negotiation.js';

export interface RunnerOptions {
  /** Guest-physical memory. */
  memory: GuestMemory;
  /** Delivers a used-buffer notification for a queue. */
  notify: (queueIndex: number) => void;
  log: DeviceLog;
  /** Called when the device sets NEEDS_RESET (a transport may tell its driver). */
  onNeedsReset?: (reason: string) => void;
  /** Host fds and timers for the device; default a ManualReactor (nothing happens unless driven). */
  reactor?: HostReactor;
}

interface QueueConfig {
  size: number;
  addrs: RingAddresses;
}

/** A log that drops everything (tests that do not look at logs). */
export const silentLog: DeviceLog = { debug() {}, info() {}, warn() {}, error() {} };

export class DeviceRunner {
  readonly device: VirtioDevice;
  #memory: GuestMemory;
  readonly #opts: RunnerOptions;
  #status = 0;
  #driverFeatures = 0n;
  #features = 0n;
  #active = false;
  readonly #queues: Array<Virtqueue | undefined>;
  readonly #configs: Array<QueueConfig | undefined>;
  readonly #reactor: HostReactor;

  constructor(device: VirtioDevice, opts: RunnerOptions) {
    this.device = device;
    this.#reactor = opts.reactor ?? new ManualReactor();
    this.#memory = opts.memory;
    this.#opts = opts;
    this.#queues = device.queueMaxSizes.map(() => undefined);
    this.#configs = device.queueMaxSizes.map(() => undefined);
  }

  get status(): number {
    return this.#status;
  }

  /** Features accepted at FEATURES_OK (or by `acceptFeatures`). */
  get features(): bigint {
    return this.#features;
  }

  get active(): boolean {
    return this.#active;
  }

  get memory(): GuestMemory {
    return this.#memory;
  }

  /** Replaces guest memory (vhost-user memory-table changes); started queues must be restarted. */
  setMemory(memory: GuestMemory): void {
    this.#memory = memory;
  }

  /**
   * Handles a driver write of the status field (§2.1, §3.1.1).
   * @throws DeviceError DEVICE_BAD_STATUS_TRANSITION for out-of-order or bit-clearing writes.
   */
  writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const added = value & ~this.#status;
    if ((this.#status & ~value & ~VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) {
      throw new DeviceError('DEVICE_BAD_STATUS_TRANSITION', `status write 0x${value.toString(16)} clears bits of 0x${this.#status.toString(16)} without a reset (§2.1.1: the driver MUST NOT clear a device status bit)`);
    }
    if (added & VIRTIO_CONFIG_S_FAILED) {
      this.#status |= VIRTIO_CONFIG_S_FAILED;
      this.#opts.log.warn(`${this.device.name}: driver set FAILED`);
      return;
    }
    const need = (bit: number, before: number, name: string, prev: string) => {
      if (added & bit && !(value & before)) {
        throw new DeviceError('DEVICE_BAD_STATUS_TRANSITION', `status ${name} set before ${prev} (§3.1.1 order)`);
      }
    };
    need(VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_ACKNOWLEDGE, 'DRIVER', 'ACKNOWLEDGE');
    need(VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER, 'FEATURES_OK', 'DRIVER');
    need(VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, 'DRIVER_OK', 'FEATURES_OK');
    if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
      try {
        this.acceptFeatures(this.#driverFeatures);
      } catch (e: unknown) {
        // §3.1.1 step 6: the driver re-reads status; FEATURES_OK unset means "not supported".
        if (!(e instanceof DeviceError)) throw e;
        this.#opts.log.warn(`${this.device.name}: FEATURES_OK refused: ${e.message}`);
        this.#status = value & ~VIRTIO_CONFIG_S_FEATURES_OK & ~VIRTIO_CONFIG_S_DRIVER_OK;
        return;
      }
    }
    this.#status = value | (this.#status & VIRTIO_CONFIG_S_NEEDS_RESET);
    if (added & VIRTIO_CONFIG_S_DRIVER_OK) {
      this.#configs.forEach((cfg, i) => {
        if (cfg !== undefined) this.#queues[i] = this.#buildQueue(i, cfg);
      });
      this.#activate();
    }
  }

  /**
   * Records the driver's features (§3.1.1 step 5). Legal in the DRIVER state before FEATURES_OK.
   * @throws DeviceError DEVICE_FEATURES_LOCKED
   */
  setDriverFeatures(features: bigint): void {
    if (!(this.#status & VIRTIO_CONFIG_S_DRIVER) || this.#status & VIRTIO_CONFIG_S_FEATURES_OK) {
      throw new DeviceError('DEVICE_FEATURES_LOCKED', 'driver features can only be written in the DRIVER state, before FEATURES_OK');
    }
    this.#driverFeatures = features;
  }

  /**
   * Negotiates and records the driver's features without the status protocol (vhost-user).
   * @throws DeviceError DEVICE_FEATURES_NOT_OFFERED or DEVICE_VERSION_1_REQUIRED
   */
  acceptFeatures(features: bigint): void {
    this.#features = negotiateFeatures(this.offeredFeatures, features, {}, this.device.requiredFeatures ?? 0n);
  }

  /**
   * Records a queue's size and ring addresses (status-driven transports); it starts at DRIVER_OK.
   * @throws DeviceError DEVICE_NO_SUCH_QUEUE or DEVICE_BAD_QUEUE_SIZE
   */
  configureQueue(index: number, size: number, addrs: RingAddresses): void {
    this.#checkQueue(index, size);
    this.#configs[index] = { size, addrs };
  }

  /** Builds a device-side queue over this runner's memory, with the negotiated ring features. */
  #buildQueue(index: number, cfg: QueueConfig): Virtqueue {
    return this.createQueue(index, cfg.size, this.resolveRings(this.#memory, cfg.size, cfg.addrs));
  }

  /**
   * What the device offers plus the ring layouts the queue layer gives every device:
   * VIRTIO_F_RING_PACKED (bit 34). Devices program against `Virtqueue`, so none depends on the
   * layout; the bit is added here rather than in each device so that no model can forget it.
   */
  get offeredFeatures(): bigint {
    return this.device.offeredFeatures | featureBit(VIRTIO_F_RING_PACKED);
  }

  /** True when VIRTIO_F_RING_PACKED was negotiated: rings are packed (VIRTIO 1.3 §2.8). */
  get packed(): boolean {
    return hasFeature(this.#features, VIRTIO_F_RING_PACKED);
  }

  /**
   * Resolves ring addresses in `memory` for the negotiated layout: split (desc, avail, used) or
   * packed (descriptor ring, driver area, device area).
   * @throws QueueError for misaligned or unmapped ring parts.
   */
  resolveRings(memory: GuestMemory, size: number, addrs: RingAddresses): RingViews {
    return this.packed ? resolvePackedRings(memory, size, addrs) : resolveRings(memory, size, addrs);
  }

  /**
   * A device-side queue for `index` with the negotiated ring features; errors on it are logged and
   * fatal ones set NEEDS_RESET. Transports that resolve ring addresses themselves (vhost-user) call
   * this with their views, and with an inflight tracker when the front-end keeps a record for them.
   * @throws DeviceError for a bad index or size; QueueError for unusable rings.
   */
  createQueue(index: number, size: number, rings: RingViews, base?: number, inflight?: InflightTracker): Virtqueue {
    this.#checkQueue(index, size);
    const common = {
      size,
      rings,
      memory: this.#memory,
      indirect: hasFeature(this.#features, VIRTIO_F_INDIRECT_DESC),
      eventIdx: hasFeature(this.#features, VIRTIO_F_EVENT_IDX),
      onError: (e: QueueError, head: number | undefined) => this.#queueError(index, e, head),
    };
    // `base` is the vhost-user ring base (split: next avail index; packed: both positions with
    // their wrap counters); without one, a packed ring starts fresh (wrap counters 1, §2.8.1).
    // Inflight tracking covers split rings only (docs/reliability.md).
    if (this.packed) return new PackedDeviceQueue(base === undefined ? common : { ...common, base });
    return new DeviceQueue({ ...common, nextAvail: base ?? 0, ...(inflight === undefined ? {} : { inflight }) });
  }

  #queueError(index: number, e: QueueError, head: number | undefined): void {
    const where = head === undefined ? '' : ` (chain ${head})`;
    this.#opts.log.warn(`${this.device.name}: queue ${index}${where}: ${e.message}`);
    if (e.fatal) this.#setNeedsReset(`queue ${index}: ${e.message}`);
  }

  #checkQueue(index: number, size: number): void {
    const max = this.device.queueMaxSizes[index];
    if (max === undefined) throw new DeviceError('DEVICE_NO_SUCH_QUEUE', `${this.device.name} has ${this.device.queueMaxSizes.length} queue(s); queue ${index} does not exist`);
    if (!isValidQueueSize(size) || size > max) throw new DeviceError('DEVICE_BAD_QUEUE_SIZE', `queue ${index} size ${size} is not a power of 2 in 1..${max}`);
  }

  /** Starts serving a queue (vhost-user: kick fd set and ring enabled); activates the device first. */
  startQueue(index: number, queue: Virtqueue): void {
    this.#queues[index] = queue;
    if (!this.#active) this.#activate();
  }

  /** Stops a queue and returns its ring base (vhost-user GET_VRING_BASE, see `Virtqueue.vringBase`). */
  stopQueue(index: number): number | undefined {
    const q = this.#queues[index];
    this.#queues[index] = undefined;
    return q?.vringBase;
  }

  queue(index: number): Virtqueue | undefined {
    return this.#queues[index];
  }

  /** The driver notified queue `index`. Ignored unless the device is live and not NEEDS_RESET. */
  kick(index: number): void {
    if (!this.#active || this.#status & VIRTIO_CONFIG_S_NEEDS_RESET || this.#queues[index] === undefined) return;
    this.device.queueNotify(index);
  }

  /** Reads config space. @throws DeviceError DEVICE_CONFIG_OUT_OF_RANGE outside the layout. */
  readConfig(offset: number, length: number): Uint8Array {
    this.#checkConfig(offset, length);
    return this.device.readConfig(offset, length);
  }

  writeConfig(offset: number, data: Uint8Array): void {
    this.#checkConfig(offset, data.byteLength);
    this.device.writeConfig(offset, data);
  }

  #checkConfig(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > this.device.configSize - offset) {
      throw new DeviceError('DEVICE_CONFIG_OUT_OF_RANGE', `config access [${offset}, +${length}) is outside the ${this.device.configSize}-byte config space of ${this.device.name}`);
    }
  }

  /** Device reset (§2.1.2 / §3.1.1 step 1): everything back to the initial state. */
  reset(): void {
    if (this.#active) this.device.reset();
    this.#active = false;
    this.#status = 0;
    this.#driverFeatures = 0n;
    this.#features = 0n;
    this.#queues.fill(undefined);
    this.#configs.fill(undefined);
  }

  #setNeedsReset(reason: string): void {
    if (this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    this.#status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    this.#opts.log.error(`${this.device.name}: DEVICE_NEEDS_RESET: ${reason}`);
    this.#opts.onNeedsReset?.(reason);
  }

  #activate(): void {
    this.#active = true;
    const currentMemory = (): GuestMemory => this.#memory;
    const ctx: DeviceContext = {
      features: this.#features,
      // A getter: vhost-user may replace guest memory while the device is live.
      get memory() {
        return currentMemory();
      },
      queue: (i) => this.#queues[i],
      notify: (i) => this.#opts.notify(i),
      needsReset: (reason) => this.#setNeedsReset(reason),
      log: this.#opts.log,
      reactor: this.#reactor,
    };
    this.device.activate(ctx);
  }
}
