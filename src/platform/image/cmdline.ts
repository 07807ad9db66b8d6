// SPDX-License-Identifier: Apache-2.0
/**
 * The guest kernel command line: the parameters every AVP guest boots with, the two ways to hand
 * the image's `/init` a test (`avp.script=` and `avp.cmd=`), and the length limit.
 *
 * Owns: encoding those parameters and checking the length. Does not own: how `/init` decodes them
 * (init.ts, `avp-arg`) nor the QEMU argv (qemu.ts).
 *
 * Length limit: on x86 the kernel copies at most COMMAND_LINE_SIZE - 1 = 2047 bytes (the bzImage
 * header's `cmdline_size` field says so; boot protocol >= 2.06). QEMU 7.2 does not check it, and
 * the guest then hangs silently before the console starts (measured: 2047 boots, 2048 hangs).
 * So a base64 script fits in about 1,400 bytes of shell; larger tests belong in the image
 * (`buildGuestImage({ script })`).
 */
import { GuestCmdlineTooLongError, VmSpecError } from '../errors.js';

/** x86 COMMAND_LINE_SIZE (2048) less its terminating NUL. */
export const X86_CMDLINE_MAX_BYTES = 2047;

/**
 * Parameters every guest gets: the console on the first serial port (QEMU's stdio), a panic
 * that reboots at once (with QEMU's -no-reboot, that ends QEMU), and a quiet kernel so that its
 * messages do not interleave with the test's (append `loglevel=7` to see them again).
 */
export const BASE_KERNEL_PARAMS: readonly string[] = ['console=ttyS0', 'panic=-1', 'quiet'];

/** `avp.script=<base64>`: `/init` decodes it into a file and runs it with sh. */
export function scriptParam(script: string): string {
  return `avp.script=${Buffer.from(script, 'utf8').toString('base64')}`;
}

/**
 * `avp.cmd="<command>"`: one short shell command, run with sh. Double quotes and line breaks
 * cannot be carried (the kernel's quoting has no escape), so they are refused.
 */
export function cmdParam(command: string): string {
  if (command === '' || /["\n\r\0]/.test(command)) {
    throw new VmSpecError('avp.cmd', 'must be a non-empty command without double quotes or line breaks', command);
  }
  return `avp.cmd="${command}"`;
}

/**
 * `avp.watchdog=<seconds>`: `/init` starts busybox `watchdog` on /dev/watchdog with that timeout,
 * writing every third of it, before the test runs (the i6300esb driver must have probed).
 */
export function watchdogParam(timeoutSeconds: number): string {
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 2) throw new VmSpecError('avp.watchdog', 'must be a whole number of seconds, at least 2', timeoutSeconds);
  return `avp.watchdog=${timeoutSeconds}`;
}

/** Joins kernel parameters into the command line, after the base ones. */
export function kernelCmdline(extra: readonly string[] = [], base: readonly string[] = BASE_KERNEL_PARAMS): string {
  return [...base, ...extra].join(' ');
}

/** Throws GuestCmdlineTooLongError when `cmdline` does not fit `limit` bytes. */
export function checkCmdlineLength(cmdline: string, limit = X86_CMDLINE_MAX_BYTES): void {
  const length = Buffer.byteLength(cmdline, 'utf8');
  if (length > limit) {
    throw new GuestCmdlineTooLongError(length, limit, 'bake a long test script into the image with buildGuestImage({ script }) instead of avp.script=');
  }
}

/**
 * Reads the command-line limit from a bzImage's setup header (Documentation/arch/x86/boot.rst):
 * `cmdline_size` at 0x238 exists from protocol 2.06 (version at 0x206); older kernels take 255.
 * Returns undefined when `image` is not a bzImage.
 */
export function bzImageCmdlineLimit(image: Uint8Array): number | undefined {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.byteLength < 0x23c) return undefined;
  const magic = String.fromCharCode(...image.subarray(0x202, 0x206));
  if (magic !== 'HdrS') return undefined;
  const version = view.getUint16(0x206, true);
  return version >= 0x206 ? view.getUint32(0x238, true) : 255;
}
