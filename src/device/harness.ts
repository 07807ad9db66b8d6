// SPDX-License-Identifier: Apache-2.0
/**
 * In-process harness: a device model wired to driver-side queues over flat guest memory, with the
 * full VIRTIO initialisation sequence (§3.1.1). Unit tests of every device and the queue
 * benchmark drive devices through it; it is what a guest driver does, minus the transport.
 * Does not own: device semantics, or any transport (the harness calls the runner directly).
 */
import { FlatGuestMemory } from '../memory/guest-memory.js';
import { GuestAllocator } from '../memory/allocator.js';
import { DriverQueue, type DriverBuffer } from '../queue/split-driver.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_EVENT_IDX,
  hasFeature,
} from '../spec/virtio.js';
import type { DeviceLog, VirtioDevice } from './contract.js';
import { DeviceRunner } from './runner.js';
import { ManualReactor } from './manual-reactor.js';

export interface HarnessOptions {
  /** Features the driver accepts; default: everything the device offers. */
  features?: bigint;
  /** Size of every queue; default: min(device maximum, 256). */
  queueSize?: number;
  /** Guest memory size; default 4 MiB. */
  memorySize?: number;
  /** Log sink; default collects into `logs`. */
  log?: DeviceLog;
  /**
   * Host events the device sees; default a new one. Devices that share state share one (the ports
   * of a switch run in one event loop, with one clock).
   */
  reactor?: ManualReactor;
}


export class DeviceHarness<D extends VirtioDevice = VirtioDevice> {
  readonly device: D;
  readonly memory: FlatGuestMemory;
  readonly alloc: GuestAllocator;
  readonly runner: DeviceRunner;
  readonly queues: Array<DriverQueue<number>>;
  /** Used-buffer notifications received, per queue. */
  readonly notifications: number[];
  /** Log lines, when no log was passed in. */
  readonly logs: string[] = [];
  /** Host events the device sees: advance its clock and fire its watched fds by hand. */
  readonly reactor: ManualReactor;
  #token = 0;

  /** Runs §3.1.1 steps 1-8: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK. */
  constructor(device: D, opts: HarnessOptions = {}) {
    this.device = device;
    this.reactor = opts.reactor ?? new ManualReactor();
    this.memory = new FlatGuestMemory(opts.memorySize ?? 4 << 20);
    this.alloc = new GuestAllocator(0, this.memory.totalSize);
    this.notifications = device.queueMaxSizes.map(() => 0);
    const collect = (level: string) => (msg: string) => this.logs.push(`${level}: ${msg}`);
    const log = opts.log ?? { debug: collect('debug'), info: collect('info'), warn: collect('warn'), error: collect('error') };
    this.runner = new DeviceRunner(device, {
      memory: this.memory,
      log,
      notify: (i) => {
        this.notifications[i] = (this.notifications[i] ?? 0) + 1;
      },
      reactor: this.reactor,
    });
    const features = opts.features ?? device.offeredFeatures;
    this.runner.writeStatus(0);
    this.runner.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.runner.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.runner.setDriverFeatures(features);
    this.runner.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(this.runner.status & VIRTIO_CONFIG_S_FEATURES_OK)) throw new Error(`${device.name}: device refused features 0x${features.toString(16)}: ${this.logs.join('; ')}`);
    const eventIdx = hasFeature(features, VIRTIO_F_EVENT_IDX);
    this.queues = device.queueMaxSizes.map((max, i) => {
      const size = Math.min(max, opts.queueSize ?? 256);
      const addrs = {
        desc: this.alloc.alloc(descTableSize(size), 4096),
        avail: this.alloc.alloc(availRingSize(size), 2),
        used: this.alloc.alloc(usedRingSize(size), 4096),
      };
      const q = new DriverQueue<number>({ memory: this.memory, size, addrs, eventIdx });
      this.runner.configureQueue(i, size, addrs);
      return q;
    });
    this.runner.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  }

  /** The driver-side queue `index`. */
  queue(index: number): DriverQueue<number> {
    const q = this.queues[index];
    if (q === undefined) throw new RangeError(`${this.device.name} has no queue ${index}`);
    return q;
  }

  /** Adds a chain to queue `index`, kicking the device when the ring asks for it; returns the head. */
  submit(index: number, buffers: readonly DriverBuffer[], opts: { indirectTable?: number } = {}): number {
    const q = this.queue(index);
    const head = q.add(buffers, this.#token++, opts);
    if (q.needsKick()) this.runner.kick(index);
    return head;
  }

  /** Sends one request and returns its used element (synchronous devices complete at the kick). */
  request(index: number, buffers: readonly DriverBuffer[], opts: { indirectTable?: number } = {}): { head: number; len: number } {
    const head = this.submit(index, buffers, opts);
    const used = this.queue(index).popUsed();
    if (used === null) throw new Error(`${this.device.name}: request on queue ${index} was not completed`);
    if (used.head !== head) throw new Error(`${this.device.name}: completed head ${used.head}, expected ${head}`);
    return { head: used.head, len: used.len };
  }
}
