// SPDX-License-Identifier: Apache-2.0
/**
 * Sizes in a platform manifest: VM memory (`256`, `"256M"`, `"1G"`) and blk image sizes (`"64M"`,
 * `"1G"`, `1048576`). Binary multiples throughout: K = 1024, M = 1024², G = 1024³, T = 1024⁴,
 * also written KB/KiB, MB/MiB... as users do.
 *
 * Owns: the size grammar (the schema's regular expressions come from here) and the conversions.
 * Does not own: the limits a VM or a disk must respect (checks.ts).
 */

import { SIZE_WITH_UNIT_RE, sizeStringBytes } from '../../devices/options.js';

export { SIZE_WITH_UNIT_RE, sizeStringBytes };

/**
 * VM memory in MiB: a number is MiB; a string needs a unit and must be a whole number of MiB.
 * Returns undefined for anything else (the schema has already said what is expected).
 */
export function memoryMiB(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  const bytes = sizeStringBytes(value);
  if (bytes === undefined || bytes % 2 ** 20 !== 0) return undefined;
  return bytes / 2 ** 20;
}

/** A blk image size in bytes: a number is bytes; a string needs a unit. */
export function diskBytes(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  return sizeStringBytes(value);
}

/** `268435456` → `256 MiB`, for messages. */
export function formatBytes(bytes: number): string {
  for (const [unit, shift] of [['TiB', 40], ['GiB', 30], ['MiB', 20], ['KiB', 10]] as const) {
    if (bytes >= 2 ** shift && bytes % 2 ** shift === 0) return `${bytes / 2 ** shift} ${unit}`;
  }
  return `${bytes} bytes`;
}
