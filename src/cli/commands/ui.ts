// SPDX-License-Identifier: Apache-2.0
/**
 * `avp ui [RUNDIR]`: the dashboard of a platform that runs in another process, attached through
 * its run directory's control socket (`RUNDIR/control.sock`; without RUNDIR, the newest run under
 * `.avp/runs` that answers). Prints the page's address (with its token) on stdout, serves it until
 * the run ends or Ctrl-C, then exits 0. `avp run --ui` serves the same dashboard in-process.
 * Also the options both share (`--ui`'s port, the bind address, report folders): parsed here.
 *
 * Owns: options and output. Does not own: the dashboard (ui/server.ts), the protocol
 * (platform/run/control-socket.ts).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ControlUnavailableError } from '../../platform/errors.js';
import { ControlClient } from '../../platform/run/index.js';
import { Dashboard } from '../../ui/server.js';
import { UsageError } from '../errors.js';

interface UiOptions {
  port?: string;
  host?: string;
  reports?: string[];
}

export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('serve the live dashboard of a running platform (avp run in another terminal), attached to its run directory')
    .argument('[rundir]', "the run directory of a running avp run (default: the newest under .avp/runs that answers)")
    .option('--port <port>', 'TCP port of the page (default: any free one)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1; the token in the address is still required)')
    .option('--reports <dir...>', 'more folders whose *.html reports the page links (RUNDIR/reports always)')
    .action(async (rundir: string | undefined, opts: UiOptions) => {
      process.exitCode = await uiCommand(rundir, opts);
    });
}

async function uiCommand(rundir: string | undefined, opts: UiOptions): Promise<number> {
  const port = parsePort('ui: --port', opts.port ?? '0');
  const host = parseHost('ui: --host', opts.host);
  const dir = rundir === undefined ? await newestLiveRun(resolve('.avp', 'runs')) : resolve(rundir);
  const client = await ControlClient.connect(join(dir, 'control.sock'));
  const dashboard = await Dashboard.start({ control: client, port, host, mode: 'attached', reportDirs: reportDirs(dir, opts.reports) });
  process.stdout.write(`${dashboard.url}\n`);
  process.stderr.write(`[avp] dashboard of ${dir} (attached); Ctrl-C to stop serving it (the platform runs on)\n`);
  const stop = new Promise<string>((res) => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => res(`stopped by ${s}`));
  });
  const reason = await Promise.race([client.closed, stop]);
  dashboard.end(reason);
  process.stderr.write(`[avp] ${reason}\n`);
  client.close();
  await dashboard.close();
  return 0;
}

/** The report folders of a run: RUNDIR/reports, then those given. */
export function reportDirs(runDir: string, extra: readonly string[] = []): string[] {
  return [join(runDir, 'reports'), ...extra.map((d) => resolve(d))];
}

/** `--ui`'s or `--port`'s value. @throws UsageError */
export function parsePort(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65_535) throw new UsageError(`${flag} must be a TCP port from 0 to 65535 (0: any free port); got ${JSON.stringify(text)}${flag.endsWith('--ui') ? ' (without a port, put --ui after the manifest)' : ''}`);
  return n;
}

/** An IP address to listen on, or localhost; default 127.0.0.1. @throws UsageError */
export function parseHost(flag: string, text: string | undefined): string {
  if (text === undefined) return '127.0.0.1';
  if (text !== 'localhost' && isIP(text) === 0) throw new UsageError(`${flag} must be an IP address (127.0.0.1, ::1, 0.0.0.0) or localhost; got ${JSON.stringify(text)}`);
  return text;
}

/** The newest run directory under `runs` whose control socket answers. @throws ControlUnavailableError */
export async function newestLiveRun(runs: string): Promise<string> {
  let dirs: string[] = [];
  try {
    dirs = readdirSync(runs)
      .map((d) => join(runs, d))
      .filter((d) => existsSync(join(d, 'control.sock')))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  } catch {
    // no .avp/runs here
  }
  for (const d of dirs) {
    try {
      (await ControlClient.connect(join(d, 'control.sock'))).close();
      return d;
    } catch {
      // a run that has ended without removing its socket (killed): try the next
    }
  }
  throw new ControlUnavailableError(`no running platform under ${runs}; start one with avp run, or give its run directory (avp ui RUNDIR)`);
}
