// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-fs counters and the JSON shape of `metrics()`:
 * `{ device: 'fs', requests, errors, malformed, unknownNodes, noReplyRoom, bytesRead, bytesWritten,
 *    nodes, handles, ops: { <opcode>: count }, rejectedChains, notifications }`.
 * `malformed` counts requests whose framing or body was wrong (EINVAL replies, chains without a
 * header), `unknownNodes` requests naming a nodeid the session does not have, `noReplyRoom` errors
 * that could not be answered because the chain had under 16 writable bytes.
 */
export class FsCounters {
  requests = 0;
  errors = 0;
  malformed = 0;
  unknownNodes = 0;
  noReplyRoom = 0;
  bytesRead = 0;
  bytesWritten = 0;
  readonly ops = new Map<number, number>();

  countOp(opcode: number): void {
    // Bounded: only opcodes below 64 get their own counter (fuse.h has none above 52).
    const key = opcode < 64 ? opcode : 64;
    this.ops.set(key, (this.ops.get(key) ?? 0) + 1);
  }
}

export interface FsMetrics {
  readonly device: 'fs';
  readonly requests: number;
  readonly errors: number;
  readonly malformed: number;
  readonly unknownNodes: number;
  readonly noReplyRoom: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly nodes: number;
  readonly handles: number;
  readonly ops: Readonly<Record<string, number>>;
  readonly rejectedChains: number;
  readonly notifications: number;
  [key: string]: unknown;
}
