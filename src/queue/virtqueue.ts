// SPDX-License-Identifier: Apache-2.0
/**
 * What a device and a driver see of a virtqueue, whatever its layout (split, VIRTIO 1.3 §2.7, or
 * packed, §2.8). Devices, the device runner, vhost-user and the conformance front-end program
 * against these interfaces; `split-*.ts` and `packed-*.ts` implement them.
 *
 * Owns: the shared contract and its doc. Does not own: any ring layout.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { DescriptorChain } from './chain.js';
import type { QueueError } from './errors.js';
import type { DriverBuffer, UsedBuffer } from './split-driver.js';

/** Counters a device exports in its metrics. */
export interface QueueStats {
  chainsPopped: number;
  chainsRejected: number;
  notificationsSent: number;
  notificationsSuppressed: number;
}

/** The device side of a virtqueue. */
export interface Virtqueue {
  readonly layout: 'split' | 'packed';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly indirect: boolean;
  readonly eventIdx: boolean;
  readonly stats: QueueStats;
  /**
   * Where to resume: what vhost-user GET_VRING_BASE returns and SET_VRING_BASE gives back. Split:
   * the next avail index (16 bits). Packed: next avail index in bits 0..14 and its wrap counter in
   * bit 15, next used index in bits 16..30 and its wrap counter in bit 31 (QEMU's encoding).
   */
  readonly vringBase: number;
  /** The fatal error that stopped this queue, if any. */
  readonly broken: QueueError | undefined;
  /** Greater than 0 when at least one chain is available (split: exactly how many). */
  pending(): number;
  /** The next valid chain, or null (malformed chains are returned to the driver on the way). */
  pop(): DescriptorChain | null;
  /** Returns a popped chain (`head` = `chain.head`) with `len` bytes written. */
  pushUsed(head: number, len: number): void;
  /** Returns several popped chains so that the driver sees all of them or none. */
  pushUsedBatch(entries: ReadonlyArray<{ readonly head: number; readonly len: number }>): void;
  /** Whether the driver wants a used-buffer notification for what was returned since the last call. */
  needsNotification(): boolean;
  disableNotifications(): void;
  /** Re-enables available-buffer notifications; true when chains are already pending. */
  enableNotifications(): boolean;
}

/** Called once per rejected chain or fatal ring error, for the device's log and metrics. */
export type QueueErrorHandler = (error: QueueError, head: number | undefined) => void;

/** The driver side of a virtqueue (the conformance front-end, the harness, benchmarks). */
export interface DriverVirtqueue<T> {
  readonly layout: 'split' | 'packed';
  readonly size: number;
  readonly memory: GuestMemory;
  readonly eventIdx: boolean;
  /** Free descriptors. */
  readonly numFree: number;
  /** Chains made available and not yet used. */
  readonly inFlight: number;
  /** Adds a chain of readable then writable buffers; returns its id (split: head index; packed: buffer id). */
  add(buffers: readonly DriverBuffer[], token: T, opts?: { indirectTable?: number }): number;
  /** Whether the device wants a notification for what was added since the last call. */
  needsKick(): boolean;
  /** Greater than 0 when a used element is waiting (split: exactly how many). */
  usedPending(): number;
  /** @throws QueueError VIRTQ_DRIVER_BAD_USED when the device returns something not in flight. */
  popUsed(): UsedBuffer<T> | null;
  setAutoUsedEvent(on: boolean): void;
  suppressInterrupts(on: boolean): void;
}
