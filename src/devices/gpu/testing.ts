// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures for virtio-gpu tests: a guest driver over the in-process harness that builds requests
 * field by field from the spec (independent of commands.ts) and reads responses, a host that keeps
 * the files it is asked to write, and a parser of the display-socket messages the device sends.
 *
 * Owns: test fixtures only (exported through `avp/testing`, not the main entry).
 */
import { DeviceHarness } from '../../device/harness.js';
import type { DriverBuffer } from '../../queue/split-driver.js';
import type { FakeUnixStreams } from '../vsock/testing.js';
import type { GpuHost } from './host.js';
import type { GpuDevice } from './model.js';

export { gpuRequest, memEntries } from './driver-wire.js';

/** A GpuHost that keeps written files in memory. */
export class MemoryGpuHost implements GpuHost {
  readonly files = new Map<string, Uint8Array>();
  readonly streams?: FakeUnixStreams;
  constructor(streams?: FakeUnixStreams) {
    if (streams !== undefined) this.streams = streams;
  }
  writeFile(path: string, bytes: Uint8Array): void {
    this.files.set(path, bytes.slice());
  }
  exists(path: string): boolean {
    return this.files.has(path);
  }
}

export interface GpuReply {
  type: number;
  flags: number;
  fenceId: bigint;
  /** The bytes after the 24-byte header, as long as the used length says. */
  body: Uint8Array;
  usedLen: number;
}

/** A guest driver for one gpu device. */
export class GpuDriver {
  readonly h: DeviceHarness<GpuDevice>;

  constructor(device: GpuDevice, opts: { features?: bigint; memorySize?: number } = {}) {
    this.h = new DeviceHarness(device, { queueSize: 64, memorySize: opts.memorySize ?? 8 << 20, ...(opts.features === undefined ? {} : { features: opts.features }) });
  }

  /** Places `bytes` in guest memory (device-readable). */
  out(bytes: Uint8Array): DriverBuffer {
    const addr = this.h.alloc.alloc(bytes.length, 16);
    this.h.memory.write(addr, bytes);
    return { addr, len: bytes.length };
  }

  /** Sends a control request and returns the response (`respLen` bytes of writable space). */
  cmd(request: Uint8Array, respLen = 1056, more: readonly DriverBuffer[] = []): GpuReply {
    const resp = this.h.alloc.alloc(respLen, 16);
    this.h.memory.fill(resp, respLen, 0xee);
    const used = this.h.request(0, [this.out(request), ...more, { addr: resp, len: respLen, writable: true }]);
    const bytes = this.h.memory.read(resp, respLen);
    const v = new DataView(bytes.buffer);
    return { type: v.getUint32(0, true), flags: v.getUint32(4, true), fenceId: v.getBigUint64(8, true), body: bytes.slice(24, Math.max(24, used.len)), usedLen: used.len };
  }

  /** Sends a cursor-queue command; returns its used length. */
  cursor(request: Uint8Array): number {
    return this.h.request(1, [this.out(request)]).len;
  }

  /**
   * A backing of `bytes` (a pattern from `fill`) scattered over `pages` entries of guest memory in
   * reverse order, so a copy that assumes contiguous pages gets the wrong pixels. Returns the
   * entries and the backing's contents.
   */
  scatteredBacking(bytes: number, pageSize: number, fill: (i: number) => number): { entries: Array<{ addr: number; length: number }>; contents: Uint8Array } {
    const contents = Uint8Array.from({ length: bytes }, (_, i) => fill(i) & 0xff);
    const entries: Array<{ addr: number; length: number }> = [];
    const pieces: Array<{ addr: number; length: number; from: number }> = [];
    for (let at = 0; at < bytes; at += pageSize) pieces.push({ addr: 0, length: Math.min(pageSize, bytes - at), from: at });
    // Allocate in reverse so guest addresses decrease as backing offsets increase.
    for (const p of [...pieces].reverse()) {
      p.addr = this.h.alloc.alloc(p.length + 64, 16) + 32;
      this.h.memory.write(p.addr, contents.subarray(p.from, p.from + p.length));
    }
    for (const p of pieces) entries.push({ addr: p.addr, length: p.length });
    return { entries, contents };
  }
}

/** One display-socket message as the device wrote it. */
export interface DisplayMessage {
  request: number;
  flags: number;
  payload: Uint8Array;
}

/** Splits the bytes the device wrote to the display socket into messages. */
export function parseDisplayMessages(bytes: Uint8Array): DisplayMessage[] {
  const out: DisplayMessage[] = [];
  let at = 0;
  while (at + 12 <= bytes.length) {
    const v = new DataView(bytes.buffer, bytes.byteOffset + at);
    const size = v.getUint32(8, true);
    out.push({ request: v.getUint32(0, true), flags: v.getUint32(4, true), payload: bytes.slice(at + 12, at + 12 + size) });
    at += 12 + size;
  }
  if (at !== bytes.length) throw new Error(`${bytes.length - at} trailing bytes after the last display message`);
  return out;
}

/** QEMU's reply to GET_PROTOCOL_FEATURES (request 1, flags REPLY, u64 `features`). */
export function protocolFeaturesReply(features: bigint): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, 0x4, true);
  v.setUint32(8, 8, true);
  v.setBigUint64(12, features, true);
  return b;
}
