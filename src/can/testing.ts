// SPDX-License-Identifier: Apache-2.0
/**
 * Test helpers of the CAN layer: a clock moved by hand (timers fire when the test advances it,
 * on time or late, as a loaded event loop fires them) and a node sink that records what it got.
 * Never exported from the main entry.
 */
import type { BusClock, NodeSink, NodeState } from './bus.js';
import type { CanFrame } from './frame.js';

export class ManualClock implements BusClock {
  #now = 0;
  #timers: Array<{ at: number; fn: () => void; seq: number; cancelled: boolean }> = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): { cancel(): void } {
    const t = { at: this.#now + Math.max(0, ms), fn, seq: this.#seq++, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /**
   * Moves the clock `ms` ahead, running each timer that falls due in order. `late`: timers run
   * with the clock already at the end (a busy event loop), so the bus must catch up.
   */
  advance(ms: number, late = false): void {
    const end = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = late ? end : Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }

  /** Moves the clock without running timers (the event loop is busy); `advance(0)` runs them late. */
  jump(ms: number): void {
    this.#now += ms;
  }

  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}

/** A NodeSink that keeps everything it is told. */
export class RecordingSink implements NodeSink {
  readonly frames: Array<{ frame: CanFrame; timeMs: number }> = [];
  readonly states: Array<{ state: NodeState; rec: number; tec: number }> = [];
  readonly errors: string[] = [];
  spaces = 0;

  frame(frame: CanFrame, timeMs: number): void {
    this.frames.push({ frame, timeMs });
  }

  state(state: NodeState, rec: number, tec: number): void {
    this.states.push({ state, rec, tec });
  }

  error(codes: string): void {
    this.errors.push(codes);
  }

  space(): void {
    this.spaces++;
  }

  get ids(): number[] {
    return this.frames.map((f) => f.frame.id);
  }
}
