// SPDX-License-Identifier: Apache-2.0
/**
 * The lines of a virtio-gpio device as the user describes them, and the host-side timeline that
 * drives their external levels (a vehicle-signal trace and a script of timed steps).
 *
 * Owns: parsing `--lines NAME[:in|:out][=0|1][@SIGNAL]` and `--drive SECONDS:LINE=0|1` (messages
 * name the option and the value), the names block GET_LINE_NAMES returns (VIRTIO 1.3 §5.17.6.1:
 * NUL-terminated names in line order, an empty name a single NUL, unique, 7-bit ASCII), and
 * merging trace rows and script steps into one time-ordered list of level changes.
 * Does not own: line state or the guest protocol (`model.ts`), reading the trace file (kind.ts),
 * timers (the device schedules the timeline on its reactor).
 */
import type { SignalTrace } from '../signal-trace.js';
import { GpioConfigError } from './errors.js';

/** Most lines a device may have (the spec allows 65535; Linux allocates per line). */
export const GPIO_MAX_LINES = 1024;
/** Lines when neither --ngpio nor --lines says. */
export const GPIO_DEFAULT_LINES = 8;

/** One line as configured: its name, the direction and level it starts with, its trace signal. */
export interface GpioLineSpec {
  /** '' for an unnamed line. */
  readonly name: string;
  readonly direction: 'in' | 'out';
  /** The external level of an input, the output value of an output, at start and after a reset. */
  readonly level: 0 | 1;
  /** The trace signal that drives the line's external level (default: its name). */
  readonly signal: string;
}

const NAME = '[A-Za-z][A-Za-z0-9_.-]{0,31}';
const LINE_RE = new RegExp(`^(${NAME})(?::(in|out))?(?:=([01]))?(?:@([^,\\s]{1,64}))?$`);
const DRIVE_RE = new RegExp(`^(\\d+(?:\\.\\d+)?)s?:(${NAME}|\\d+)=([01])$`);

/** `door:in=0@DoorOpen` → a line spec. @throws GpioConfigError GPIO_BAD_OPTION naming --lines */
export function parseLineSpec(text: string): GpioLineSpec {
  const m = LINE_RE.exec(text.trim());
  if (m === null) {
    throw new GpioConfigError('GPIO_BAD_OPTION', `--lines: expected NAME[:in|:out][=0|1][@SIGNAL] (a name of up to 32 letters, digits, '_', '.', '-' starting with a letter), got '${text}'`);
  }
  // Safe: group 1 takes part in every match.
  const name = m[1]!;
  return { name, direction: m[2] === 'out' ? 'out' : 'in', level: m[3] === '1' ? 1 : 0, signal: m[4] ?? name };
}

/**
 * The device's lines: the named ones first, then unnamed inputs up to `ngpio`.
 * @throws GpioConfigError GPIO_BAD_OPTION for duplicate names, or more named lines than ngpio
 */
export function buildLines(specs: readonly string[], ngpio: number | undefined): GpioLineSpec[] {
  const named = specs.map(parseLineSpec);
  const seen = new Set<string>();
  for (const l of named) {
    if (seen.has(l.name)) throw new GpioConfigError('GPIO_BAD_OPTION', `--lines: the name '${l.name}' is used twice (line names must be unique, VIRTIO 1.3 §5.17.6.1)`);
    seen.add(l.name);
  }
  const total = ngpio ?? (named.length > 0 ? named.length : GPIO_DEFAULT_LINES);
  if (named.length > total) throw new GpioConfigError('GPIO_BAD_OPTION', `--ngpio: ${total} lines, but ${named.length} are named with --lines`);
  if (total < 1 || total > GPIO_MAX_LINES) throw new GpioConfigError('GPIO_BAD_OPTION', `--ngpio: expected 1 to ${GPIO_MAX_LINES} lines, got ${total}`);
  const out = [...named];
  for (let i = named.length; i < total; i++) out.push({ name: '', direction: 'in', level: 0, signal: '' });
  return out;
}

/** The GET_LINE_NAMES block: every name NUL-terminated, in line order; empty when no line has a name. */
export function namesBlock(lines: readonly GpioLineSpec[]): Uint8Array {
  if (lines.every((l) => l.name === '')) return new Uint8Array(0);
  // Names are ASCII by construction (LINE_RE).
  return new TextEncoder().encode(lines.map((l) => `${l.name}\0`).join(''));
}

/** A step of the manifest's or the command line's script: at `time` seconds, `line` goes to `value`. */
export interface DriveStep {
  readonly time: number;
  /** A line name or number. */
  readonly line: string;
  readonly value: 0 | 1;
}

/** `2.5:door=1` (or `2.5s:3=1`) → a step. @throws GpioConfigError GPIO_BAD_OPTION naming --drive */
export function parseDriveStep(text: string): DriveStep {
  const m = DRIVE_RE.exec(text.trim());
  if (m === null) throw new GpioConfigError('GPIO_BAD_OPTION', `--drive: expected SECONDS:LINE=0|1 (e.g. 2.5:door=1), got '${text}'`);
  // Safe: all three groups take part in every match.
  return { time: Number(m[1]!), line: m[2]!, value: m[3] === '1' ? 1 : 0 };
}

/** The index of a line given by name or number, or undefined. */
export function lineIndex(lines: readonly GpioLineSpec[], ref: string): number | undefined {
  if (/^\d+$/.test(ref)) {
    const n = Number(ref);
    return n < lines.length ? n : undefined;
  }
  const i = lines.findIndex((l) => l.name === ref);
  return i < 0 ? undefined : i;
}

/** One scheduled change of a line's external level. */
export interface LevelChange {
  /** Seconds from the device's start (its first activation). */
  readonly time: number;
  readonly line: number;
  readonly value: 0 | 1;
  readonly source: 'trace' | 'script';
}

/**
 * The trace rows of every line's signal (a value other than 0 is high) and the script's steps, in
 * time order; at equal times trace rows come first, so a script step can override the trace.
 * @throws GpioConfigError GPIO_BAD_OPTION for a step naming a line that does not exist
 */
export function buildTimeline(lines: readonly GpioLineSpec[], trace: SignalTrace | undefined, drive: readonly DriveStep[]): LevelChange[] {
  const out: LevelChange[] = [];
  if (trace !== undefined) {
    lines.forEach((l, line) => {
      if (l.signal === '') return;
      for (const e of trace.events(l.signal)) out.push({ time: e.time, line, value: e.value !== 0 ? 1 : 0, source: 'trace' });
    });
  }
  for (const step of drive) {
    const line = lineIndex(lines, step.line);
    if (line === undefined) throw new GpioConfigError('GPIO_BAD_OPTION', `--drive: no line '${step.line}' (lines: ${lines.map((l, i) => l.name || String(i)).join(', ')})`);
    out.push({ time: step.time, line, value: step.value, source: 'script' });
  }
  const rank = (c: LevelChange): number => (c.source === 'trace' ? 0 : 1);
  // Array.prototype.sort is stable: rows of one signal keep their (already sorted) order.
  return out.sort((a, b) => a.time - b.time || rank(a) - rank(b));
}
