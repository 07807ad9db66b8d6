// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: runs `avp serve <device>` as a real child process (the program users and QEMU
 * run), waits for its "serving" log line, and guarantees the process is killed and its socket
 * directory removed when the test ends, pass or fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onProcessEnd } from '../../platform/exit-cleanup.js';

export const AVP_BIN = fileURLToPath(new URL('../../../bin/avp.js', import.meta.url));

/** `avp serve` in a temp folder; `stop` also removes the folder. */
export interface BackendProcess extends AvpProcess {
  socket: string;
  dir: string;
}

/** A running `avp` child process with its stderr lines, as both back-end fixtures use it. */
export interface AvpProcess {
  child: ChildProcess;
  /** Every stderr line so far (pino JSON). */
  logs: string[];
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Waits for the `nth` (default 1st) log line matching `re`. */
  waitLog(re: RegExp, timeoutMs?: number, nth?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after 10 s; resolves when gone. Idempotent. */
  stop(): Promise<number | string>;
}

/** Children and temp folders of this process's fixtures that are still alive, for the exit hooks. */
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();

/**
 * Kills every fixture child and removes every fixture folder, synchronously: the last resort when
 * the test process ends without its after() hooks (killed by SIGTERM or SIGINT, or exiting early),
 * so no back-end process or socket folder outlives it.
 */
function cleanUpNow(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}


/**
 * Spawns `avp ...args`, collects its stderr lines, and waits for the line matching `ready`; the
 * process is stopped again if it never gets there. `label` names it in errors (and in the echo
 * when `$echoEnv` is set).
 */
export async function spawnAvp(args: readonly string[], ready: RegExp, opts: { label: string; timeoutMs?: number; echoEnv?: string }): Promise<AvpProcess> {
  onProcessEnd(cleanUpNow);
  const child = spawn(process.execPath, [AVP_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  const logs: string[] = [];
  const waiters = new Set<{ re: RegExp; nth: number; resolve: (l: string) => void }>();
  const echo = opts.echoEnv !== undefined && process.env[opts.echoEnv] !== undefined;
  let buffered = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      logs.push(line);
      if (echo) process.stderr.write(`[${opts.label}] ${line}\n`);
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
        reject(new Error(`no ${opts.label} log line matching ${re} within ${timeoutMs} ms; logs:\n${logs.join('\n')}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then((code) => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`${opts.label} exited (${code}) before logging ${re}; logs:\n${logs.join('\n')}`));
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
  try {
    await waitLog(ready, opts.timeoutMs ?? 30_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, logs, exited, waitLog, stop };
}

/** Starts `avp serve <kind> --socket-path <tmp>/<kind>.sock ...args` and waits until it serves. */
export async function startBackend(kind: string, args: readonly string[] = [], opts: { timeoutMs?: number } = {}): Promise<BackendProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  liveDirs.add(dir);
  const socket = join(dir, `${kind}.sock`);
  let p: AvpProcess;
  try {
    p = await spawnAvp(['serve', kind, '--socket-path', socket, ...args], /"msg":"serving /, { label: 'backend', ...opts });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw e;
  }
  const stop = async (): Promise<number | string> => {
    const code = await p.stop();
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    return code;
  };
  return { ...p, socket, dir, stop };
}

/** Pids of the processes whose command line names `runDir` (QEMU and back-ends of an `avp run`), this one excluded. */
export function processesOf(runDir: string): number[] {
  const r = spawnSync('pgrep', ['-f', runDir], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map(Number)
    .filter((pid) => pid !== process.pid);
}
