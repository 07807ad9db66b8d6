// SPDX-License-Identifier: Apache-2.0
/**
 * The hook a device-side queue calls so that a transport can record which chains are in flight
 * (vhost-user VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, "Inflight I/O tracking" in QEMU's
 * docs/interop/vhost-user.rst). A back-end that is killed and restarted reads that record back and
 * resubmits the chains it had taken from the avail ring but not returned in the used ring.
 *
 * Owns: the contract only (when each call happens relative to the ring updates). The record itself
 * and its layout belong to the transport (`vhost-user/inflight.ts`); the queue never reads it.
 *
 * Call order, which is what makes the record crash-safe:
 * - `popped(head)` right after an avail entry is consumed, before its chain is walked;
 * - for each element about to be returned: `publishing(head)`, after the used element is written
 *   and before `used.idx` is stored; then, after the `used.idx` store, one `published(usedIdx)`
 *   for the whole batch.
 * A process killed between two of these calls leaves a record the transport can repair.
 */

/** Where a queue resumes after a restart, from the transport's record. */
export interface InflightResume {
  /** The next avail index to consume: every entry before it is either used or resubmitted. */
  readonly nextAvail: number;
  /** Heads to serve again before any new avail entry, in the order they were first taken. */
  readonly resubmit: readonly number[];
}

export interface InflightTracker {
  /**
   * Called once when the queue is built, with its size and the used index in guest memory.
   * Returns where to resume when the record says chains were in flight (or when it knows the
   * position), or undefined on a fresh record (the queue starts from its `nextAvail` option).
   */
  resume(queueSize: number, usedIdx: number): InflightResume | undefined;
  /** An avail entry naming `head` was consumed. */
  popped(head: number): void;
  /** `head` is about to be published in the used ring (element written, `used.idx` not yet). */
  publishing(head: number): void;
  /** `used.idx` now is `usedIdx`: the heads announced by `publishing` since the last call are done. */
  published(usedIdx: number): void;
}
