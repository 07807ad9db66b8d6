// SPDX-License-Identifier: Apache-2.0
/**
 * The conformance driver in-process: `HarnessDriver` implements `ConformanceDriver`
 * (device/conformance.ts) over the in-process `DeviceHarness`, so a device's own conformance
 * checks (`devices/<name>/conformance.ts`) run against the device model itself, with flat guest
 * memory and no transport. The suite runs the same checks over vhost-user; a check cannot tell.
 *
 * Owns: negotiation as the vhost-user driver does it (DEFAULT_DRIVER_FEATURES unless the check
 * says, queue size 16), buffers with guard bytes on both sides and the stray-write scan over them
 * (guards, and the contents of device-readable buffers), requests and their completion, including
 * completions a device defers to a timer of its reactor (the harness clock is advanced until the
 * chain is used or no timer is left).
 * Does not own: the checks, verdicts, generic ring and protocol checks (they need the transport:
 * conformance/checks/), or anything device-specific.
 *
 * Differences from the vhost-user driver, all on the side of less coverage: every queue of the
 * device is set up (the vhost-user driver sets up the probe queue unless told), the stray-write
 * scan covers guards and readable buffers but not every other byte of guest memory, and config
 * writes reach the device directly (there is no acknowledgement to judge: a write inside the
 * config space is 'accepted', one outside it 'refused').
 */
import type { DriverBuffer } from '../queue/split-driver.js';
import { VIRTQ_DESC_SIZE } from '../spec/split-ring.js';
import { DEFAULT_DRIVER_FEATURES, type ConfigWriteResult, type ConformanceDriver, type DriverStartOptions, type RequestOptions, type UsedElement } from './conformance.js';
import type { VirtioDevice } from './contract.js';
import { DeviceError } from './errors.js';
import { DeviceHarness } from './harness.js';
import type { ManualReactor } from './manual-reactor.js';

/** Bytes of guard on each side of every buffer. */
const GUARD_BYTES = 16;
/** What guards hold; any other value there is a stray write. */
const GUARD_FILL = 0xa5;
/** Queue size when the check does not ask (the vhost-user driver's default). */
const DEFAULT_QUEUE_SIZE = 16;
/** How often the clock is advanced (1 ms each) waiting for a deferred completion. */
const MAX_SETTLE_ROUNDS = 1000;

export interface HarnessDriverOptions {
  /** Queue a request goes to when it names none: the device's probe queue (default 0). */
  readonly defaultQueue?: number;
  /** Guest memory size (default 8 MiB). */
  readonly memorySize?: number;
  /** Host events the device sees (default: a new ManualReactor per start). */
  readonly reactor?: ManualReactor;
}

/** A buffer handed to the device, as the stray-write scan sees it. */
interface Placed {
  readonly addr: number;
  readonly len: number;
  /** For device-readable buffers: what they must still hold. */
  readonly copy?: Uint8Array;
}

/** A `ConformanceDriver` over the in-process harness (see the file comment). */
export class HarnessDriver implements ConformanceDriver {
  readonly deviceName: string;
  readonly offeredFeatures: bigint;
  readonly hasConfigAccess = true;
  readonly #opts: HarnessDriverOptions;
  readonly #placed: Placed[] = [];
  readonly #used = new Map<number, UsedElement>();
  #h: DeviceHarness | undefined;
  #token = 0;

  constructor(
    readonly device: VirtioDevice,
    opts: HarnessDriverOptions = {},
  ) {
    this.deviceName = device.name;
    this.offeredFeatures = device.offeredFeatures;
    this.#opts = opts;
  }

  get features(): bigint {
    return this.#h?.runner.features ?? 0n;
  }

  /** The harness, after `start`. */
  get h(): DeviceHarness {
    if (this.#h === undefined) throw new Error(`${this.deviceName}: start() first`);
    return this.#h;
  }

  start(opts: DriverStartOptions = {}): void {
    if (this.#h !== undefined) throw new Error(`${this.deviceName}: start() was already called on this driver`);
    this.#h = new DeviceHarness(this.device, {
      memorySize: this.#opts.memorySize ?? 8 << 20,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
      features: this.offeredFeatures & (opts.features ?? DEFAULT_DRIVER_FEATURES),
      ...(this.#opts.reactor === undefined ? {} : { reactor: this.#opts.reactor }),
    });
  }

  readConfig(offset: number, length: number): Uint8Array | null {
    try {
      return this.h.runner.readConfig(offset, length);
    } catch (e: unknown) {
      if (e instanceof DeviceError && e.code === 'DEVICE_CONFIG_OUT_OF_RANGE') return null;
      throw e;
    }
  }

  writeConfig(offset: number, data: Uint8Array): ConfigWriteResult {
    try {
      this.h.runner.writeConfig(offset, data);
      return 'accepted';
    } catch (e: unknown) {
      if (e instanceof DeviceError && e.code === 'DEVICE_CONFIG_OUT_OF_RANGE') return 'refused';
      throw e;
    }
  }

  out(bytes: Uint8Array): DriverBuffer {
    const addr = this.#place(bytes.length);
    this.h.memory.write(addr, bytes);
    this.#placed.push({ addr, len: bytes.length, copy: bytes.slice() });
    return { addr, len: bytes.length };
  }

  in(len: number, fill = 0xee): DriverBuffer {
    const addr = this.#place(len);
    this.h.memory.fill(addr, len, fill);
    this.#placed.push({ addr, len });
    return { addr, len, writable: true };
  }

  /** Guest address of `len` fresh bytes with guards on both sides. */
  #place(len: number): number {
    const base = this.h.alloc.alloc(len + 2 * GUARD_BYTES, 16);
    this.h.memory.fill(base, GUARD_BYTES, GUARD_FILL);
    this.h.memory.fill(base + GUARD_BYTES + len, GUARD_BYTES, GUARD_FILL);
    return base + GUARD_BYTES;
  }

  bytes(buf: DriverBuffer): Uint8Array {
    return this.h.memory.read(buf.addr, buf.len);
  }

  /**
   * Makes the chain available, notifies, and returns its used element once the device used it.
   * @throws Error when the device does not use the chain, even after every timer it set has run.
   */
  request(buffers: readonly DriverBuffer[], opts: RequestOptions = {}): UsedElement {
    return this.wait(this.post(buffers, opts), opts);
  }

  post(buffers: readonly DriverBuffer[], opts: RequestOptions = {}): number {
    const index = this.#queueOf(opts);
    const q = this.h.queue(index);
    const token = this.#token++;
    const indirectTable = opts.indirect === true ? this.h.alloc.alloc(VIRTQ_DESC_SIZE * buffers.length, 16) : undefined;
    q.add(buffers, token, indirectTable === undefined ? {} : { indirectTable });
    this.h.runner.kick(index);
    return token;
  }

  usedOf(token: number, opts: { readonly queue?: number } = {}): UsedElement | undefined {
    const q = this.h.queue(this.#queueOf(opts));
    for (let u = q.popUsed(); u !== null; u = q.popUsed()) this.#used.set(u.token, { len: u.len });
    return this.#used.get(token);
  }

  wait(token: number, opts: { readonly queue?: number } = {}): UsedElement {
    for (let round = 0; ; round++) {
      const used = this.usedOf(token, opts);
      if (used !== undefined) {
        this.#used.delete(token);
        return used;
      }
      if (round >= MAX_SETTLE_ROUNDS || this.h.reactor.pendingTimers() === 0) throw new Error(`${this.deviceName}: request on queue ${this.#queueOf(opts)} not completed`);
      this.h.reactor.advance(1);
    }
  }

  createSession(message: Uint8Array): Uint8Array | null {
    return this.device.sessions?.createSession(message) ?? null;
  }

  closeSession(id: bigint): boolean {
    return this.device.sessions?.closeSession(id) ?? false;
  }

  #queueOf(opts: { readonly queue?: number }): number {
    return opts.queue ?? this.#opts.defaultQueue ?? 0;
  }

  strayWrites(): string | null {
    if (this.#h === undefined) return null;
    const bad: string[] = [];
    const mem = this.#h.memory;
    const differs = (addr: number, want: Uint8Array): boolean => !mem.read(addr, want.length).every((b, i) => b === want[i]);
    const guard = new Uint8Array(GUARD_BYTES).fill(GUARD_FILL);
    for (const p of this.#placed) {
      if (differs(p.addr - GUARD_BYTES, guard)) bad.push(`guard before the buffer at 0x${p.addr.toString(16)}`);
      if (differs(p.addr + p.len, guard)) bad.push(`guard after the buffer at 0x${p.addr.toString(16)}`);
      if (p.copy !== undefined && differs(p.addr, p.copy)) bad.push(`device-readable buffer at 0x${p.addr.toString(16)}`);
    }
    return bad.length === 0 ? null : `${bad.length} guarded range(s) changed: ${bad.slice(0, 3).join(', ')}`;
  }
}
