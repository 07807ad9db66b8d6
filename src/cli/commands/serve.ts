// SPDX-License-Identifier: Apache-2.0
/**
 * `avp serve <device>`: a vhost-user back-end program following the QEMU/libvirt conventions
 * (docs/interop/vhost-user.rst "Backend program conventions"): `--socket-path PATH` or `--fd N`,
 * `--print-capabilities` (JSON on stdout, other arguments ignored), no daemonizing, clean exit on
 * SIGTERM/SIGINT, socket file created mode 0600 and removed on exit. SIGUSR1 logs the metrics.
 */
import { unlinkSync } from 'node:fs';
import type { Command } from 'commander';
import { cliFlags, parseOptions, coerceCliValues } from '../../devices/options.js';
import { DEVICE_KINDS, type DeviceKind } from '../../devices/registry.js';
import { closeQuiet } from '../../sys/index.js';
import { checkInheritedSocket, listenAt } from '../../vhost-user/server.js';
import type { WorkerPort } from '../../vhost-user/worker-runtime.js';
import { BUSY_POLL_FLAG, SEALED_MEMORY_FLAG, parseBusyPollUs, runBackendProgram, trapStopSignals } from '../backend-lifecycle.js';
import { createLogger } from '../log.js';
import { UsageError, errorText } from '../errors.js';

interface CommonOptions {
  socketPath?: string;
  fd?: string;
  printCapabilities?: boolean;
  verbose?: boolean;
  busyPollUs?: string;
  requireSealedMemory?: boolean;
  [k: string]: unknown;
}

export function registerServeCommand(program: Command): void {
  const serve = program.command('serve').description('serve a device to a vhost-user front-end (QEMU -chardev socket + vhost-user-*-pci)');
  for (const kind of DEVICE_KINDS) {
    const cmd = serve
      .command(kind.name)
      .description(kind.description)
      .option('--socket-path <path>', 'listen on this Unix socket (created mode 0600, removed on exit)')
      .option('--fd <n>', 'serve an already-listening socket passed as file descriptor N')
      .option('--print-capabilities', 'print the vhost-user capabilities as JSON and exit')
      .option('-v, --verbose', 'log every connection event at debug level')
      .option(...BUSY_POLL_FLAG)
      .option(...SEALED_MEMORY_FLAG);
    for (const f of cliFlags(kind.options)) cmd.option(f.flags, f.description);
    cmd.action(async (opts: CommonOptions) => {
      process.exitCode = await serveDevice(kind, opts);
    });
  }
}

/** What `--print-capabilities` prints: `{"type": ..., "features": [...]}` (vhost-user.rst). */
export function capabilities(kind: DeviceKind): { type: string; features: string[] } {
  return { type: kind.vhostUserType, features: [...kind.capabilities] };
}

async function serveDevice(kind: DeviceKind, opts: CommonOptions): Promise<number> {
  if (opts.printCapabilities) {
    process.stdout.write(`${JSON.stringify(capabilities(kind))}\n`);
    return 0;
  }
  const { socketPath, fd: fdText, printCapabilities: _p, verbose: _v, busyPollUs: pollText, requireSealedMemory, ...raw } = opts;
  const busyPollUs = parseBusyPollUs(`serve ${kind.name}`, pollText);
  // Commander leaves an option that was not given undefined, and sets --no-x flags to their
  // default true; the kind's schema supplies defaults itself, so only given values are kept.
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  let split: ReturnType<NonNullable<DeviceKind['splitPorts']>>;
  try {
    const values = coerceCliValues(kind.options, given);
    split = kind.splitPorts?.(values) ?? { main: values, extra: [] };
    // Checked now, so a typo fails before any socket is created; the worker parses them again.
    if (split.main !== undefined) split = { ...split, main: parseOptions(kind, split.main, 'cli') };
    split = { ...split, extra: split.extra.map((x) => ({ ...x, options: parseOptions(kind, x.options, 'cli') })) };
  } catch (e: unknown) {
    throw new UsageError(`serve ${kind.name}: ${errorText(e)}`);
  }
  const hasMain = socketPath !== undefined || fdText !== undefined;
  if ((socketPath !== undefined && fdText !== undefined) || (!hasMain && split.main !== undefined)) {
    throw new UsageError(`serve ${kind.name}: give exactly one of --socket-path PATH or --fd N`);
  }
  if (hasMain && split.main === undefined) {
    throw new UsageError(`serve ${kind.name}: --socket-path/--fd serve the main device, but its options are missing (see --help)`);
  }
  const log = createLogger(`avp-${kind.name}`, opts.verbose ? 'debug' : undefined);
  // Before the first socket file exists: a stop signal from now on ends in a clean exit.
  const trap = trapStopSignals(log);
  /** Listening fds we own, with the socket file to remove on exit (undefined for an inherited fd). */
  const owned: Array<{ fd: number; path: string | undefined }> = [];
  const cleanup = () => {
    for (const { fd, path } of owned) {
      closeQuiet(fd);
      if (path === undefined) continue;
      try {
        unlinkSync(path);
      } catch {
        // Already gone: nothing to clean.
      }
    }
  };
  const ports: WorkerPort[] = [];
  try {
    if (hasMain && split.main !== undefined) {
      const fd = socketPath !== undefined ? listenAt(socketPath) : checkInheritedSocket(Number(fdText));
      owned.push({ fd, path: socketPath });
      ports.push({ name: kind.name, listenFd: fd, device: { kind: kind.name, options: split.main } });
    }
    for (const x of split.extra) {
      const fd = listenAt(x.socketPath);
      owned.push({ fd, path: x.socketPath });
      ports.push({ name: x.name, listenFd: fd, device: { kind: kind.name, options: x.options } });
    }
  } catch (e: unknown) {
    cleanup();
    trap.release();
    throw new UsageError(`serve ${kind.name}: ${errorText(e)}`);
  }
  const where = [...(hasMain ? [socketPath ?? `fd ${fdText}`] : []), ...split.extra.map((x) => x.socketPath)];
  return runBackendProgram({
    trap,
    name: `serve ${kind.name}`,
    ports,
    log,
    cleanup,
    servingMessage: `serving ${kind.name} on ${where.join(', ')}`,
    tuning: { busyPollUs, requireSealedMemory: requireSealedMemory === true },
    onUsr1: (thread) => void thread.metrics().then((m) => log.info({ metrics: ports.length > 1 ? m : m[kind.name] }, 'metrics')),
  });
}
