// SPDX-License-Identifier: Apache-2.0
/**
 * `avp qemu-args FILE [--vm NAME] [--run-dir DIR] [--json]`: prints the QEMU command line of each
 * VM of a platform manifest, exactly as `avp run` would start it with that run directory (socket
 * paths are `<runDir>/<vm>/<device>.sock`). The argv comes from the platform layer's pure
 * planPlatform/qemuArgs; this file only prints.
 *
 * Default run directory: `.avp/runs/<platform>` (a run's own directory has a time in its name).
 * A VM booting the built-in image needs the image; it is built (or taken from the cache) first.
 */
import type { Command } from 'commander';
import { ManifestInvalidError } from '../../platform/errors.js';
import { commandLine } from '../../platform/manifest/index.js';
import { QEMU_BINARY } from '../../platform/qemu.js';
import { planManifestFile } from '../../platform/run/index.js';
import { UsageError } from '../errors.js';
import { printManifestIssues } from './validate.js';

interface QemuArgsOptions {
  vm?: string;
  runDir?: string;
  json?: boolean;
}

export function registerQemuArgsCommand(program: Command): void {
  program
    .command('qemu-args')
    .description("print each VM's QEMU command line for a platform manifest (as avp run starts it)")
    .argument('<file>', 'the manifest (YAML or JSON)')
    .option('--vm <name>', 'only this VM, and without the "# name" line')
    .option('--run-dir <dir>', 'run directory the socket paths are in (default .avp/runs/<platform>)')
    .option('--json', 'print {"<vm>": [program, args...]} instead')
    .action(async (file: string, opts: QemuArgsOptions) => {
      process.exitCode = await qemuArgsCommand(file, opts);
    });
}

async function qemuArgsCommand(file: string, opts: QemuArgsOptions): Promise<number> {
  let plan;
  try {
    ({ plan } = await planManifestFile(file, {
      // Not timestamped: the same manifest prints the same command lines.
      runDir: opts.runDir ?? ((platform) => `.avp/runs/${platform}`),
      onProgress: (m) => process.stderr.write(`avp qemu-args: image: ${m}\n`),
    }));
  } catch (e: unknown) {
    if (!(e instanceof ManifestInvalidError)) throw e;
    printManifestIssues(file, e.issues);
    return 1;
  }
  const vms = opts.vm === undefined ? plan.vms : plan.vms.filter((v) => v.name === opts.vm);
  if (vms.length === 0) throw new UsageError(`qemu-args: no VM named '${opts.vm ?? ''}'; VMs: ${plan.vms.map((v) => v.name).join(', ')}`);
  // The program as avp run would start it, without requiring QEMU to be installed to print it.
  const binary = process.env['AVP_QEMU'] ?? QEMU_BINARY;
  if (opts.json === true) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(vms.map((v) => [v.name, [binary, ...v.argv]])), null, 2)}\n`);
    return 0;
  }
  const blocks = vms.map((v) => (opts.vm === undefined ? `# ${v.name}\n` : '') + `${commandLine(binary, v.argv)}\n`);
  process.stdout.write(blocks.join(opts.vm === undefined ? '\n' : ''));
  return 0;
}
