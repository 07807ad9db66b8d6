// SPDX-License-Identifier: Apache-2.0
/**
 * CAN identifier filters with SocketCAN's semantics (linux/can.h `struct can_filter`, CAN_RAW_FILTER;
 * the text form of can-utils' `candump can0,<filter>`), so that a filter behaves on the AVP bus as
 * it would on a Linux CAN socket.
 *
 *   <id>:<mask>   matches when (can_id & mask) == (id & mask)
 *   <id>~<mask>   matches when (can_id & mask) != (id & mask)
 *
 * `can_id` is the frame's identifier with the flag bits SocketCAN keeps beside it: CAN_EFF_FLAG
 * 0x80000000 (extended) and CAN_RTR_FLAG 0x40000000 (remote). As in candump, an <id> written with
 * 8 hex digits gets CAN_EFF_FLAG; a mask matches the flags only if it includes them, so `123:7FF`
 * matches standard 0x123 and extended 0x00000123 alike, and `123:C00007FF` only the standard data
 * frame. A node's list of filters passes a frame that any filter matches; an empty list passes all.
 *
 * Owns: parsing, formatting and matching. Does not own: where filters apply (bus.ts).
 */
import { CanFormatError } from './errors.js';
import type { CanFrame } from './frame.js';

export const CAN_EFF_FLAG = 0x80000000;
export const CAN_RTR_FLAG = 0x40000000;

export interface CanFilter {
  /** The identifier with its flag bits (unsigned 32-bit). */
  readonly id: number;
  readonly mask: number;
  /** `~`: pass frames that do NOT match. */
  readonly invert: boolean;
}

/** The frame's SocketCAN can_id: identifier plus EFF and RTR flags (unsigned 32-bit). */
export function socketCanId(f: CanFrame): number {
  return (f.id | (f.extended ? CAN_EFF_FLAG : 0) | (f.rtr ? CAN_RTR_FLAG : 0)) >>> 0;
}

/** Whether the frame passes one filter. */
export function filterMatches(filter: CanFilter, f: CanFrame): boolean {
  const hit = ((socketCanId(f) & filter.mask) >>> 0) === ((filter.id & filter.mask) >>> 0);
  return hit !== filter.invert;
}

/** Whether the frame passes a list of filters (any match; an empty list passes everything). */
export function passes(filters: readonly CanFilter[], f: CanFrame): boolean {
  return filters.length === 0 || filters.some((x) => filterMatches(x, f));
}

/**
 * Parses `123:7FF` or `12345678~1FFFFFFF`.
 * @throws CanFormatError CAN_BAD_FILTER naming the text.
 */
export function parseCanFilter(text: string): CanFilter {
  const m = /^([0-9A-Fa-f]{1,8})([:~])([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (m === null) throw new CanFormatError('CAN_BAD_FILTER', `'${text}' is not a CAN filter: expected <id>:<mask> or <id>~<mask> in hex, e.g. 123:7FF`);
  // Safe: three groups matched.
  const idText = m[1]!;
  let id = parseInt(idText, 16) >>> 0;
  if (idText.length === 8) id = (id | CAN_EFF_FLAG) >>> 0;
  return { id, mask: parseInt(m[3]!, 16) >>> 0, invert: m[2] === '~' };
}

/** The text form (ids that carry CAN_EFF_FLAG are written with 8 digits, without the flag). */
export function formatCanFilter(f: CanFilter): string {
  const eff = (f.id & CAN_EFF_FLAG) !== 0;
  const id = eff ? ((f.id & ~CAN_EFF_FLAG) >>> 0).toString(16).padStart(8, '0') : f.id.toString(16).padStart(3, '0');
  return `${id.toUpperCase()}${f.invert ? '~' : ':'}${f.mask.toString(16).toUpperCase()}`;
}
