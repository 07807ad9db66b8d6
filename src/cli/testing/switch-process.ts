// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: runs `avp switch` as a real child process, waits for its "serving switch" log
 * line, reads its `--stats-file`, and guarantees the process is stopped when the test ends.
 * The caller owns the socket folder (the switch removes its sockets itself on exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { AVP_BIN } from './backend-process.js';

export interface SwitchProcess {
  child: ChildProcess;
  /** Every stderr line so far (pino JSON). */
  logs: string[];
  exited: Promise<number | string>;
  /** Waits for the `nth` (default 1st) log line matching `re`. */
  waitLog(re: RegExp, timeoutMs?: number, nth?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. Idempotent. */
  stop(): Promise<number | string>;
}

/** Starts `avp switch ...args` and waits until it serves. */
export async function startSwitch(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<SwitchProcess> {
  const child = spawn(process.execPath, [AVP_BIN, 'switch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const waiters = new Set<{ re: RegExp; nth: number; resolve: (l: string) => void }>();
  let buffered = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      logs.push(line);
      if (process.env['AVP_SWITCH_ECHO']) process.stderr.write(`[switch] ${line}\n`);
      for (const w of waiters) {
        if (w.re.test(line) && logs.filter((l) => w.re.test(l)).length >= w.nth) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const waitLog = (re: RegExp, timeoutMs = 30_000, nth = 1): Promise<string> => {
    const seen = logs.filter((l) => re.test(l))[nth - 1];
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { re, nth, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no switch log line matching ${re} within ${timeoutMs} ms; logs:\n${logs.join('\n')}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then((code) => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`switch exited (${code}) before logging ${re}; logs:\n${logs.join('\n')}`));
      });
    });
  };
  const stop = async (): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  const proc: SwitchProcess = { child, logs, exited, waitLog, stop };
  try {
    await waitLog(/"msg":"serving switch /, opts.timeoutMs ?? 30_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return proc;
}

/** The parsed `--stats-file`, or undefined while it does not exist yet (or is being replaced). */
export function readStats(file: string): SwitchStats | undefined {
  try {
    // The switch writes this document (statsDocument in commands/switch.ts); the cast names its shape.
    return JSON.parse(readFileSync(file, 'utf8')) as SwitchStats;
  } catch {
    return undefined;
  }
}

/** The parts of the stats document tests look at. */
export interface SwitchStats {
  time: string;
  switch: { clockMs: number | null; macTable: { entries: number }; uplink: { rx: { frames: number }; tx: { frames: number } } | null };
  ports: Record<
    string,
    {
      active: boolean;
      tx: { frames: number; bytes: number };
      rx: { frames: number; bytes: number };
      drops: Record<string, number>;
      shaping: { throttled: number };
      internalErrors: number;
      connected?: boolean;
    }
  >;
}

/**
 * Waits until `pred` holds for the stats file (re-read every 100 ms: the switch rewrites it every
 * --stats-interval) and returns that snapshot; rejects with the last snapshot after `timeoutMs`.
 */
export async function waitStats(file: string, pred: (s: SwitchStats) => boolean, what: string, timeoutMs = 120_000): Promise<SwitchStats> {
  const deadline = Date.now() + timeoutMs;
  let last: SwitchStats | undefined;
  for (;;) {
    last = readStats(file) ?? last;
    if (last !== undefined && pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`stats: ${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await delay(100);
  }
}
