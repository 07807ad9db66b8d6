// SPDX-License-Identifier: Apache-2.0
/**
 * Building a virtio-blk device from plain options (what the device registry receives from the CLI
 * or a platform manifest, after it crossed into the back-end's worker thread).
 *
 * Owns: the option names and their checks: `image` (required; `blkFile` is accepted as its alias,
 * the capability name vhost-user.rst defines for block back-ends), `readOnly`, `serial`,
 * `numQueues`, `queueSize`, `blkSize`, `writethrough`, `discard` (commander spells them
 * `--blk-file`, `--read-only`, `--serial`, `--num-queues`, `--queue-size`, `--blk-size`,
 * `--writethrough`, `--no-discard`). `blk-file` and `read-only` are the capability names
 * vhost-user.rst defines for block back-ends.
 * Does not own: command-line parsing (cli), fallocate (sys; injected), device semantics.
 */
import { type FallocateFn, FileBlockHost } from './host.js';
import { BlkDevice, type BlkOptions } from './model.js';

/** Capability names for `--print-capabilities` (vhost-user.rst "Backend program conventions", block). */
export const BLK_CAPABILITIES = ['blk-file', 'read-only'] as const;

function flagName(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** An optional integer option given as a number or a decimal string. @throws RangeError */
function intOpt(options: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new RangeError(`${flagName(name)} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return n;
}

/** An optional boolean flag. @throws RangeError */
function boolOpt(options: Record<string, unknown>, name: string): boolean | undefined {
  const v = options[name];
  if (v === undefined || typeof v === 'boolean') return v;
  throw new RangeError(`${flagName(name)} is a flag (true or false), got ${String(v)}`);
}

/**
 * Opens the image and builds the device. The image is closed again if the device refuses the
 * options.
 * @throws RangeError naming the bad option; node:fs errors (ENOENT, EACCES, ...) for the image.
 */
export function createBlkFromOptions(options: Record<string, unknown>, fallocate?: FallocateFn): BlkDevice {
  const file = options['image'] ?? options['blkFile'];
  if (typeof file !== 'string' || file === '') throw new RangeError('--image FILE is required: the raw image to serve');
  const serial = options['serial'];
  if (serial !== undefined && typeof serial !== 'string') throw new RangeError(`--serial must be a string, got ${String(serial)}`);
  const readOnly = boolOpt(options, 'readOnly') ?? false;
  const writethrough = boolOpt(options, 'writethrough') ?? false;
  const discard = boolOpt(options, 'discard');
  const numQueues = intOpt(options, 'numQueues', 1, 0xffff);
  const queueSize = intOpt(options, 'queueSize', 1, 32768);
  const blkSize = intOpt(options, 'blkSize', 512, 65536);
  const host = new FileBlockHost(file, { readOnly, ...(fallocate === undefined ? {} : { fallocate }) });
  try {
    const opts: BlkOptions = { host, readOnly, writeback: !writethrough };
    if (serial !== undefined) opts.serial = serial;
    if (numQueues !== undefined) opts.numQueues = numQueues;
    if (queueSize !== undefined) opts.queueMaxSize = queueSize;
    if (blkSize !== undefined) opts.blkSize = blkSize;
    if (discard === false) {
      opts.discard = false;
      opts.writeZeroes = false;
    }
    return new BlkDevice(opts);
  } catch (e: unknown) {
    host.close();
    throw e;
  }
}
