// SPDX-License-Identifier: Apache-2.0
/**
 * `avp` command line: argument parsing and output formatting only (DESIGN.md, cli layer).
 * Each subcommand delegates to the layer that owns the work.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerBalloonCommand } from './commands/balloon.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCanbusCommand } from './commands/canbus.js';
import { registerConformanceCommand } from './commands/conformance.js';
import { registerControlCommands } from './commands/control.js';
import { registerBenchNetCommand } from './commands/bench-net.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerImageCommand } from './commands/image.js';
import { registerQemuArgsCommand } from './commands/qemu-args.js';
import { registerRunCommand } from './commands/run.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSwitchCommand } from './commands/switch.js';
import { registerUiCommand } from './commands/ui.js';
import { registerValidateCommand } from './commands/validate.js';
import { isAvpError } from './errors.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('avp')
    .description('Automotive Virtual Platform: AVPS virtio devices over vhost-user, conformance suite, platform runner')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  registerImageCommand(program);
  registerDoctorCommand(program);
  registerServeCommand(program);
  registerSwitchCommand(program);
  registerCanbusCommand(program);
  registerBenchNetCommand(program);
  registerValidateCommand(program);
  registerQemuArgsCommand(program);
  registerRunCommand(program);
  registerUiCommand(program);
  registerControlCommands(program);
  registerBalloonCommand(program);
  registerConformanceCommand(program);
  registerBenchCommand(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e: unknown) {
    if (e instanceof CommanderError) return e.exitCode;
    // Bad input from the user: one line naming what is wrong, no stack trace (DESIGN.md, Errors).
    if (isAvpError(e)) {
      process.stderr.write(`avp: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
