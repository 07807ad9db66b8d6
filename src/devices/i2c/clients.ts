// SPDX-License-Identifier: Apache-2.0
/**
 * The simulated devices on the virtual I2C bus, each answering transfer segments the way the chip
 * it imitates does, so the guest's stock Linux drivers bind to them (`new_device`).
 *
 * - `Lm75Sensor`: the National/TI LM75 register set that Linux's lm75 driver (and tmp75/tmp102
 *   class parts in LM75 mode) reads: a pointer register (a write's first byte, bits 1-0) selecting
 *   TEMP (0, read-only), CONF (1, 8 bits), THYST (2) and TOS (3); 16-bit registers are sent MSB
 *   first and hold a 9-bit two's-complement value in 0.5 °C steps in bits 15-7 (the lm75 driver's
 *   default 9-bit resolution). Reads past a register's width repeat it, as the chip does. TEMP
 *   follows a temperature source (a signal of the trace), clamped to the chip's -55..125 °C.
 * - `At24Eeprom`: a 24C02, 256 bytes in 8-byte pages, behind Linux's at24 driver: a write's first
 *   byte sets the word address and the bytes after it are written within the current page
 *   (wrapping inside it, as the chip's page buffer does); a read continues from the address
 *   counter and wraps at the end of the array. Every write reaches the backing store before the
 *   request completes. Writes finish at once, so the chip never NACKs for a write cycle.
 * Both acknowledge zero-length transfers (SMBus Quick, i2cdetect). A NACK is `false` from a
 * write or `null` from a read. Does not own: the request protocol (model.ts), files (host.ts).
 */
import type { EepromStore } from './host.js';

/** One device on the bus, addressed by the model. */
export interface I2cClient {
  /** Chip name for logs and metrics (`lm75`, `24c02`). */
  readonly chip: string;
  /** A write segment; false when the device does not acknowledge it. */
  write(data: Uint8Array): boolean;
  /** A read segment of `n` bytes; null when the device does not acknowledge it. */
  read(n: number): Uint8Array | null;
}

/** LM75 limits of the temperature register (datasheet range). */
export const LM75_MIN_C = -55;
export const LM75_MAX_C = 125;
/** Power-on register values: THYST 75 °C, TOS 80 °C, CONF 0 (comparator mode, running). */
export const LM75_POWER_ON = { thyst: 75, tos: 80, conf: 0 } as const;

/** °C → the 16-bit register value with 9-bit resolution (0.5 °C steps in bits 15-7). */
export function lm75Encode(celsius: number): number {
  const c = Math.min(LM75_MAX_C, Math.max(LM75_MIN_C, Number.isFinite(celsius) ? celsius : 0));
  return (Math.round(c * 2) << 7) & 0xffff;
}

/** The register value → °C (the lm75 driver's reading at 9-bit resolution). */
export function lm75Decode(raw: number): number {
  const signed = raw & 0x8000 ? raw - 0x10000 : raw;
  return (signed >> 7) / 2;
}

export class Lm75Sensor implements I2cClient {
  readonly chip = 'lm75';
  readonly #temperature: () => number;
  #pointer = 0;
  #conf: number = LM75_POWER_ON.conf;
  #thyst = lm75Encode(LM75_POWER_ON.thyst);
  #tos = lm75Encode(LM75_POWER_ON.tos);

  /** `temperature` gives °C at the moment of a read. */
  constructor(temperature: () => number) {
    this.#temperature = temperature;
  }

  write(data: Uint8Array): boolean {
    if (data.length === 0) return true;
    // Safe: length checked above.
    this.#pointer = data[0]! & 0x03;
    const v = data.subarray(1);
    if (v.length === 0) return true;
    if (this.#pointer === 1) this.#conf = v[0]!;
    else if (this.#pointer === 2 || this.#pointer === 3) {
      // A 16-bit write is MSB then LSB; the chip keeps bits 15-7. One byte sets the MSB only.
      const raw = (((v[0] ?? 0) << 8) | (v[1] ?? 0)) & 0xff80;
      if (this.#pointer === 2) this.#thyst = raw;
      else this.#tos = raw;
    }
    // TEMP (0) is read-only: the write is acknowledged and ignored, as on the chip.
    return true;
  }

  read(n: number): Uint8Array {
    const reg = this.#register();
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = reg[i % reg.length] ?? 0;
    return out;
  }

  /** The selected register's bytes, MSB first. */
  #register(): number[] {
    switch (this.#pointer) {
      case 0: {
        const t = lm75Encode(this.#temperature());
        return [t >> 8, t & 0xff];
      }
      case 1:
        return [this.#conf];
      case 2:
        return [this.#thyst >> 8, this.#thyst & 0xff];
      default:
        return [this.#tos >> 8, this.#tos & 0xff];
    }
  }
}

/** 24C02 geometry. */
export const AT24C02_SIZE = 256;
export const AT24C02_PAGE = 8;

export class At24Eeprom implements I2cClient {
  readonly chip = '24c02';
  readonly #store: EepromStore;
  readonly #data: Uint8Array;
  #address = 0;

  /** @throws the store's load errors */
  constructor(store: EepromStore) {
    this.#store = store;
    this.#data = store.load(AT24C02_SIZE);
  }

  write(data: Uint8Array): boolean {
    if (data.length === 0) return true;
    // Safe: length checked above.
    this.#address = data[0]!;
    const bytes = data.subarray(1);
    if (bytes.length === 0) return true;
    const page = this.#address & ~(AT24C02_PAGE - 1);
    // More than a page wraps inside it: only the last AT24C02_PAGE bytes stay (the page buffer).
    const keep = bytes.subarray(Math.max(0, bytes.length - AT24C02_PAGE));
    let offset = (this.#address + (bytes.length - keep.length)) & (AT24C02_PAGE - 1);
    for (const b of keep) {
      this.#data[page + offset] = b;
      offset = (offset + 1) & (AT24C02_PAGE - 1);
    }
    this.#store.save(this.#data, page, AT24C02_PAGE);
    this.#address = page + offset;
    return true;
  }

  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.#data[this.#address] ?? 0xff;
      this.#address = (this.#address + 1) % AT24C02_SIZE;
    }
    return out;
  }
}
