// SPDX-License-Identifier: Apache-2.0
/**
 * Vehicle signal traces shared by the devices that simulate sensors and inputs (i2c, gpio): a CSV
 * of `time,signal,value` rows (time in seconds from the start, a signal name, a number), as
 * logged from a vehicle bus. A `#` starts a comment; a first row `time,signal,value` is a header.
 *
 * Owns: parsing (bounded: at most MAX_TRACE_ROWS rows) and the value of a signal at a time (the
 * last row at or before it, so a trace holds its values; before the first row, undefined), and
 * the times at which a signal changes (for devices that raise interrupts on changes).
 * Does not own: what a signal means to a device (register encodings are the device's).
 */
import { AvpError } from '../errors.js';

export const MAX_TRACE_ROWS = 1_000_000;

export class SignalTraceError extends AvpError {
  override readonly code = 'SIGNAL_TRACE_INVALID';
}

export interface TraceEvent {
  readonly time: number;
  readonly value: number;
}

export class SignalTrace {
  readonly #signals = new Map<string, TraceEvent[]>();

  /** @throws SignalTraceError naming the line at fault */
  static parse(text: string, source = 'trace'): SignalTrace {
    const t = new SignalTrace();
    const lines = text.split(/\r?\n/);
    let rows = 0;
    lines.forEach((raw, i) => {
      const line = raw.replace(/#.*$/, '').trim();
      if (line === '' || (rows === 0 && /^time\s*,\s*signal\s*,\s*value$/i.test(line))) return;
      const cells = line.split(',').map((c) => c.trim());
      const [time, signal, value] = cells;
      if (cells.length !== 3 || time === undefined || signal === undefined || value === undefined || signal === '') {
        throw new SignalTraceError(`${source}:${i + 1}: expected time,signal,value, got '${raw.slice(0, 80)}'`);
      }
      const tn = Number(time);
      const vn = Number(value);
      if (time === '' || !Number.isFinite(tn) || tn < 0) throw new SignalTraceError(`${source}:${i + 1}: time must be a number of seconds >= 0, got '${time}'`);
      if (value === '' || !Number.isFinite(vn)) throw new SignalTraceError(`${source}:${i + 1}: value must be a number, got '${value}'`);
      if (++rows > MAX_TRACE_ROWS) throw new SignalTraceError(`${source}: more than ${MAX_TRACE_ROWS} rows`);
      t.add(signal, tn, vn);
    });
    for (const events of t.#signals.values()) events.sort((a, b) => a.time - b.time);
    return t;
  }

  /** Adds one row (kept sorted by the parser; callers adding by hand add in time order). */
  add(signal: string, time: number, value: number): void {
    const events = this.#signals.get(signal) ?? [];
    events.push({ time, value });
    this.#signals.set(signal, events);
  }

  get signals(): string[] {
    return [...this.#signals.keys()];
  }

  has(signal: string): boolean {
    return this.#signals.has(signal);
  }

  /** The signal's value at `time` seconds: the last row at or before it; undefined before the first. */
  valueAt(signal: string, time: number): number | undefined {
    const events = this.#signals.get(signal);
    if (events === undefined) return undefined;
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      // Safe: mid < events.length.
      if (events[mid]!.time <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : events[lo - 1]?.value;
  }

  /** The rows of `signal` in time order (empty for a signal the trace does not have). */
  events(signal: string): readonly TraceEvent[] {
    return this.#signals.get(signal) ?? [];
  }

  /** The first row of `signal` strictly after `time`, if any. */
  nextAfter(signal: string, time: number): TraceEvent | undefined {
    return this.#signals.get(signal)?.find((e) => e.time > time);
  }
}
