// SPDX-License-Identifier: Apache-2.0
/**
 * The timer half of a HostReactor, shared by the loop's reactor (real clock) and ManualReactor
 * (test clock): one-shot timers run in due order, ties in the order they were set.
 */
import type { HostTimer } from './contract.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class TimerQueue {
  #timers: Timer[] = [];
  #seq = 0;

  /** Schedules `fn` at time `at` (the caller's clock). */
  add(at: number, fn: () => void): HostTimer {
    const t: Timer = { at, seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /** Time of the earliest pending timer, or undefined. */
  next(): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers) if (!t.cancelled && (next === undefined || t.at < next)) next = t.at;
    return next;
  }

  /**
   * Runs the timers due at `now`, in order. Timers they set for `now` or earlier wait for the
   * next call, so a timer that re-arms itself at 0 cannot starve I/O.
   * `onRun` is told each timer's due time before it runs (ManualReactor moves its clock there).
   */
  runDue(now: number, onRun?: (at: number) => void): void {
    const due = this.#timers.filter((t) => !t.cancelled && t.at <= now).sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const t of due) t.cancelled = true;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    for (const t of due) {
      onRun?.(t.at);
      t.fn();
    }
  }

  /** Timers not yet run or cancelled. */
  get size(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
