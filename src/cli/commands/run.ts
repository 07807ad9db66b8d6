// SPDX-License-Identifier: Apache-2.0
/**
 * `avp run FILE`: boots the platform a manifest describes and supervises it (platform/run does the
 * work; this file parses options, wires signals and prints).
 *
 * Output: each VM's console on stdout as `[vm] line`; what the runner does on stderr as
 * `[avp] message`; on a terminal (and without --headless) a status table redrawn in place below
 * them. Exit status: 0 when the run succeeded (every VM ready with --headless/--until, or every
 * VM powered off successfully), 1 when it failed or timed out, 128 + signal when stopped by
 * Ctrl-C or SIGTERM; a second Ctrl-C exits at once (exit hooks still kill the VMs and back-ends
 * and remove the sockets).
 */
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { BackendUnavailableError, ManifestInvalidError } from '../../platform/errors.js';
import { PlatformRun, planManifestFile, renderStatus, type RunReporter } from '../../platform/run/index.js';
import { UsageError } from '../errors.js';
import { StatusBoard } from '../status-board.js';
import { printManifestIssues } from './validate.js';
import { errorText } from '../../errors.js';

interface RunOptions {
  runDir?: string;
  headless?: boolean;
  until?: string;
  timeout?: string;
}

/** How often the status table is redrawn and the back-ends asked for counters. */
const STATUS_INTERVAL_MS = 1_000;

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('boot the VMs and device back-ends of a platform manifest and supervise them')
    .argument('<file>', 'the manifest (YAML or JSON)')
    .option('--run-dir <dir>', 'sockets, logs and scratch disks go here (default .avp/runs/<platform>-<time>)')
    .option('--headless', 'no status table; end with status 0 once every VM printed its ready line (for CI)')
    .option('--until <regex>', "end with status 0 once every VM printed a line matching this (instead of each VM's boot.ready)")
    .option('--timeout <seconds>', 'end with status 1 if the run has not ended by then')
    .action(async (file: string, opts: RunOptions) => {
      process.exitCode = await runCommand(file, opts);
    });
}

async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const until = opts.until === undefined ? undefined : parseRegex(opts.until);
  const timeoutMs = opts.timeout === undefined ? undefined : parseSeconds(opts.timeout);
  const untilReady = opts.headless === true || until !== undefined;
  const say = (text: string): void => void process.stderr.write(text);
  let planned;
  try {
    planned = await planManifestFile(file, {
      ...(opts.runDir === undefined ? {} : { runDir: opts.runDir }),
      requireAvailable: true,
      onProgress: (m) => say(`[avp] image: ${m}\n`),
    });
  } catch (e: unknown) {
    if (e instanceof ManifestInvalidError) {
      printManifestIssues(file, e.issues);
      return 1;
    }
    if (e instanceof BackendUnavailableError) {
      say(e.message.split('\n').map((l) => `avp run: ${file}: ${l}\n`).join(''));
      return 1;
    }
    throw e;
  }

  let board: StatusBoard | undefined;
  const write = (stream: NodeJS.WritableStream, text: string): void => {
    if (board === undefined) stream.write(text);
    else board.print(stream, text);
  };
  const reporter: RunReporter = {
    console: (vm, line) => write(process.stdout, `[${vm}] ${line}\n`),
    info: (m) => write(process.stderr, `[avp] ${m}\n`),
    error: (m) => write(process.stderr, `[avp] error: ${m.replace(/\n/g, '\n[avp]   ')}\n`),
  };
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      write(process.stderr, `[avp] ${sig}: stopping the VMs and back-ends (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to exit at once)\n`);
      controller.abort(sig);
      return;
    }
    process.exit(128 + (osConstants.signals[sig] ?? 0));
  };
  const sigs = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of sigs) process.on(s, onSignal);

  const run = new PlatformRun({
    plan: planned.plan,
    reporter,
    untilReady,
    ...(until === undefined ? {} : { until }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    signal: controller.signal,
  });
  let ticker: NodeJS.Timeout | undefined;
  if (opts.headless !== true && process.stdout.isTTY) {
    const b = new StatusBoard(process.stdout, () => renderStatus(run.snapshot(), Date.now()));
    board = b;
    ticker = setInterval(() => {
      void run.refreshMetrics();
      b.refresh();
    }, STATUS_INTERVAL_MS);
  }
  try {
    const result = await run.run();
    return result.exitCode;
  } finally {
    clearInterval(ticker);
    board?.stop();
    for (const s of sigs) process.off(s, onSignal);
  }
}

function parseRegex(text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (e: unknown) {
    throw new UsageError(`run: --until must be a regular expression: ${errorText(e)}`);
  }
}

function parseSeconds(text: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0) throw new UsageError(`run: --timeout must be a number of seconds above 0, got ${JSON.stringify(text)}`);
  return Math.round(s * 1000);
}
