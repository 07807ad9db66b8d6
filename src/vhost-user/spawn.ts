// SPDX-License-Identifier: Apache-2.0
/**
 * Starting a vhost-user back-end program on behalf of a front-end (`avp conformance --exec`,
 * `avp bench --exec`): any program, ours or not, given as one command string with a `{socket}`
 * placeholder where its socket path goes (`qemu-storage-daemon ... addr.path={socket}`).
 *
 * Owns: splitting the command into argv without a shell (whitespace separates; '...' is literal;
 * "..." allows \" \\ \$ \`; a backslash outside quotes escapes the next character), a private
 * temporary directory for the socket and the program's output (stdout and stderr go to a log
 * file, never to a pipe nobody reads while the front-end blocks), waiting until the socket accepts
 * a connection (fs.watch on the directory, plus a short backoff while the file exists but nobody
 * listens yet, with a generous deadline), knowing synchronously whether the process is still
 * alive (the front-end blocks the event loop while it drives the back-end, so it reads
 * /proc/<pid>/stat instead of waiting for Node's exit event), restarting it after a crash, and
 * always stopping it (SIGTERM, then SIGKILL after a deadline, vhost-user.rst "Backend program
 * conventions") and removing the directory.
 * Does not own: the protocol (frontend.ts), or what a crash means (the conformance runner).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeQuiet, connectUnix, SysError } from '../sys/index.js';
import { BackendProcessError } from './frontend-errors.js';

/** Where the socket path goes in a back-end command. */
export const SOCKET_PLACEHOLDER = '{socket}';

/**
 * Splits a command line into arguments the way a POSIX shell would for the simple cases (no
 * variables, globs, pipes or redirections: those characters are ordinary).
 * @throws BackendProcessError BACKEND_PROCESS_BAD_COMMAND for unbalanced quotes or an empty command.
 */
export function splitCommand(command: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inArg = false;
  let i = 0;
  const bad = (why: string) => new BackendProcessError('BACKEND_PROCESS_BAD_COMMAND', `back-end command ${JSON.stringify(command)}: ${why}`);
  while (i < command.length) {
    // Safe: i < length.
    const c = command[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw bad('unterminated single quote');
      cur += command.slice(i + 1, end);
      inArg = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= command.length) throw bad('unterminated double quote');
        const d = command[i]!;
        if (d === '"') break;
        const next = command[i + 1];
        if (d === '\\' && next !== undefined && '"\\$`'.includes(next)) {
          cur += next;
          i += 2;
        } else {
          cur += d;
          i++;
        }
      }
      inArg = true;
      i++;
    } else if (c === '\\') {
      const next = command[i + 1];
      if (next === undefined) throw bad('trailing backslash');
      cur += next;
      inArg = true;
      i += 2;
    } else {
      cur += c;
      inArg = true;
      i++;
    }
  }
  if (inArg) args.push(cur);
  if (args.length === 0) throw bad('no program given');
  return args;
}

/**
 * Splits `command` and puts `socketPath` wherever `{socket}` appears.
 * @throws BackendProcessError BACKEND_PROCESS_BAD_COMMAND when there is no `{socket}` placeholder.
 */
export function commandArgv(command: string, socketPath: string): string[] {
  const argv = splitCommand(command);
  if (!argv.some((a) => a.includes(SOCKET_PLACEHOLDER))) {
    throw new BackendProcessError('BACKEND_PROCESS_BAD_COMMAND', `back-end command ${JSON.stringify(command)} has no ${SOCKET_PLACEHOLDER} placeholder for the socket path`);
  }
  return argv.map((a) => a.split(SOCKET_PLACEHOLDER).join(socketPath));
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all (ENOENT, EACCES). */
  readonly error?: string;
}

/** `exit code 3`, `signal SIGSEGV`, or why it never started. */
export function describeExit(info: ExitInfo): string {
  if (info.error !== undefined) return `could not start: ${info.error}`;
  if (info.signal !== null) return `killed by ${info.signal}`;
  return `exit code ${info.code ?? 'unknown'}`;
}

export interface SpawnOptions {
  /** How long the socket may take to accept a connection (default 30 s: generous on a loaded machine). */
  readyTimeoutMs?: number;
  /** How long to wait after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
  /** File name of the socket inside the private directory (default `backend.sock`). */
  socketName?: string;
}

/** The longest wait between connection attempts while the socket file exists but nobody listens yet. */
const MAX_RETRY_MS = 100;

/** A back-end program the front-end started; see the file comment. */
export class SpawnedBackend {
  readonly command: string;
  readonly argv: readonly string[];
  /** Private temporary directory holding the socket and the log. */
  readonly dir: string;
  readonly socketPath: string;
  /** The program's stdout and stderr, appended across restarts. */
  readonly logPath: string;
  readonly #readyTimeout: number;
  readonly #stopTimeout: number;
  #child: ChildProcess | undefined;
  #exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  #exitInfo: ExitInfo | undefined;
  #starts = 0;
  #stopped = false;

  private constructor(command: string, argv: string[], dir: string, socketPath: string, opts: SpawnOptions) {
    this.command = command;
    this.argv = argv;
    this.dir = dir;
    this.socketPath = socketPath;
    this.logPath = join(dir, 'backend.log');
    this.#readyTimeout = opts.readyTimeoutMs ?? 30_000;
    this.#stopTimeout = opts.stopTimeoutMs ?? 10_000;
  }

  /**
   * Starts `command` with `{socket}` replaced by a fresh socket path and resolves once the socket
   * accepts connections. On failure everything is cleaned up before the error is thrown.
   * @throws BackendProcessError
   */
  static async start(command: string, opts: SpawnOptions = {}): Promise<SpawnedBackend> {
    const dir = mkdtempSync(join(tmpdir(), 'avp-backend-'));
    let backend: SpawnedBackend;
    try {
      const socketPath = join(dir, opts.socketName ?? 'backend.sock');
      backend = new SpawnedBackend(command, commandArgv(command, socketPath), dir, socketPath, opts);
    } catch (e: unknown) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    try {
      await backend.#launch();
    } catch (e: unknown) {
      await backend.stop();
      throw e;
    }
    return backend;
  }

  /** Process id of the current process (undefined if it never started). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** How many times the program was started (1 + restarts). */
  get starts(): number {
    return this.#starts;
  }

  /** How the last process ended, once Node has seen it end. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** Resolves when the current process ends. */
  get exited(): Promise<ExitInfo> {
    return this.#exited;
  }

  /**
   * Whether the current process is still running. Synchronous and exact even while the event loop
   * is blocked: an exited process is a zombie (state Z) until Node reaps it, then it is gone.
   */
  isAlive(): boolean {
    if (this.#exitInfo !== undefined) return false;
    const pid = this.#child?.pid;
    if (pid === undefined) return false;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    // Format: "pid (comm) S ...": the state follows the last ')' (comm may contain ')').
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X' && state !== '';
  }

  /** Waits (event-driven) up to `timeoutMs` for the process to end; undefined if it did not. */
  async waitExit(timeoutMs: number): Promise<ExitInfo | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      return await Promise.race([this.#exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last `maxBytes` of the program's output (for error messages and CRASH details). */
  logTail(maxBytes = 2000): string {
    try {
      const size = statSync(this.logPath).size;
      const all = readFileSync(this.logPath);
      return all.subarray(Math.max(0, size - maxBytes)).toString('utf8').trim();
    } catch {
      return '';
    }
  }

  /** Stops the current process (if it still runs) and starts the program again. @throws BackendProcessError */
  async restart(): Promise<void> {
    if (this.#stopped) throw new BackendProcessError('BACKEND_PROCESS_EXITED', 'the back-end was stopped; it cannot be restarted');
    await this.#kill();
    await this.#launch();
  }

  /** Stops the process (SIGTERM, then SIGKILL) and removes the directory. Idempotent. */
  async stop(): Promise<ExitInfo | undefined> {
    this.#stopped = true;
    await this.#kill();
    rmSync(this.dir, { recursive: true, force: true });
    return this.#exitInfo;
  }

  /** For `process.on('exit')` handlers: sends SIGKILL at once, without waiting. */
  killNow(): void {
    if (this.#child !== undefined && this.#exitInfo === undefined) this.#child.kill('SIGKILL');
  }

  async #kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.#exitInfo !== undefined) return;
    child.kill('SIGTERM');
    if ((await this.waitExit(this.#stopTimeout)) !== undefined) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  async #launch(): Promise<void> {
    try {
      unlinkSync(this.socketPath);
    } catch {
      // No stale socket: nothing to remove.
    }
    this.#exitInfo = undefined;
    this.#starts++;
    const log = openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      // Safe: commandArgv never returns an empty array (splitCommand refuses empty commands).
      child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    this.#child = child;
    this.#exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        // Only the current child's end counts (a restart replaces #child).
        if (this.#child === child && this.#exitInfo === undefined) this.#exitInfo = info;
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', (e: Error) => done({ code: null, signal: null, error: e.message }));
    });
    await this.#waitReady();
  }

  /** Resolves once the socket accepts a connection; rejects if the process ends first or the deadline passes. */
  #waitReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      let retryMs = 2;
      let retry: NodeJS.Timeout | undefined;
      // Assigned below, after `attempt` exists; `finish` may run before (a synchronous error).
      const watcher: { current?: FSWatcher } = {};
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(retry);
        watcher.current?.close();
        if (err === undefined) resolve();
        else reject(err);
      };
      const attempt = () => {
        if (done) return;
        try {
          closeQuiet(connectUnix(this.socketPath));
          finish();
        } catch (e: unknown) {
          if (!(e instanceof SysError)) return finish(e);
          if (e.errnoName === 'ECONNREFUSED') {
            // The socket file exists (bind) but nobody listens yet: try again soon.
            clearTimeout(retry);
            retry = setTimeout(attempt, retryMs);
            retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
          } else if (e.errnoName !== 'ENOENT') {
            finish(e);
          }
        }
      };
      const deadline = setTimeout(() => {
        finish(new BackendProcessError('BACKEND_PROCESS_NOT_READY', `back-end ${this.argv[0]} did not accept connections on ${this.socketPath} within ${this.#readyTimeout} ms; its output:\n${this.logTail()}`));
      }, this.#readyTimeout);
      void this.#exited.then((info) => {
        const code = info.error !== undefined ? 'BACKEND_PROCESS_SPAWN_FAILED' : 'BACKEND_PROCESS_EXITED';
        finish(new BackendProcessError(code, `back-end ${this.argv[0]} ${describeExit(info)} before its socket was ready; its output:\n${this.logTail()}`));
      });
      if (!done) {
        watcher.current = watch(this.dir, attempt);
        watcher.current.on('error', () => undefined);
      }
      attempt();
    });
  }
}
