// SPDX-License-Identifier: Apache-2.0
/**
 * `avp image build [--kernel 6.12|6.12-rt|6.1] [--out DIR] [--force]`: builds the guest kernel + initramfs and prints where
 * they are. Argument parsing and output only; the build is `buildGuestImage` (platform/image).
 *
 * Output: progress lines on stderr while building, then on stdout one line per file
 * (`kernel <path> <size>`, `initramfs <path> <size>`) and a summary line.
 */
import { CommanderError, type Command } from 'commander';
import { AvpError } from '../../errors.js';
import { DEFAULT_GUEST_KERNEL, GUEST_KERNELS, buildGuestImage, isGuestKernel } from '../../platform/image/index.js';
import { UsageError } from '../errors.js';

interface BuildOptions {
  out?: string;
  force?: boolean;
  kernel?: string;
}

export function registerImageCommand(program: Command): void {
  const image = program.command('image').description('the guest image AVP boots under QEMU (Debian kernel + busybox initramfs)');
  image
    .command('build')
    .description('build the guest kernel and initramfs from Debian packages (cached; a cached image returns at once)')
    .option('--out <dir>', 'also copy vmlinuz and initramfs.cpio.gz into this folder')
    .option('--force', 'rebuild even when the cache has this image')
    .option('--kernel <series>', `Debian kernel: ${GUEST_KERNELS.join(', ')} (default ${DEFAULT_GUEST_KERNEL})`)
    .action(async (opts: BuildOptions) => {
      const started = Date.now();
      if (opts.kernel !== undefined && !isGuestKernel(opts.kernel)) {
        throw new UsageError(`image build: --kernel must be one of ${GUEST_KERNELS.join(', ')}, got ${JSON.stringify(opts.kernel)}`);
      }
      try {
        const img = await buildGuestImage({
          ...(opts.kernel === undefined ? {} : { kernel: opts.kernel }),
          ...(opts.out === undefined ? {} : { outDir: opts.out }),
          force: opts.force === true,
          onProgress: (m) => process.stderr.write(`avp image: ${m}\n`),
        });
        process.stdout.write(
          `kernel     ${img.kernel} ${formatSize(img.kernelBytes)}\n` +
            `initramfs  ${img.initramfs} ${formatSize(img.initramfsBytes)}\n` +
            `release ${img.kernelVersion}, ${img.modules.length} modules` +
            `${img.extraModules.length > 0 ? ` (built: ${img.extraModules.join(' ')})` : ''}` +
            `${img.absentModules.length > 0 ? `, not in this kernel: ${img.absentModules.join(' ')}` : ''}, command line up to ${img.cmdlineLimit} bytes, ` +
            `${img.fromCache ? 'from cache' : 'built'} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
        );
      } catch (e: unknown) {
        // Expected failures (missing tools, apt errors) get their message and exit 1: no stack,
        // and no usage text either (cmd.error would print it), since the arguments were fine.
        if (!(e instanceof AvpError)) throw e;
        process.stderr.write(`avp image build: ${e.message}\n`);
        throw new CommanderError(1, e.code, e.message);
      }
    });
}

function formatSize(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}
