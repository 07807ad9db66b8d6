// SPDX-License-Identifier: Apache-2.0
/**
 * `avp doctor [--json]`: what this host can run — QEMU and its vhost-user front-ends, KVM or TCG,
 * qemu-storage-daemon, the cached guest image and its virtio drivers, each AVPS device's two ends,
 * and the missing pieces with the command that fixes each. Exit status 0 whatever is missing (it
 * is a report); the gathering is platform/host-report.ts, this file only prints.
 */
import type { Command } from 'commander';
import { hostReport, type HostReport } from '../../platform/host-report.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('report what this host can run: QEMU and its vhost-user front-ends, KVM or TCG, the guest kernel and drivers, and what is missing')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const report = await hostReport();
      process.stdout.write(opts.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

/** The human-readable report. */
export function formatReport(r: HostReport): string {
  const out: string[] = [];
  if (r.qemu.installed) {
    out.push(`qemu      ${r.qemu.versionText} (${r.qemu.binary})`);
    out.push(`          vhost-user front-ends: ${r.qemu.vhostUserFrontends.join(' ')}`);
  } else out.push(`qemu      not usable: ${r.qemu.error}`);
  out.push(`storage   qemu-storage-daemon ${r.storageDaemon.installed ? (r.storageDaemon.version ?? '(version unknown)') : 'not installed'}`);
  out.push(`accel     ${r.accel.accel}: ${r.accel.note}`);
  if (r.image.found) {
    out.push(`image     Linux ${r.image.kernelVersion} (${r.image.kernelPackage}), ${r.image.modules.length} modules${r.image.extraModules.length > 0 ? `, built: ${r.image.extraModules.join(' ')}` : ''}`);
    out.push(`          ${r.image.dir}`);
  } else out.push(`image     none cached in ${r.image.looked}`);
  out.push('', 'device    qemu front-end          attach  guest driver');
  for (const d of r.devices) {
    const attach = d.frontend.ok ? 'yes' : 'no';
    out.push(`${d.device.padEnd(10)}${(d.qemuDevice ?? '-').padEnd(24)}${attach.padEnd(8)}${d.guestDriver}${d.frontend.ok || d.qemuDevice === null ? '' : `  (${d.frontend.reason ?? ''})`}`);
  }
  out.push('');
  if (r.missing.length === 0) out.push('nothing missing');
  else {
    out.push('missing:');
    for (const m of r.missing) out.push(`  ${m.what}\n    fix: ${m.fix}`);
  }
  return `${out.join('\n')}\n`;
}
