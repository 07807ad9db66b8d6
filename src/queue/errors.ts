// SPDX-License-Identifier: Apache-2.0
/**
 * Virtqueue errors. Two severities, written on each code:
 *
 * - chain errors (`fatal: false`): one descriptor chain is malformed. The device side returns that
 *   chain to the driver with used length 0, counts it, and goes on with the next chain. The head
 *   index is valid, so the driver can reclaim its descriptors.
 * - queue errors (`fatal: true`): the ring itself is corrupt (the head index or avail.idx cannot
 *   be trusted), so no used entry can be written meaningfully. The queue stops and the device is
 *   marked DEVICE_NEEDS_RESET (VIRTIO 1.3 §2.1.2: "the device has experienced an error from which
 *   it can't recover"), as Firecracker does for an invalid avail index.
 * - setup errors: the ring addresses or size given by the driver/front-end are unusable.
 */
import { AvpError } from '../errors.js';

export type QueueErrorCode =
  // chain errors
  | 'VIRTQ_NEXT_OUT_OF_RANGE'
  | 'VIRTQ_CHAIN_LOOP'
  | 'VIRTQ_NESTED_INDIRECT'
  | 'VIRTQ_INDIRECT_BAD_LENGTH'
  | 'VIRTQ_INDIRECT_NOT_NEGOTIATED'
  | 'VIRTQ_INDIRECT_WITH_NEXT'
  | 'VIRTQ_READABLE_AFTER_WRITABLE'
  | 'VIRTQ_CHAIN_TOO_LARGE'
  | 'VIRTQ_BUFFER_OUT_OF_RANGE'
  | 'VIRTQ_ID_OUT_OF_RANGE'
  | 'VIRTQ_ID_IN_USE'
  // queue errors
  | 'VIRTQ_HEAD_OUT_OF_RANGE'
  | 'VIRTQ_AVAIL_IDX_JUMP'
  | 'VIRTQ_PACKED_CHAIN_UNTERMINATED'
  | 'VIRTQ_PACKED_PARTIAL_CHAIN'
  // setup errors
  | 'VIRTQ_BAD_SIZE'
  | 'VIRTQ_RING_MISALIGNED'
  | 'VIRTQ_RING_OUT_OF_RANGE'
  // driver-side usage errors (our own or a test's mistake, never the device's)
  | 'VIRTQ_DRIVER_FULL'
  | 'VIRTQ_DRIVER_BAD_USED'
  // device-model usage error (our own bug): returning a chain the queue did not hand out
  | 'VIRTQ_DEVICE_BAD_USED';

const FATAL: ReadonlySet<QueueErrorCode> = new Set<QueueErrorCode>(['VIRTQ_HEAD_OUT_OF_RANGE', 'VIRTQ_AVAIL_IDX_JUMP', 'VIRTQ_PACKED_CHAIN_UNTERMINATED', 'VIRTQ_PACKED_PARTIAL_CHAIN']);

/** A malformed descriptor chain, a corrupt ring, or an unusable ring setup. */
export class QueueError extends AvpError {
  readonly code: QueueErrorCode;
  /** True when the queue cannot continue and the device needs a reset. */
  readonly fatal: boolean;

  constructor(code: QueueErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.fatal = FATAL.has(code);
  }
}
