// SPDX-License-Identifier: Apache-2.0
/**
 * The life of a back-end program (`avp serve`, `avp switch`): start the worker thread that serves
 * the listening sockets, stop it on SIGTERM/SIGINT, run the caller's SIGUSR1 handler, clean up,
 * and turn the outcome into an exit code. Stop signals are trapped (`trapStopSignals`) before the
 * program creates its first socket, so a SIGTERM that arrives while it starts still ends in a clean
 * stop, never in Node's default action (which would leave the socket file behind).
 */
import type { Logger } from 'pino';
import { BackendThread, type LoopTuning } from '../vhost-user/server.js';
import type { WorkerPort } from '../vhost-user/worker-runtime.js';
import { BACKEND_WORKER_ENTRY } from '../platform/backends.js';
import { UsageError } from './errors.js';
import { errorText } from '../errors.js';

/** SIGTERM/SIGINT handlers installed early; the program acts on them once it can. */
export interface StopTrap {
  /** The first stop signal received, if any. */
  readonly signal: string | undefined;
  /** Calls `fn` on the first stop signal (at once if one already came). */
  onStop(fn: (signal: string) => void): void;
  /** Removes the handlers. */
  release(): void;
}

/** Traps SIGTERM and SIGINT from now on. Call before creating any socket file. */
export function trapStopSignals(log: Logger): StopTrap {
  let signal: string | undefined;
  let callback: ((signal: string) => void) | undefined;
  const handler = (s: string) => {
    if (signal !== undefined) return;
    signal = s;
    log.info(`${s}: stopping`);
    callback?.(s);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return {
    get signal() {
      return signal;
    },
    onStop(fn) {
      callback = fn;
      if (signal !== undefined) fn(signal);
    },
    release() {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

export interface BackendProgram {
  /** From `trapStopSignals`, called before the sockets were created. */
  trap: StopTrap;
  /** Command name for messages, e.g. `serve rng` or `switch`. */
  name: string;
  ports: WorkerPort[];
  log: Logger;
  /** Closes the listening fds and removes the socket files; called exactly once. */
  cleanup: () => void;
  /** Runs once the worker serves, e.g. a periodic stats writer; returns its stop function. */
  onStarted?: (thread: BackendThread) => () => void;
  /** SIGUSR1 handler (metrics or stats to the log). */
  onUsr1?: (thread: BackendThread) => void;
  /** The "serving ..." line, logged once the worker is ready (tests and supervisors wait for it). */
  servingMessage: string;
  /** `--busy-poll-us` and `--require-sealed-memory`. */
  tuning: LoopTuning;
}

/** The most `--busy-poll-us` accepts: one second of spinning after the last work. */
export const MAX_BUSY_POLL_US = 1_000_000;

/** The `--busy-poll-us` flag of the back-end commands. */
export const BUSY_POLL_FLAG = ['--busy-poll-us <us>', `after work, keep polling the rings this many microseconds before sleeping (0-${MAX_BUSY_POLL_US}; default 0: off); trades CPU for latency and rate`] as const;

/** The `--require-sealed-memory` flag of the back-end commands. */
export const SEALED_MEMORY_FLAG = [
  '--require-sealed-memory',
  'refuse guest memory regions whose file cannot be sealed against shrinking (F_SEAL_SHRINK); closes the window in which a front-end shrinking its memory could crash the back-end (docs/reliability.md). QEMU memory-backend-memfd (seal=on, the default) passes',
] as const;

/** Checks `--busy-poll-us`. @throws UsageError naming the command and the value */
export function parseBusyPollUs(command: string, text: string | undefined): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > MAX_BUSY_POLL_US) throw new UsageError(`${command}: --busy-poll-us must be an integer from 0 to ${MAX_BUSY_POLL_US} (microseconds), got '${text}'`);
  return n;
}

/** Runs the back-end until a signal or an unexpected worker exit; resolves to the exit code. */
export async function runBackendProgram(p: BackendProgram): Promise<number> {
  let thread: BackendThread | undefined;
  let stopExtras: (() => void) | undefined;
  const onUsr1 = () => {
    if (thread !== undefined) p.onUsr1?.(thread);
  };
  process.on('SIGUSR1', onUsr1);
  const detach = () => {
    p.trap.release();
    process.off('SIGUSR1', onUsr1);
  };
  try {
    thread = await BackendThread.start({
      entry: BACKEND_WORKER_ENTRY,
      ports: p.ports,
      onLog: (level, msg, port) => (p.ports.length > 1 ? p.log[level]({ port }, msg) : p.log[level](msg)),
      onEvent: (event, port) => p.log.debug({ event, port }, 'event'),
      tuning: p.tuning,
    });
  } catch (e: unknown) {
    detach();
    p.cleanup();
    throw new UsageError(`${p.name}: ${errorText(e)}`);
  }
  if (p.trap.signal === undefined) {
    p.log.info(p.servingMessage);
    stopExtras = p.onStarted?.(thread);
  }
  // Also covers a signal that came during start-up: the callback runs at once.
  const started = thread;
  p.trap.onStop(() => {
    stopExtras?.();
    void started.stop();
  });
  const code = await thread.exited;
  const expected = p.trap.signal !== undefined;
  stopExtras?.();
  detach();
  p.cleanup();
  if (!expected) {
    p.log.error(`back-end worker exited unexpectedly (code ${code})`);
    return 1;
  }
  return 0;
}
