// SPDX-License-Identifier: Apache-2.0
/**
 * `avp image build [--out DIR] [--force]`: builds the guest kernel + initramfs and prints where
 * they are. Argument parsing and output only; the build is `buildGuestImage` (platform/image).
 *
 * Output: progress lines on stderr while building, then on stdout one line per file
 * (`kernel <path> <size>`, `initramfs <path> <size>`) and a summary line.
 */
import { CommanderError, type Command } from 'commander';
import { AvpError } from '../../errors.js';
import { buildGuestImage } from '../../platform/image/index.js';

interface BuildOptions {
  out?: string;
  force?: boolean;
}

export function registerImageCommand(program: Command): void {
  const image = program.command('image').description('the guest image AVP boots under QEMU (Debian kernel + busybox initramfs)');
  image
    .command('build')
    .description('build the guest kernel and initramfs from Debian packages (cached; a cached image returns at once)')
    .option('--out <dir>', 'also copy vmlinuz and initramfs.cpio.gz into this folder')
    .option('--force', 'rebuild even when the cache has this image')
    .action(async (opts: BuildOptions) => {
      const started = Date.now();
      try {
        const img = await buildGuestImage({
          ...(opts.out === undefined ? {} : { outDir: opts.out }),
          force: opts.force === true,
          onProgress: (m) => process.stderr.write(`avp image: ${m}\n`),
        });
        process.stdout.write(
          `kernel     ${img.kernel} ${formatSize(img.kernelBytes)}\n` +
            `initramfs  ${img.initramfs} ${formatSize(img.initramfsBytes)}\n` +
            `release ${img.kernelVersion}, ${img.modules.length} modules, command line up to ${img.cmdlineLimit} bytes, ` +
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
