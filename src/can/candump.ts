// SPDX-License-Identifier: Apache-2.0
/**
 * candump log files (can-utils `candump -l` / `log2asc` / `canplayer`): one frame per line,
 * `(<seconds>.<microseconds>) <ifname> <frame>`, with the frame in can-utils' compact form:
 *
 *   123#DEADBEEF           standard data frame (3 hex digits), data in hex ('.' separators allowed)
 *   12345678#00            extended data frame (8 hex digits)
 *   123#R   123#R4         remote frame, optionally with the length it asks for
 *   123##1DEADBEEF         CAN FD: '##', one hex digit of flags (1 BRS, 2 ESI, 4 FDF), then data
 *
 * Owns: formatting a frame as such a line and parsing one back (error frames, whose id has
 * CAN_ERR_FLAG 0x20000000, are reported as such so a replay can skip them). Does not own: files
 * or timing (the bus server writes and replays them).
 */
import { CANFD_LENGTHS, type CanFrame, canFrame, formatCanId, frameProblem, hexBytes, parseHexBytes } from './frame.js';

const CANFD_BRS = 0x1;
const CANFD_ESI = 0x2;
/** Longest line parsed: an FD frame of 64 bytes with dots between them, time stamp and name. */
export const CANDUMP_MAX_LINE = 512;

/** The frame part, `123#DEADBEEF` (no time stamp, no interface). */
export function formatCandumpFrame(f: CanFrame): string {
  const id = formatCanId(f);
  if (f.fd) return `${id}##${((f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0)).toString(16).toUpperCase()}${hexBytes(f.data)}`;
  if (f.rtr) return `${id}#R${f.rtrLength > 0 ? String(f.rtrLength) : ''}`;
  return `${id}#${hexBytes(f.data)}`;
}

/** One log line, `(1700000000.123456) vcan0 123#DEADBEEF` (no newline). `timeUs` is microseconds since the epoch. */
export function formatCandumpLine(timeUs: number, ifname: string, f: CanFrame): string {
  const us = Math.max(0, Math.floor(timeUs));
  const sec = Math.floor(us / 1e6);
  return `(${sec}.${String(us - sec * 1e6).padStart(6, '0')}) ${ifname} ${formatCandumpFrame(f)}`;
}

export type CandumpLine =
  | { kind: 'frame'; timeUs: number; ifname: string; frame: CanFrame }
  /** An error frame (CAN_ERR_FLAG in the id): not a frame any node sent. */
  | { kind: 'error-frame'; timeUs: number; ifname: string }
  /** A blank line or a comment ('#' or ';' first). */
  | { kind: 'blank' }
  | { kind: 'invalid'; reason: string };

/** Parses one log line (without its newline). */
export function parseCandumpLine(line: string): CandumpLine {
  const text = line.trim();
  if (text === '' || text.startsWith('#') || text.startsWith(';')) return { kind: 'blank' };
  if (text.length > CANDUMP_MAX_LINE) return { kind: 'invalid', reason: `longer than ${CANDUMP_MAX_LINE} characters` };
  const m = /^\((\d{1,12})\.(\d{1,9})\)\s+(\S+)\s+(\S+)(?:\s+[RT])?$/.exec(text);
  if (m === null) return { kind: 'invalid', reason: "expected '(<seconds>.<fraction>) <ifname> <id>#<data>'" };
  // Safe: the regular expression has four groups that matched.
  const timeUs = Number(m[1]!) * 1e6 + Math.round(Number(`0.${m[2]!}`) * 1e6);
  const ifname = m[3]!;
  const parsed = parseCandumpFrame(m[4]!);
  if (parsed === 'error-frame') return { kind: 'error-frame', timeUs, ifname };
  if (typeof parsed === 'string') return { kind: 'invalid', reason: parsed };
  return { kind: 'frame', timeUs, ifname, frame: parsed.frame };
}

/** `123#DEADBEEF` → a frame; a string says what is wrong. */
export function parseCandumpFrame(text: string): { frame: CanFrame } | 'error-frame' | string {
  const hash = text.indexOf('#');
  if (hash !== 3 && hash !== 8) return `'${text}': the id is 3 (standard) or 8 (extended) hex digits before '#'`;
  const idText = text.slice(0, hash);
  if (!/^[0-9A-Fa-f]+$/.test(idText)) return `'${text}': the id is not hex`;
  const raw = parseInt(idText, 16);
  const extended = hash === 8;
  if (extended && raw >= 0x20000000) return raw & 0x20000000 ? 'error-frame' : `'${text}': bad id`;
  let body = text.slice(hash + 1);
  let frame: CanFrame;
  if (body.startsWith('#')) {
    const flags = parseInt(body[1] ?? '', 16);
    if (Number.isNaN(flags)) return `'${text}': '##' is followed by one hex digit of FD flags`;
    const data = parseHexBytes(body.slice(2).replaceAll('.', ''));
    if (data === undefined) return `'${text}': the data is not hex bytes`;
    if (!CANFD_LENGTHS.includes(data.length)) return `'${text}': an FD frame cannot carry ${data.length} bytes`;
    frame = canFrame({ id: raw, extended, fd: true, brs: (flags & CANFD_BRS) !== 0, esi: (flags & CANFD_ESI) !== 0, data });
  } else if (body.startsWith('R')) {
    const len = body.length > 1 ? parseInt(body.slice(1), 16) : 0;
    if (Number.isNaN(len) || body.length > 2) return `'${text}': a remote frame is '#R' or '#R<length>'`;
    frame = canFrame({ id: raw, extended, rtr: true, rtrLength: len });
  } else {
    // can-utils may append '_<dlc>' for a classic DLC above 8 (len8_dlc): the length stays 8.
    body = body.replace(/_[0-9A-Fa-f]$/, '');
    const data = parseHexBytes(body.replaceAll('.', ''));
    if (data === undefined) return `'${text}': the data is not hex bytes`;
    frame = canFrame({ id: raw, extended, data });
  }
  const problem = frameProblem(frame);
  return problem === undefined ? { frame } : `'${text}': ${problem}`;
}
