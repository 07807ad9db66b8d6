// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: `avp run` as a real child process, its output (stdout and stderr, both the
 * runner's `[avp]` lines and the guests' `[vm]` lines) collected line by line, with event-driven
 * waits on those lines. `stop()` ends it (SIGTERM, then SIGKILL) and, only if `avp run` itself
 * failed to clean up, kills what is left of its QEMUs and back-ends by pid (every process whose
 * command line names the run directory). Used by the resilience end-to-end tests (issue #16).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AVP_BIN } from './backend-process.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_WAIT_MS = 300_000;

export interface AvpRun {
  child: ChildProcess;
  /** Every output line so far, in order. */
  lines: string[];
  /** Resolves with the exit code (or signal name) when `avp run` ends. */
  exited: Promise<number | string>;
  /** The `nth` line (counting all output) matching `re`, waiting for it. */
  waitFor(re: RegExp, timeoutMs?: number, nth?: number): Promise<string>;
  /**
   * Waits until `pred(lines)` holds, checked now and after every new line; resolves with its
   * (truthy) result. `what` names the awaited event in the error.
   */
  until<T>(what: string, pred: (lines: readonly string[]) => T | undefined | false, timeoutMs?: number): Promise<T>;
  count(re: RegExp): number;
  /** The last `n` lines, for error messages. */
  tail(n?: number): string;
  /** SIGTERM (SIGKILL after 60 s), then kills anything left that names the run directory. Idempotent. */
  stop(): Promise<number | string>;
}

/** Starts `avp run <args> --run-dir <runDir>` from the repository root. */
export function avpRun(runDir: string, args: string[]): AvpRun {
  const child = spawn(process.execPath, [AVP_BIN, 'run', ...args, '--run-dir', runDir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const checks = new Set<() => void>();
  const count = (re: RegExp): number => lines.filter((l) => re.test(l)).length;
  const feed = () => {
    let partial = '';
    return (chunk: string): void => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) {
        lines.push(l);
        if (process.env['AVP_E2E_ECHO']) process.stderr.write(`  | ${l.slice(0, 300)}\n`);
        for (const check of [...checks]) check();
      }
    };
  };
  child.stdout?.setEncoding('utf8').on('data', feed());
  child.stderr?.setEncoding('utf8').on('data', feed());
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const tail = (n = 60): string => lines.slice(-n).join('\n');

  function until<T>(what: string, pred: (lines: readonly string[]) => T | undefined | false, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const now = pred(lines);
    if (now !== undefined && now !== false) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        checks.delete(check);
        clearTimeout(timer);
      };
      const check = (): void => {
        const r = pred(lines);
        if (r === undefined || r === false) return;
        done();
        resolve(r);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: not within ${timeoutMs} ms; last output:\n${tail()}`));
      }, timeoutMs);
      checks.add(check);
      void exited.then((code) => {
        if (!checks.has(check)) return;
        done();
        reject(new Error(`avp run exited (${code}) before ${what}; last output:\n${tail()}`));
      });
    });
  }

  let stopping: Promise<number | string> | undefined;
  return {
    child,
    lines,
    exited,
    count,
    tail,
    until,
    waitFor(re, timeoutMs = DEFAULT_WAIT_MS, nth = 1) {
      return until(`a line matching ${re} (#${nth})`, (ls) => ls.filter((l) => re.test(l))[nth - 1], timeoutMs);
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
          await exited;
          clearTimeout(timer);
        }
        // Only if avp run itself failed to clean up: its QEMUs and back-ends, by pid.
        const r = spawnSync('pgrep', ['-f', runDir], { encoding: 'utf8' });
        for (const pid of r.stdout.split('\n').filter((l) => l !== '').map(Number)) {
          if (pid === process.pid) continue;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        return exited;
      })();
      return stopping;
    },
  };
}

/** The pid in a runner line such as `back-end x serving (process 1234)`. */
export function pidIn(line: string): number {
  const m = /\(process (\d+)\)/.exec(line);
  if (m === null) throw new Error(`no "(process N)" in: ${line}`);
  return Number(m[1]);
}
