// SPDX-License-Identifier: Apache-2.0
/**
 * The field schemas every part of the manifest uses the same way (schema.ts, buses.ts): names,
 * bounded integers, paths, interface names, each with the one error text users see for it.
 *
 * Owns: those field builders and their patterns. Does not own: which keys exist (schema.ts,
 * buses.ts) or checks across entries (checks.ts).
 */
import { z } from 'zod';

/** VM, device, switch, bus and platform names: they become file and socket names in the run directory. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const NAME_EXPECTED = 'expected a name of 1-32 letters, digits, _ or -, starting with a letter or digit';

/** A Linux interface name: at most IFNAMSIZ - 1 = 15 bytes, no '/' or white space. */
export const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export const name = (description: string) => z.string({ error: NAME_EXPECTED }).regex(NAME_RE, { error: NAME_EXPECTED }).meta({ description });

export function int(min: number, max: number, description: string) {
  const expected = `expected an integer from ${min} to ${max}`;
  return z.number({ error: expected }).int({ error: expected }).min(min, { error: expected }).max(max, { error: expected }).meta({ description });
}

export const path = (description: string) =>
  z
    .string({ error: 'expected a path (a string)' })
    .min(1, { error: 'expected a path, got an empty string' })
    .regex(/^[^\n\r\0]*$/, { error: 'expected a path without line breaks or NUL' })
    .meta({ description });
