// SPDX-License-Identifier: Apache-2.0
/**
 * How long a frame occupies the bus (ISO 11898-1:2015 §10.4, §10.5): its bit length, stuff bits
 * included, at the nominal bit rate and, for CAN FD frames with BRS, the data bit rate.
 *
 * Owns: the bit sequence of a frame up to the CRC, CRC-15 (classic), the stuff-bit count, and the
 * frame time. Does not own: arbitration or queueing (bus.ts).
 *
 * Classic frames are counted exactly: the bits from SOF to the end of the CRC sequence are built
 * (identifier, control, data, CRC-15 over them) and every stuff bit the transmitter would insert
 * (after five equal bits, a complement; the stuff bit counts in the next run) is counted. Then
 * CRC delimiter, ACK slot, ACK delimiter, 7-bit EOF and the 3-bit intermission (so back-to-back
 * frames are spaced as on a loaded bus).
 * CAN FD: dynamic stuffing from SOF to the end of the data field is counted exactly on the same
 * bit sequence; the CRC field (4-bit stuff count + CRC-17 for up to 16 data bytes, CRC-21 above)
 * has fixed stuff bits, one before the stuff count and one after every 4 bits. With BRS, ESI
 * through the CRC delimiter run at the data bit rate (the half-bit shifts at the BRS and CRC
 * delimiter sample points are ignored: under a bit each).
 */
import { type CanFrame, frameDlc } from './frame.js';

/** Bits of a frame on the wire, split by the bit rate they run at. */
export interface FrameBits {
  /** Bits at the nominal rate (all bits of a classic frame), stuff bits included. */
  nominal: number;
  /** Bits at the data rate (FD with BRS: ESI to the CRC delimiter), stuff bits included. */
  data: number;
  /** Stuff bits among them (dynamic and, for FD, fixed). */
  stuff: number;
}

/** CRC delimiter, ACK slot, ACK delimiter, EOF (7) and intermission (3). */
const TRAILER_BITS = 1 + 1 + 1 + 7 + 3;

/** Appends the `width` low bits of `value`, most significant first. */
function pushBits(out: number[], value: number, width: number): void {
  for (let i = width - 1; i >= 0; i--) out.push(Math.floor(value / 2 ** i) % 2);
}

/** CRC-15/CAN (polynomial 0x4599) over `bits` (ISO 11898-1 §10.4.2.6). */
export function crc15(bits: readonly number[]): number {
  let crc = 0;
  for (const b of bits) {
    const next = b ^ ((crc >> 14) & 1);
    crc = (crc << 1) & 0x7fff;
    if (next === 1) crc ^= 0x4599;
  }
  return crc;
}

/** Stuff bits a transmitter inserts into `bits` (after 5 equal bits, one complement bit, which starts the next run). */
export function countStuffBits(bits: readonly number[]): number {
  let stuffed = 0;
  let last = -1;
  let run = 0;
  for (const b of bits) {
    if (b === last) run++;
    else {
      last = b;
      run = 1;
    }
    if (run === 5) {
      stuffed++;
      last = 1 - b;
      run = 1;
    }
  }
  return stuffed;
}

/**
 * The bits from SOF to the end of the data field, and where the arbitration/control part that
 * runs at the nominal rate ends (index after BRS for FD; the whole sequence for classic).
 */
function headerAndData(f: CanFrame): { bits: number[]; nominalEnd: number } {
  const bits: number[] = [0]; // SOF, dominant
  if (f.extended) {
    pushBits(bits, Math.floor(f.id / 2 ** 18), 11);
    bits.push(1, 1); // SRR, IDE
    pushBits(bits, f.id % 2 ** 18, 18);
    bits.push(f.rtr ? 1 : 0); // RTR (FD: RRS, dominant)
  } else {
    pushBits(bits, f.id, 11);
    bits.push(f.rtr ? 1 : 0, 0); // RTR (FD: RRS), IDE
  }
  let nominalEnd: number;
  if (f.fd) {
    // Standard: IDE already pushed; both: FDF (recessive), res (dominant), BRS.
    bits.push(1, 0, f.brs ? 1 : 0);
    nominalEnd = bits.length;
    bits.push(f.esi ? 1 : 0);
  } else {
    // r1 (extended only) and r0 (standard: r0 after IDE), all dominant.
    if (f.extended) bits.push(0, 0);
    else bits.push(0);
    nominalEnd = -1;
  }
  pushBits(bits, frameDlc(f), 4);
  for (const byte of f.data) pushBits(bits, byte, 8);
  return { bits, nominalEnd: nominalEnd < 0 ? bits.length : nominalEnd };
}

/** The frame's bits on the wire (see the file comment). */
export function frameBits(f: CanFrame): FrameBits {
  const { bits, nominalEnd } = headerAndData(f);
  if (!f.fd) {
    const crc: number[] = [];
    pushBits(crc, crc15(bits), 15);
    const all = [...bits, ...crc];
    const stuff = countStuffBits(all);
    return { nominal: all.length + stuff + TRAILER_BITS, data: 0, stuff };
  }
  const dynamicNominal = countStuffBits(bits.slice(0, nominalEnd));
  const dynamicAll = countStuffBits(bits);
  const crcBits = f.data.length <= 16 ? 17 : 21;
  const crcField = 4 + crcBits;
  const fixed = 1 + Math.floor(crcField / 4);
  // In the data phase: ESI, DLC, data (+ their stuff bits), the CRC field with its fixed stuff bits, the CRC delimiter.
  const dataPhase = bits.length - nominalEnd + (dynamicAll - dynamicNominal) + crcField + fixed + 1;
  const nominal = nominalEnd + dynamicNominal + (TRAILER_BITS - 1);
  const stuff = dynamicAll + fixed;
  return f.brs ? { nominal, data: dataPhase, stuff } : { nominal: nominal + dataPhase, data: 0, stuff };
}

/** Bit rates of a bus, in bits per second. */
export interface BusRates {
  readonly bitrate: number;
  /** The FD data phase rate (BRS frames); defaults to `bitrate`. */
  readonly dataBitrate?: number;
}

/** Microseconds the frame occupies the bus, intermission included. */
export function frameTimeUs(f: CanFrame, rates: BusRates): number {
  const b = frameBits(f);
  return (b.nominal * 1e6) / rates.bitrate + (b.data * 1e6) / (rates.dataBitrate ?? rates.bitrate);
}
