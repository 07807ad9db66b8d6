// SPDX-License-Identifier: Apache-2.0
/**
 * `avp validate FILE`: checks a platform manifest (YAML or JSON) and prints every problem as
 * `FILE:LINE:COL: path: message`, one per line on stderr, exit status 1; or
 * `FILE: valid (N VMs, M devices)` on stdout, exit status 0. The checks are the platform layer's
 * (platform/manifest); this file only prints. When QEMU is installed, a device it cannot attach
 * (say vhost-user-input on QEMU 7.2 under TCG) is an error too; without QEMU that check is
 * skipped with a note on stderr.
 */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { QemuNotInstalledError, formatManifestIssue, type ManifestIssue } from '../../platform/errors.js';
import { parseManifest, readManifestText } from '../../platform/manifest/index.js';
import { findQemu } from '../../platform/qemu.js';
import { probeQemu, type QemuCaps } from '../../platform/qemu-caps.js';
import { declaredAccel } from '../../platform/run/index.js';

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check a platform manifest: schema, names, switches, CIDs, MACs, files; each error with its line and column')
    .argument('<file>', 'the manifest (YAML or JSON)')
    .action(async (file: string) => {
      process.exitCode = await validate(file);
    });
}

async function validate(file: string): Promise<number> {
  const text = await readManifestText(file);
  let caps: QemuCaps | undefined;
  try {
    caps = probeQemu(findQemu());
  } catch (e: unknown) {
    if (!(e instanceof QemuNotInstalledError)) throw e;
    process.stderr.write(`${file}: note: ${e.message}; not checking that QEMU can attach the devices\n`);
  }
  const result = parseManifest(text, { baseDir: dirname(resolve(file)), ...(caps === undefined ? {} : { frontends: { caps, accel: declaredAccel() } }) });
  if (result.model === undefined) {
    printManifestIssues(file, result.issues);
    return 1;
  }
  const vms = result.model.vms.length;
  const devices = result.model.vms.reduce((n, vm) => n + vm.devices.length, 0);
  process.stdout.write(`${file}: valid (${plural(vms, 'VM')}, ${plural(devices, 'device')})\n`);
  return 0;
}

/** Prints manifest problems, one `FILE:LINE:COL: path: message` line each, on stderr. */
export function printManifestIssues(file: string, issues: readonly ManifestIssue[]): void {
  process.stderr.write(issues.map((i) => `${formatManifestIssue(file, i)}\n`).join(''));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
