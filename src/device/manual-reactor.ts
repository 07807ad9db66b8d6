// SPDX-License-Identifier: Apache-2.0
/**
 * A HostReactor driven by hand, for the in-process harness and unit tests: timers fire when the
 * test advances the clock, watches fire when the test says an fd is ready. Deterministic: no real
 * time, no real fds.
 */
import type { HostReactor, HostTimer, HostWatch } from './contract.js';

interface Watch {
  fd: number;
  onReady: (ready: { readable: boolean; writable: boolean; hangup: boolean }) => void;
  writable: boolean;
  closed: boolean;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualReactor implements HostReactor {
  #now = 0;
  #seq = 0;
  readonly #watches = new Set<Watch>();
  #timers: Timer[] = [];

  now(): number {
    return this.#now;
  }

  watch(fd: number, onReady: Watch['onReady']): HostWatch {
    const w: Watch = { fd, onReady, writable: false, closed: false };
    this.#watches.add(w);
    return {
      close: () => {
        w.closed = true;
        this.#watches.delete(w);
      },
      setWritable: (on) => {
        w.writable = on;
      },
    };
  }

  setTimer(ms: number, fn: () => void): HostTimer {
    const t: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /** fds currently watched. */
  watchedFds(): number[] {
    return [...this.#watches].map((w) => w.fd);
  }

  /** Tells the watchers of `fd` that it is ready. Returns how many were called. */
  fire(fd: number, ready: { readable?: boolean; writable?: boolean; hangup?: boolean } = { readable: true }): number {
    let n = 0;
    for (const w of [...this.#watches]) {
      if (w.closed || w.fd !== fd) continue;
      w.onReady({ readable: ready.readable ?? false, writable: (ready.writable ?? false) && w.writable, hangup: ready.hangup ?? false });
      n++;
    }
    return n;
  }

  /** Advances the clock by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#now = Math.max(this.#now, due.at);
      due.cancelled = true;
      due.fn();
    }
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    this.#now = end;
  }

  /** Timers not yet run. */
  pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
