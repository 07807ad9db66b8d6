// SPDX-License-Identifier: Apache-2.0
/**
 * `avp balloon VM [SIZE] [--run-dir DIR]`: reclaim memory from a VM of a running platform (`avp
 * run`) through its virtio-balloon device (manifest `balloon:`), or give it back; without SIZE,
 * print the guest's size now. Talks to the run's control socket (method `balloon`), which asks
 * QEMU over QMP. SIZE is the memory the guest keeps: MiB as a number, or with a unit (192M, 1G).
 * The guest moves towards the target over a few seconds; run it again to see where it is.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatBytes, memoryMiB } from '../../platform/manifest/units.js';
import { ControlClient } from '../../platform/run/index.js';
import { UsageError } from '../errors.js';
import { newestLiveRun } from './ui.js';

export function registerBalloonCommand(program: Command): void {
  program
    .command('balloon')
    .description("set or show how much memory a VM of a running platform keeps (its balloon: in the manifest)")
    .argument('<vm>', 'the VM, by its manifest name')
    .argument('[size]', 'the memory the guest keeps: MiB, or with a unit (192M, 1G); without it, show the size now')
    .option('--run-dir <dir>', "the run's directory (default: the newest running one under .avp/runs)")
    .action(async (vm: string, size: string | undefined, opts: { runDir?: string }) => {
      process.exitCode = await balloon(vm, size, opts);
    });
}

/** `size` as bytes: MiB as a number, or a size with a unit in whole MiB. @throws UsageError */
export function balloonTargetBytes(size: string): number {
  const mib = memoryMiB(/^\d+$/.test(size) ? Number(size) : size);
  if (mib === undefined || mib <= 0) throw new UsageError(`balloon: SIZE must be MiB as a whole number or a size with a unit in whole MiB (192M, 1G); got ${JSON.stringify(size)}`);
  return mib * 2 ** 20;
}

async function balloon(vm: string, size: string | undefined, opts: { runDir?: string }): Promise<number> {
  const target = size === undefined ? undefined : balloonTargetBytes(size);
  const dir = opts.runDir === undefined ? await newestLiveRun(resolve('.avp', 'runs')) : resolve(opts.runDir);
  const client = await ControlClient.connect(join(dir, 'control.sock'));
  try {
    const info = await client.balloon(vm, target);
    const set = info.target === undefined ? '' : `target ${formatBytes(info.target)}, `;
    process.stdout.write(`${vm}: ${set}guest has ${formatBytes(info.actual)} of ${formatBytes(info.memory)}\n`);
    return 0;
  } finally {
    client.close();
  }
}
