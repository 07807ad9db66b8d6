// SPDX-License-Identifier: Apache-2.0
/**
 * A HostReactor driven by hand, for the in-process harness and unit tests: timers fire when the
 * test advances the clock, watches fire when the test says an fd is ready. Deterministic: no real
 * time, no real fds.
 */
import type { HostReactor, HostTimer, HostWatch } from './contract.js';
import { TimerQueue } from './timer-queue.js';

interface Watch {
  fd: number;
  onReady: (ready: { readable: boolean; writable: boolean; hangup: boolean }) => void;
  writable: boolean;
  readable: boolean;
  closed: boolean;
}

export class ManualReactor implements HostReactor {
  #now = 0;
  readonly #watches = new Set<Watch>();
  readonly #timers = new TimerQueue();

  now(): number {
    return this.#now;
  }

  watch(fd: number, onReady: Watch['onReady']): HostWatch {
    const w: Watch = { fd, onReady, writable: false, readable: true, closed: false };
    this.#watches.add(w);
    return {
      close: () => {
        w.closed = true;
        this.#watches.delete(w);
      },
      setWritable: (on) => {
        w.writable = on;
      },
      setReadable: (on) => {
        w.readable = on;
      },
    };
  }

  setTimer(ms: number, fn: () => void): HostTimer {
    return this.#timers.add(this.#now + Math.max(0, ms), fn);
  }

  /** fds currently watched. */
  watchedFds(): number[] {
    return [...this.#watches].map((w) => w.fd);
  }

  /**
   * Tells the watchers of `fd` that it is ready, as poll would: readiness the watcher has no
   * interest in is masked, and a watcher left with nothing to hear (no hang-up either) is not
   * called. Returns how many were called.
   */
  fire(fd: number, ready: { readable?: boolean; writable?: boolean; hangup?: boolean } = { readable: true }): number {
    let n = 0;
    for (const w of [...this.#watches]) {
      if (w.closed || w.fd !== fd) continue;
      const r = { readable: (ready.readable ?? false) && w.readable, writable: (ready.writable ?? false) && w.writable, hangup: ready.hangup ?? false };
      if (!r.readable && !r.writable && !r.hangup) continue;
      w.onReady(r);
      n++;
    }
    return n;
  }

  /** The interest of the watch on `fd` (the first one), or undefined when `fd` is not watched. */
  interest(fd: number): { readable: boolean; writable: boolean } | undefined {
    for (const w of this.#watches) if (w.fd === fd && !w.closed) return { readable: w.readable, writable: w.writable };
    return undefined;
  }

  /** Advances the clock by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    // Timers that run set new ones; keep going until nothing more is due by `end`.
    for (let next = this.#timers.next(); next !== undefined && next <= end; next = this.#timers.next()) {
      this.#timers.runDue(next, (at) => {
        this.#now = Math.max(this.#now, at);
      });
    }
    this.#now = end;
  }

  /** Timers not yet run. */
  pendingTimers(): number {
    return this.#timers.size;
  }
}
