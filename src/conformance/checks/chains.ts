// SPDX-License-Identifier: Apache-2.0
/**
 * Hand-built descriptor chains for queue and hostile checks (VIRTIO 1.3 §2.7.5 "The Virtqueue
 * Descriptor Table", §2.7.5.3 "Indirect Descriptors").
 *
 * Owns: turning buffers into raw descriptors, writing them into the ring's table or into an
 * indirect table with any flags, links, lengths and 64-bit addresses (valid or not), and publishing
 * the chain so its used element can be told apart from every other.
 * Does not own: what a chain means to a device (its probe), or verdicts.
 */
import type { DriverBuffer } from '../../queue/split-driver.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE } from '../../spec/split-ring.js';
import type { VhostUserDriver } from '../driver.js';

/** One descriptor as a check writes it. */
export interface RawDesc {
  addr: bigint;
  len: number;
  flags: number;
  /**
   * Where NEXT points. For ring chains: a position in the same list (mapped to the descriptor
   * index it lands at), unless `nextIndex` gives a raw index. For indirect tables: the table entry.
   */
  next?: number;
  /** A raw `next` value written as is (out-of-range tests). */
  nextIndex?: number;
}

/** Descriptors for `buffers`, readable then writable as given, linked in order. */
export function descsOf(buffers: readonly DriverBuffer[]): RawDesc[] {
  return buffers.map((b, i) => ({
    addr: BigInt(b.addr),
    len: b.len,
    flags: (b.writable === true ? VIRTQ_DESC_F_WRITE : 0) | (i < buffers.length - 1 ? VIRTQ_DESC_F_NEXT : 0),
    next: i + 1,
  }));
}

/** Sum of the lengths of device-writable descriptors. */
export function writableLength(descs: readonly RawDesc[]): number {
  return descs.reduce((n, d) => n + (d.flags & VIRTQ_DESC_F_WRITE ? d.len : 0), 0);
}

/** Writes `descs` into a new indirect table (entry i links to `next`, default i + 1); returns its address. */
export function writeTable(d: VhostUserDriver, descs: readonly RawDesc[]): number {
  const table = d.allocDriver(Math.max(1, descs.length) * VIRTQ_DESC_SIZE, 16);
  descs.forEach((x, i) => d.writeDescRaw(table, i, x.addr, x.len, x.flags, x.nextIndex ?? (x.flags & VIRTQ_DESC_F_NEXT ? (x.next ?? i + 1) : 0)));
  return table;
}

/**
 * Writes `descs` into free descriptors of queue `index`'s table and publishes the first as a
 * chain head, without notifying. Returns the token its used element will carry and the indexes.
 */
export function addChain(d: VhostUserDriver, descs: readonly RawDesc[], index = d.device.probeQueue): { token: number; indexes: number[] } {
  const q = d.queue(index);
  const indexes = q.dq.peekFree(descs.length);
  descs.forEach((x, i) => {
    // Safe: indexes has one entry per descriptor.
    const at = indexes[i]!;
    let next = 0;
    if (x.nextIndex !== undefined) next = x.nextIndex;
    else if (x.flags & VIRTQ_DESC_F_NEXT) next = indexes[x.next ?? i + 1] ?? 0;
    d.writeDescRaw(q.addrs.desc, at, x.addr, x.len, x.flags, next);
  });
  const token = d.nextToken();
  q.dq.addRaw(
    indexes.map((i) => ({ index: i, desc: { addr: 0, len: 0, flags: 0, next: 0 } })),
    token,
    { written: true },
  );
  return { token, indexes };
}

/**
 * Splits the last buffer of `buffers` in two when it is the only one, so that a chain has at least
 * two elements to arrange (direct prefix + indirect rest).
 */
export function atLeastTwo(buffers: readonly DriverBuffer[]): DriverBuffer[] {
  const last = buffers[buffers.length - 1];
  if (buffers.length >= 2 || last === undefined || last.len < 2) return [...buffers];
  const half = Math.floor(last.len / 2);
  const w = last.writable === true ? { writable: true } : {};
  return [
    { addr: last.addr, len: half, ...w },
    { addr: last.addr + half, len: last.len - half, ...w },
  ];
}
