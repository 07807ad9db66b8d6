// SPDX-License-Identifier: Apache-2.0
/**
 * CAN and CAN FD frames (ISO 11898-1:2015) as AVP passes them between bus nodes: the frame value,
 * its checks, data length codes and the arbitration order.
 *
 * Owns: `CanFrame`, `frameProblem` (what makes a frame invalid, in words), DLC ↔ length,
 * `arbitrationKey` (which of two frames wins arbitration on the bus).
 * Does not own: any text or wire format (slcan.ts, candump.ts, the virtio-can device's spec.ts),
 * timing on the wire (timing.ts).
 *
 * Arbitration (ISO 11898-1 §10.4.6.1, bitwise on the wire, a dominant 0 wins): the 11 base ID bits
 * first; then a standard frame's RTR (or FD's RRS, always dominant) against an extended frame's
 * SRR (always recessive); then IDE (0 standard, 1 extended); then the 18 extension bits and the
 * extended RTR. So, for one base ID: standard data < standard remote < any extended frame.
 */

/** Largest 11-bit and 29-bit identifiers. */
export const CAN_SFF_MASK = 0x7ff;
export const CAN_EFF_MASK = 0x1fffffff;
/** Data bytes of a classic frame and of an FD frame, at most. */
export const CAN_MAX_DLEN = 8;
export const CANFD_MAX_DLEN = 64;
/** The data lengths an FD frame can have: DLC 0-15 → bytes. */
export const CANFD_LENGTHS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

/** One frame on the bus. Values are never mutated once built. */
export interface CanFrame {
  /** The identifier: 11 bits (standard) or 29 bits (extended). */
  readonly id: number;
  readonly extended: boolean;
  /** Remote transmission request (classic only): no data; `rtrLength` is the length asked for. */
  readonly rtr: boolean;
  /** CAN FD (FDF set); `brs` switches to the data bit rate, `esi` says the sender is error passive. */
  readonly fd: boolean;
  readonly brs: boolean;
  readonly esi: boolean;
  /** The data bytes: 0-8 (classic), one of CANFD_LENGTHS (FD), none for a remote frame. */
  readonly data: Uint8Array;
  /** Remote frames only: the DLC they carry, 0-8. */
  readonly rtrLength: number;
}

/** A frame from its fields; unspecified flags are false, data empty. Does not validate (frameProblem does). */
export function canFrame(f: { id: number; extended?: boolean; rtr?: boolean; fd?: boolean; brs?: boolean; esi?: boolean; data?: Uint8Array | readonly number[]; rtrLength?: number }): CanFrame {
  return {
    id: f.id,
    extended: f.extended ?? false,
    rtr: f.rtr ?? false,
    fd: f.fd ?? false,
    brs: f.brs ?? false,
    esi: f.esi ?? false,
    data: f.data instanceof Uint8Array ? f.data : Uint8Array.from(f.data ?? []),
    rtrLength: f.rtrLength ?? 0,
  };
}

/** Why `f` is not a valid frame, or undefined when it is. */
export function frameProblem(f: CanFrame): string | undefined {
  const max = f.extended ? CAN_EFF_MASK : CAN_SFF_MASK;
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > max) return `id 0x${f.id.toString(16)} does not fit ${f.extended ? 29 : 11} bits`;
  if (f.fd) {
    if (f.rtr) return 'CAN FD has no remote frames';
    if (!CANFD_LENGTHS.includes(f.data.length)) return `an FD frame carries 0-8, 12, 16, 20, 24, 32, 48 or 64 bytes, not ${f.data.length}`;
    return undefined;
  }
  if (f.brs || f.esi) return 'BRS and ESI exist only in FD frames';
  if (f.rtr) {
    if (f.data.length !== 0) return 'a remote frame carries no data';
    if (!Number.isInteger(f.rtrLength) || f.rtrLength < 0 || f.rtrLength > CAN_MAX_DLEN) return `a remote frame's length is 0-8, not ${f.rtrLength}`;
    return undefined;
  }
  if (f.data.length > CAN_MAX_DLEN) return `a classic frame carries at most 8 bytes, not ${f.data.length}`;
  return undefined;
}

/** The DLC (0-15) of a data length; undefined for lengths no DLC gives (FD: 9-11, 13-15, ...). */
export function lengthToDlc(length: number): number | undefined {
  const dlc = CANFD_LENGTHS.indexOf(length);
  return dlc < 0 ? undefined : dlc;
}

/** The data length a DLC gives: classic frames cap at 8 (DLC 9-15 mean 8), FD frames follow CANFD_LENGTHS. */
export function dlcToLength(dlc: number, fd: boolean): number {
  if (!Number.isInteger(dlc) || dlc < 0 || dlc > 15) return 0;
  // Safe: dlc is 0-15, the table has 16 entries.
  return fd ? CANFD_LENGTHS[dlc]! : Math.min(dlc, CAN_MAX_DLEN);
}

/** The frame's DLC on the wire (a remote frame carries the length it asks for). */
export function frameDlc(f: CanFrame): number {
  return f.rtr ? f.rtrLength : (lengthToDlc(f.data.length) ?? 0);
}

/**
 * A number that orders frames as arbitration does: the smaller key wins the bus. Bits, from the
 * top: base ID (11), RTR/RRS or SRR (1), IDE (1), extension ID (18), extended RTR (1). 32 bits in
 * all, exact in a double.
 */
export function arbitrationKey(f: CanFrame): number {
  if (!f.extended) {
    // RRS of an FD frame is dominant, as a data frame's RTR.
    const rtr = f.rtr ? 1 : 0;
    return f.id * 2 ** 21 + rtr * 2 ** 20;
  }
  const base = Math.floor(f.id / 2 ** 18);
  const ext = f.id % 2 ** 18;
  // SRR and IDE are both recessive (1) in an extended frame.
  return base * 2 ** 21 + 2 ** 20 + 2 ** 19 + ext * 2 + (f.rtr ? 1 : 0);
}

/** The identifier in hex as candump and slcan write it: 3 digits (standard) or 8 (extended). */
export function formatCanId(f: Pick<CanFrame, 'id' | 'extended'>): string {
  return f.id.toString(16).toUpperCase().padStart(f.extended ? 8 : 3, '0');
}

/** Data bytes as upper-case hex without separators. */
export function hexBytes(data: Uint8Array): string {
  let s = '';
  for (const b of data) s += b.toString(16).toUpperCase().padStart(2, '0');
  return s;
}

/** Hex digits (even count) → bytes; undefined when the text is not that. */
export function parseHexBytes(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Whether two frames are the same frame (fields and data). */
export function sameFrame(a: CanFrame, b: CanFrame): boolean {
  if (a.id !== b.id || a.extended !== b.extended || a.rtr !== b.rtr || a.fd !== b.fd || a.brs !== b.brs || a.esi !== b.esi) return false;
  if (a.rtr && a.rtrLength !== b.rtrLength) return false;
  return a.data.length === b.data.length && a.data.every((v, i) => v === b.data[i]);
}
