// SPDX-License-Identifier: Apache-2.0
/**
 * The slcan protocol (LAWICEL CAN232/CANUSB ASCII, as Linux's `slcan` line discipline and
 * can-utils' `slcand` speak it): how the AVP CAN bus talks to every node that joins over a byte
 * stream (a guest's virtio console port, a virtio-can back-end, a host program).
 *
 * Messages end with CR (0x0d); BEL (0x07) also ends one (LAWICEL's error reply). Node → bus:
 *   t<iii><l><dd…>   standard data frame     T<iiiiiiii><l><dd…>  extended data frame
 *   r<iii><l>        standard remote frame   R<iiiiiiii><l>       extended remote frame
 *   d/D<id><L><dd…>  CAN FD frame, b/B with bit rate switch (L is the DLC in hex, 0-F; the FD
 *                    extension of CANable and python-can, which Linux's slcan does not speak)
 *   O open, L open listen-only, C close, S0-S8 bit rate, V/v version, N serial, F status flags,
 *   Z0/Z1 time stamps, X auto poll, M/m acceptance code/mask, U baud, Q auto start, s bit timing.
 * Bus → node: the same frame lines (data; Linux ignores trailing time stamps, AVP sends none),
 * CR or BEL as the answer to a command, `s<state><rx:3><tx:3>` state changes (a active,
 * w warning, p passive, b bus-off, counters in decimal; Linux 6.1+ turns it into a CAN error
 * frame and, for b, into bus-off), and `e<n><codes>` bus errors (a = ACK error).
 *
 * Owns: `SlcanDecoder` (a byte stream → messages, with a cap on line length so a hostile peer cannot
 * grow a buffer) and the encoders. Does not own: what a bus does with them (bus.ts and the bus
 * server).
 */
import { type CanFrame, CANFD_LENGTHS, canFrame, formatCanId, frameProblem, hexBytes, parseHexBytes } from './frame.js';

/** The LAWICEL bit rate commands S0-S8, in bits per second (Linux slcan's table). */
export const SLCAN_BITRATES: readonly number[] = [10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000];

/** Longest line kept: an extended FD frame with 64 bytes is 1 + 8 + 1 + 128 = 138 characters. */
export const SLCAN_MAX_LINE = 160;

export type SlcanMessage =
  | { kind: 'frame'; frame: CanFrame }
  /** O, L, C, Sn, V, v, N, F, Z, X, M, m, U, Q, s: `code` is the letter, `arg` what follows it. */
  | { kind: 'command'; code: string; arg: string }
  /** A state report (bus → node). */
  | { kind: 'state'; state: SlcanState; rxErrors: number; txErrors: number }
  /** An error report (bus → node), the LAWICEL/Linux letters. */
  | { kind: 'error'; codes: string }
  /** A line that is none of these (an empty line, a bare CR, is skipped, not reported). */
  | { kind: 'invalid'; line: string; reason: string };

export type SlcanState = 'active' | 'warning' | 'passive' | 'bus-off';
const STATE_LETTER: Readonly<Record<SlcanState, string>> = { active: 'a', warning: 'w', passive: 'p', 'bus-off': 'b' };

const COMMAND_LETTERS = new Set(['O', 'L', 'C', 'S', 'V', 'v', 'N', 'F', 'Z', 'X', 'M', 'm', 'U', 'Q', 's', 'W', 'P', 'A']);

/** Splits a byte stream into slcan messages; feed it chunks as they come. */
export class SlcanDecoder {
  #line = '';
  #overlong = false;

  /** The messages that the chunk completes. */
  push(chunk: Uint8Array): SlcanMessage[] {
    const out: SlcanMessage[] = [];
    for (const byte of chunk) {
      if (byte === 0x0d || byte === 0x07 || byte === 0x0a) {
        if (this.#overlong) out.push({ kind: 'invalid', line: `${this.#line.slice(0, 32)}…`, reason: `longer than ${SLCAN_MAX_LINE} characters` });
        else if (this.#line !== '') out.push(decodeLine(this.#line));
        this.#line = '';
        this.#overlong = false;
      } else if (!this.#overlong) {
        if (this.#line.length >= SLCAN_MAX_LINE) this.#overlong = true;
        else this.#line += String.fromCharCode(byte);
      }
    }
    return out;
  }
}

/** One line without its terminator. */
export function decodeLine(line: string): SlcanMessage {
  const c = line[0] ?? '';
  switch (c) {
    case 't':
    case 'T':
    case 'r':
    case 'R':
    case 'd':
    case 'D':
    case 'b':
    case 'B':
      return decodeFrame(line);
    case 'e':
      return /^e[1-8][abBcfoOs]+$/.test(line) && line.length === 2 + Number(line[1]) ? { kind: 'error', codes: line.slice(2) } : invalid(line, 'not e<n><codes>');
    default:
      break;
  }
  if (c === 's') {
    const m = /^s([awpb])(\d{3})(\d{3})$/.exec(line);
    if (m !== null) {
      const state = (Object.keys(STATE_LETTER) as SlcanState[]).find((k) => STATE_LETTER[k] === m[1]) ?? 'active';
      return { kind: 'state', state, rxErrors: Number(m[2]), txErrors: Number(m[3]) };
    }
  }
  if (COMMAND_LETTERS.has(c)) return { kind: 'command', code: c, arg: line.slice(1) };
  return invalid(line, `unknown command '${c}'`);
}

function invalid(line: string, reason: string): SlcanMessage {
  return { kind: 'invalid', line: line.length > 40 ? `${line.slice(0, 40)}…` : line, reason };
}

function decodeFrame(line: string): SlcanMessage {
  const c = line[0] ?? '';
  const extended = c === c.toUpperCase();
  const rtr = c === 'r' || c === 'R';
  const fd = 'dDbB'.includes(c);
  const brs = c === 'b' || c === 'B';
  const idLen = extended ? 8 : 3;
  const idText = line.slice(1, 1 + idLen);
  const lenChar = line[1 + idLen];
  if (!/^[0-9A-Fa-f]+$/.test(idText) || idText.length !== idLen || lenChar === undefined) return invalid(line, 'short frame');
  const id = parseInt(idText, 16);
  const dlc = parseInt(lenChar, 16);
  if (Number.isNaN(dlc) || (!fd && dlc > 8)) return invalid(line, `bad length '${lenChar}'`);
  // Safe: dlc is 0-15 here.
  const length = fd ? CANFD_LENGTHS[dlc]! : dlc;
  const rest = line.slice(2 + idLen);
  let data: Uint8Array = new Uint8Array(0);
  if (!rtr) {
    // Time stamps (4 hex digits after the data, Z1 mode) are allowed and ignored, as Linux does.
    const parsed = parseHexBytes(rest.slice(0, 2 * length));
    if (parsed === undefined || parsed.length !== length) return invalid(line, `expected ${length} data bytes`);
    data = parsed;
  }
  const frame = canFrame({ id, extended, rtr, fd, brs, data, rtrLength: rtr ? dlc : 0 });
  const problem = frameProblem(frame);
  return problem === undefined ? { kind: 'frame', frame } : invalid(line, problem);
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

/** The slcan line of a frame, CR included. */
export function encodeSlcanFrame(f: CanFrame): Uint8Array {
  let letter: string;
  if (f.fd) letter = f.brs ? 'b' : 'd';
  else letter = f.rtr ? 'r' : 't';
  if (f.extended) letter = letter.toUpperCase();
  if (f.rtr) return ascii(`${letter}${formatCanId(f)}${f.rtrLength}\r`);
  const dlc = CANFD_LENGTHS.indexOf(f.data.length);
  return ascii(`${letter}${formatCanId(f)}${dlc.toString(16).toUpperCase()}${hexBytes(f.data)}\r`);
}

/** `s<state><rx><tx>` + CR; counters are clamped to 0-999 (three digits). */
export function encodeSlcanState(state: SlcanState, rxErrors: number, txErrors: number): Uint8Array {
  const n = (v: number) => String(Math.max(0, Math.min(999, Math.floor(v)))).padStart(3, '0');
  return ascii(`s${STATE_LETTER[state]}${n(rxErrors)}${n(txErrors)}\r`);
}

/** `e<n><codes>` + CR (codes: a ACK, b/B bit 0/1, c CRC, f form, o/O rx/tx overrun, s stuff). */
export function encodeSlcanError(codes: string): Uint8Array {
  return ascii(`e${codes.length}${codes}\r`);
}

/** A command line (`O`, `S6`, ...) + CR, as a node sends it. */
export function encodeSlcanCommand(code: string, arg = ''): Uint8Array {
  return ascii(`${code}${arg}\r`);
}

/** LAWICEL's answers: CR (done) and BEL (refused). */
export const SLCAN_OK = Uint8Array.of(0x0d);
export const SLCAN_ERROR = Uint8Array.of(0x07);
