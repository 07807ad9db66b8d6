// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: `avp serve <kind> --socket-path <temp>/<kind>.sock [args]` as a real process, for
 * the tests that attack a back-end program rather than a thread. Its log goes to a file, not a
 * pipe: tests that drive the back-end from a synchronous loop do not drain a pipe while they run,
 * and the back-end's last words (a crash) would be lost. After the test the process is killed
 * and the folder removed; when the back-end died or logged an error, its log is printed as a
 * diagnostic.
 * Owns: test behaviour only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const AVP = fileURLToPath(new URL('../../../bin/avp.js', import.meta.url));

export interface ServeProcess {
  /** The listening socket. */
  readonly sock: string;
  readonly child: ChildProcess;
  /** Resolves when the process ends: its exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** The log so far. */
  log(): string;
  /** Waits (20 ms steps, up to `ms`) until the log matches `re`; returns whether it did. */
  waitLog(re: RegExp, ms?: number): Promise<boolean>;
}

/** Starts the back-end and resolves once it logged that it serves. @throws Error when it exits first */
export async function startServe(t: TestContext, kind: string, args: readonly string[] = []): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), `avp-serve-${kind}-`));
  const sock = join(dir, `${kind}.sock`);
  const logPath = join(dir, 'serve.log');
  const logFd = openSync(logPath, 'w');
  const child = spawn(process.execPath, [AVP, 'serve', kind, '--socket-path', sock, ...args], { stdio: ['ignore', 'ignore', logFd] });
  closeSync(logFd);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const waitLog = async (re: RegExp, ms = 10_000): Promise<boolean> => {
    for (let waited = 0; !re.test(log()); waited += 20) {
      if (waited >= ms || child.exitCode !== null || child.signalCode !== null) return re.test(log());
      await delay(20);
    }
    return true;
  };
  t.after(async () => {
    const running = child.exitCode === null && child.signalCode === null;
    const how = running ? 'running' : await exited;
    const text = log();
    // A clean exit (status 0, e.g. on the test's SIGTERM) is not news; a crash or an error is.
    if ((how !== 'running' && how !== 0) || /\berror\b/.test(text)) t.diagnostic(`avp serve ${kind} (${how === 'running' ? how : `ended: ${String(how)}`}) said:\n${text.split('\n').slice(-40).join('\n')}`);
    if (running) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  if (!(await waitLog(/serving/, 60_000))) throw new Error(`avp serve ${kind} did not start (${child.exitCode === null && child.signalCode === null ? 'no "serving" line in 60 s' : `ended: ${String(await exited)}`}): ${log()}`);
  return { sock, child, exited, log, waitLog };
}
