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
 *
 * With --ui: a live dashboard in the browser (ui/server.ts), its address printed as
 * `[avp] dashboard: http://127.0.0.1:PORT/TOKEN/`; without --headless/--until the run then stays
 * up after the VMs power off (they can be started again from the page) until Ctrl-C or --timeout.
 * Every run also has a control socket in its run directory, so `avp ui RUNDIR` can attach later.
 */
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { BackendUnavailableError, ManifestInvalidError } from '../../platform/errors.js';
import { LocalControl, PlatformRun, planManifestFile, renderStatus, type RunReporter } from '../../platform/run/index.js';
import { Dashboard } from '../../ui/server.js';
import { UsageError } from '../errors.js';
import { StatusBoard } from '../status-board.js';
import { printManifestIssues } from './validate.js';
import { parseHost, parsePort, reportDirs } from './ui.js';
import { errorText } from '../../errors.js';

interface RunOptions {
  runDir?: string;
  headless?: boolean;
  until?: string;
  timeout?: string;
  ui?: string | boolean;
  uiHost?: string;
  reports?: string[];
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
    .option('--ui [port]', 'serve a live dashboard (VMs, consoles, back-end counters, start/stop/restart) on 127.0.0.1:PORT (default: any free port); its address, with a secret token, is printed. Without --headless/--until the run stays up until Ctrl-C')
    .option('--ui-host <address>', 'address the dashboard listens on (default 127.0.0.1; the token is still required)')
    .option('--reports <dir...>', 'folders whose *.html reports (conformance, benchmarks) the dashboard links, besides RUNDIR/reports')
    .addHelpText(
      'after',
      `
Dashboard: avp run FILE --ui prints "[avp] dashboard: http://127.0.0.1:PORT/TOKEN/"; open it in a
browser. Requests without the token are refused. Start, stop and restart follow the supervisor's
rules: a back-end only with restart: on-failure (QEMU reconnects), a VM only when its back-ends run.
avp ui RUNDIR serves the same page for a run started without --ui (through RUNDIR/control.sock).`,
    )
    .action(async (file: string, opts: RunOptions) => {
      process.exitCode = await runCommand(file, opts);
    });
}

async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const until = opts.until === undefined ? undefined : parseRegex(opts.until);
  const timeoutMs = opts.timeout === undefined ? undefined : parseSeconds(opts.timeout);
  const untilReady = opts.headless === true || until !== undefined;
  const ui = opts.ui === undefined || opts.ui === false ? undefined : { port: parsePort('run: --ui', opts.ui === true ? '0' : opts.ui), host: parseHost('run: --ui-host', opts.uiHost) };
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
    // The dashboard keeps the run up after the VMs power off: they can be started again from it.
    stayUp: ui !== undefined && !untilReady,
  });
  let dashboard: Dashboard | undefined;
  if (ui !== undefined) {
    dashboard = await Dashboard.start({ control: new LocalControl(run), ...ui, mode: 'in-process', reportDirs: reportDirs(planned.plan.runDir, opts.reports) });
    write(process.stderr, `[avp] dashboard: ${dashboard.url}\n`);
    if (!untilReady) write(process.stderr, '[avp] the run stays up after the VMs power off; Ctrl-C ends it\n');
  }
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
    dashboard?.end(result.reason);
    return result.exitCode;
  } finally {
    dashboard?.end('the run has ended');
    await dashboard?.close();
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
