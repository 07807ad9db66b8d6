// SPDX-License-Identifier: Apache-2.0
/**
 * `avp conformance`: runs the conformance suite against any vhost-user back-end, one it reaches on
 * a socket (`--socket-path`) or one it starts itself (`--exec 'command ... {socket}'`, restarted
 * after a crash and always stopped at the end).
 *
 * Owns: options, the progress line on stderr (rewritten in place on a terminal, one line per
 * check otherwise), the text report on stdout whose last line is `N passed, N failed`, report
 * files (`--report json|junit|html --output FILE`), comparing with an expected-verdict file
 * (`--expected FILE`), and the exit code: 1 when a check FAILs, WEDGEs or CRASHes (with
 * `--expected`: when a verdict differs from the file).
 * Does not own: checks, verdicts, formats (conformance/).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { catalogFor, fullCatalog, selectChecks } from '../../conformance/catalog.js';
import { conformanceFor, DEVICE_CONFORMANCE } from '../../conformance/devices.js';
import { compareExpected, parseExpected } from '../../conformance/expected.js';
import { REPORT_FORMATS, renderReport, textReport, type ReportFormat } from '../../conformance/report.js';
import { runConformance, socketTarget, spawnedTarget, type ProgressEvent, type Target } from '../../conformance/runner.js';
import { SpawnedBackend } from '../../vhost-user/spawn.js';
import { UsageError } from '../errors.js';

interface ConformanceOptions {
  device: string;
  socketPath?: string;
  exec?: string;
  only: string[];
  skip: string[];
  report?: ReportFormat;
  output?: string;
  expected?: string;
  timeout: string;
  list?: boolean;
}

/** Collects repeated and comma-separated values: `--only a,b --only c`. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')];
}

export function registerConformanceCommand(program: Command): void {
  program
    .command('conformance')
    .description('check a vhost-user back-end against VIRTIO 1.3, the vhost-user protocol and AVPS, including a hostile driver')
    .addOption(new Option('--device <name>', 'device type the back-end serves').choices(Object.keys(DEVICE_CONFORMANCE)).makeOptionMandatory())
    .option('--socket-path <path>', 'connect to a back-end already listening on this socket')
    .option('--exec <command>', "start the back-end: a command with {socket} where its socket path goes, e.g. 'avp serve rng --socket-path {socket}'")
    .option('--only <ids>', 'run only checks matching these IDs, ID prefixes or groups (comma-separated, repeatable)', collect, [])
    .option('--skip <ids>', 'skip checks matching these IDs, ID prefixes or groups (comma-separated, repeatable)', collect, [])
    .addOption(new Option('--report <format>', 'also write a report file').choices([...REPORT_FORMATS]))
    .option('--output <file>', 'where --report writes')
    .option('--expected <file>', 'compare verdicts with an expected-verdict file (CHECK_ID VERDICT # reason); exit 1 on any difference')
    .option('--timeout <ms>', 'deadline for one reply or completion', '5000')
    .option('--list', 'list the checks that would run, and exit')
    .action(async (opts: ConformanceOptions) => {
      process.exitCode = await conformance(opts);
    });
}

function progress(): (e: ProgressEvent) => void {
  const tty = process.stderr.isTTY === true;
  return (e) => {
    const n = `[${e.index + 1}/${e.total}]`;
    if (tty) {
      const text = e.kind === 'start' ? `${n} ${e.check.id} ...` : `${n} ${e.result.verdict} ${e.result.id}`;
      // Keep it to one terminal line so that \r rewrites it (a pty may report 0 columns).
      const cols = process.stderr.columns;
      process.stderr.write(`\r\x1b[2K${cols !== undefined && cols > 20 ? text.slice(0, cols - 1) : text}`);
      if (e.kind === 'done' && e.index + 1 === e.total) process.stderr.write('\r\x1b[2K');
    } else if (e.kind === 'done') {
      process.stderr.write(`${n} ${e.result.verdict} ${e.result.id}\n`);
    }
  };
}

async function conformance(opts: ConformanceOptions): Promise<number> {
  const device = conformanceFor(opts.device);
  const checks = selectChecks(catalogFor(device), { only: opts.only, skip: opts.skip });
  if (opts.list === true) {
    for (const c of checks) process.stdout.write(`${c.id.padEnd(46)} ${c.group.padEnd(8)} ${c.level.padEnd(6)} ${c.source}\n`);
    return 0;
  }
  if ((opts.socketPath === undefined) === (opts.exec === undefined)) throw new UsageError('conformance: give exactly one of --socket-path PATH or --exec COMMAND');
  if ((opts.report === undefined) !== (opts.output === undefined)) throw new UsageError('conformance: --report FORMAT and --output FILE go together');
  const timeoutMs = Number(opts.timeout);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 100) throw new UsageError(`conformance: --timeout must be an integer number of milliseconds >= 100, got ${opts.timeout}`);
  const expected = opts.expected === undefined ? undefined : parseExpected(readFileSync(opts.expected, 'utf8'), opts.expected);
  let backend: SpawnedBackend | undefined;
  const killOnExit = () => backend?.killNow();
  process.once('exit', killOnExit);
  try {
    let target: Target;
    if (opts.exec !== undefined) {
      backend = await SpawnedBackend.start(opts.exec);
      target = spawnedTarget(backend);
    } else {
      // Safe: exactly one of socketPath and exec is set (checked above).
      target = socketTarget(opts.socketPath!);
    }
    const report = await runConformance({ device, checks, target, timeoutMs, onProgress: progress() });
    if (opts.report !== undefined && opts.output !== undefined) writeFileSync(opts.output, renderReport(report, opts.report));
    let failing = report.failed > 0;
    if (expected !== undefined) {
      const problems = compareExpected(report.results, expected, fullCatalog().map((c) => c.id));
      for (const p of problems) process.stderr.write(`expected-verdict mismatch: ${p}\n`);
      failing = problems.length > 0;
    }
    process.stdout.write(textReport(report));
    return failing ? 1 : 0;
  } finally {
    await backend?.stop();
    process.off('exit', killOnExit);
  }
}
