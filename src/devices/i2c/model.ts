// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-i2c adapter (VIRTIO 1.3 §5.21): a virtual I2C bus with simulated devices at 7-bit
 * addresses (clients.ts), the way a real adapter with those chips soldered on behaves.
 *
 * Owns: the request protocol. Each chain is one segment: `out_hdr` (8 bytes), then the buffer
 * (device-readable for a write, device-writable for a read, absent for a zero-length request),
 * then the 1-byte status, the last device-writable byte. Requests run in ring order. The status
 * is VIRTIO_I2C_MSG_ERR, without touching any device, when:
 * - no device answers the address (a NACK, as on real hardware: i2cdetect finds only what exists;
 *   10-bit and malformed address encodings find nothing);
 * - reserved flag bits are set, or VIRTIO_I2C_FLAGS_M_RD disagrees with the buffer's direction
 *   ("A driver MUST set the VIRTIO_I2C_FLAGS_M_RD flag for a read operation, where the buffer is
 *   write-only for the device");
 * - the segment is longer than the cap (a guest cannot make the host allocate by a length);
 * - the request before it failed with VIRTIO_I2C_FLAGS_FAIL_NEXT set ("a device needs to fail
 *   them instead of attempting to execute them").
 * A failed read's buffer is zero-filled, so the used length covers the status byte (a buffer past
 * the cap is not: the status is written after it, unfilled).
 * A chain without 8 readable bytes or without a writable byte cannot be answered: used length 0.
 * VIRTIO_I2C_F_ZERO_LENGTH_REQUEST is offered and required ("MUST reject any driver that doesn't
 * negotiate this feature"). Guest faults never throw.
 * Does not own: the chips (clients.ts), files (host.ts), option parsing (kind.ts).
 */
import type { DeviceContext, HostReactor, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask } from '../../spec/virtio.js';
import type { I2cClient } from './clients.js';
import type { I2cMetrics } from './metrics.js';
import {
  I2C_DEVICE_ID,
  I2C_OUT_HDR_SIZE,
  I2C_QUEUE_MAX_SIZE,
  I2C_REQUESTQ,
  VIRTIO_I2C_FLAGS_FAIL_NEXT,
  VIRTIO_I2C_FLAGS_KNOWN,
  VIRTIO_I2C_FLAGS_M_RD,
  VIRTIO_I2C_F_ZERO_LENGTH_REQUEST,
  VIRTIO_I2C_MSG_ERR,
  VIRTIO_I2C_MSG_OK,
  sevenBitAddress,
} from './spec.js';

/** Default cap on one segment's length (Linux's I2C core caps messages at 8192 bytes too, I2C_RDWR). */
export const I2C_DEFAULT_MAX_TRANSFER = 8192;

/**
 * Seconds since the bus first started (the guest driver's first DRIVER_OK), the clock the trace
 * is played on; undefined before. The device starts it; sensors read it.
 */
export class BusClock {
  #reactor: HostReactor | undefined;
  #t0 = 0;

  /** Starts the clock at the reactor's now; later calls do nothing. */
  start(reactor: HostReactor): void {
    if (this.#reactor !== undefined) return;
    this.#reactor = reactor;
    this.#t0 = reactor.now();
  }

  seconds(): number | undefined {
    return this.#reactor === undefined ? undefined : (this.#reactor.now() - this.#t0) / 1000;
  }
}

export interface I2cOptions {
  /** The devices on the bus, by 7-bit address. */
  readonly clients: ReadonlyMap<number, I2cClient>;
  readonly clock?: BusClock;
  /** Longest segment accepted (default I2C_DEFAULT_MAX_TRANSFER). */
  readonly maxTransfer?: number;
}

export class I2cDevice implements VirtioDevice {
  readonly deviceId = I2C_DEVICE_ID;
  readonly name = 'i2c';
  readonly queueMaxSizes = [I2C_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_I2C_F_ZERO_LENGTH_REQUEST);
  readonly requiredFeatures = featureBit(VIRTIO_I2C_F_ZERO_LENGTH_REQUEST);
  readonly configSize = 0;
  readonly clock: BusClock;
  readonly #clients: ReadonlyMap<number, I2cClient>;
  readonly #maxTransfer: number;
  /** The previous request failed with FAIL_NEXT set: fail this one too. */
  #groupFailed = false;
  #ctx: DeviceContext | undefined;
  #counters = { requests: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, nacks: 0, refused: 0, skipped: 0, malformed: 0, clientErrors: 0 };

  constructor(opts: I2cOptions) {
    this.#clients = opts.clients;
    this.clock = opts.clock ?? new BusClock();
    this.#maxTransfer = opts.maxTransfer ?? I2C_DEFAULT_MAX_TRANSFER;
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#groupFailed = false;
    this.clock.start(ctx.reactor);
  }

  queueNotify(index: number): void {
    if (index !== I2C_REQUESTQ || this.#ctx === undefined) return;
    serveQueue(this.#ctx, index, (chain) => this.#serve(chain));
  }

  reset(): void {
    this.#ctx = undefined;
    this.#groupFailed = false;
  }

  metrics(): I2cMetrics {
    const q = this.#ctx?.queue(I2C_REQUESTQ);
    return {
      device: 'i2c',
      ...this.#counters,
      rejectedChains: q?.stats.chainsRejected ?? 0,
      notifications: q?.stats.notificationsSent ?? 0,
      devices: Object.fromEntries([...this.#clients].map(([a, c]) => [`0x${a.toString(16).padStart(2, '0')}`, c.chip])),
    };
  }

  #serve(chain: DescriptorChain): number {
    this.#counters.requests++;
    if (chain.readableLength < I2C_OUT_HDR_SIZE || chain.writableLength < 1) {
      this.#counters.malformed++;
      this.#ctx?.log.warn(`i2c: a request of ${chain.readableLength} readable and ${chain.writableLength} writable bytes has no room for the header or the status`);
      // The group's order is lost with this request: do not fail the next one for it.
      this.#groupFailed = false;
      return 0;
    }
    const reader = chain.reader();
    const hdr = new DataView(reader.readBytes(I2C_OUT_HDR_SIZE).buffer);
    const addr = hdr.getUint16(0, true);
    const flags = hdr.getUint32(4, true);
    const isRead = (flags & VIRTIO_I2C_FLAGS_M_RD) !== 0;
    const length = isRead ? chain.writableLength - 1 : chain.readableLength - I2C_OUT_HDR_SIZE;
    let data: Uint8Array | null = null;
    let ok = false;
    if (this.#groupFailed) this.#counters.skipped++;
    else if ((flags & ~VIRTIO_I2C_FLAGS_KNOWN) !== 0 || (isRead ? chain.readableLength !== I2C_OUT_HDR_SIZE : chain.writableLength !== 1) || length > this.#maxTransfer) {
      this.#counters.refused++;
    } else {
      const client = this.#client(addr);
      if (client === undefined) this.#counters.nacks++;
      else if (isRead) {
        data = this.#call(client, () => client.read(length));
        ok = data !== null && data.length === length;
        if (ok) {
          this.#counters.reads++;
          this.#counters.bytesRead += length;
        }
      } else {
        const bytes = reader.readBytes(length);
        ok = this.#call(client, () => client.write(bytes)) === true;
        if (ok) {
          this.#counters.writes++;
          this.#counters.bytesWritten += length;
        }
      }
    }
    this.#groupFailed = !ok && (flags & VIRTIO_I2C_FLAGS_FAIL_NEXT) !== 0;
    const w = chain.writer();
    const pad = chain.writableLength - 1;
    if (ok && data !== null) w.write(data);
    else if (pad <= this.#maxTransfer) w.write(new Uint8Array(pad));
    // Past the cap nothing is allocated for a guest-claimed length: the status goes at the end.
    else w.skip(pad);
    w.writeU8(ok ? VIRTIO_I2C_MSG_OK : VIRTIO_I2C_MSG_ERR);
    return w.consumed;
  }

  #client(addr: number): I2cClient | undefined {
    const a = sevenBitAddress(addr);
    return a === undefined ? undefined : this.#clients.get(a);
  }

  /** Runs a chip operation; a throw (a failing EEPROM file) is an error status and a log line. */
  #call<T>(client: I2cClient, op: () => T): T | null {
    try {
      return op();
    } catch (e: unknown) {
      this.#counters.clientErrors++;
      this.#ctx?.log.error(`i2c: ${client.chip}: ${(e as Error).message}`);
      return null;
    }
  }
}
