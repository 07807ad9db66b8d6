// SPDX-License-Identifier: Apache-2.0
/**
 * The guest's console protocol: the marker lines the image's `/init` and helpers print, and the
 * patterns the host harness matches them with. Both sides import this file, so they cannot drift.
 *
 * Owns: marker spelling and parsing. Does not own: how lines are read from QEMU (qemu.ts) or
 * what the guest does between markers (init.ts).
 *
 * Patterns are not anchored at the line start on purpose: a kernel message printed to the same
 * serial port can land in front of a marker on one line.
 */

/** Every line the image prints for the host starts with this. */
export const GUEST_MARKER = 'AVP-GUEST:';

/** Printed by `/init` once modules are loaded, just before the test script starts. */
export const READY_LINE = /AVP-GUEST: READY\b/;

/** Printed by `/init` after the test script: `AVP-GUEST: EXIT <status>`. */
export const EXIT_LINE = /AVP-GUEST: EXIT (\d+)\b/;

/** Printed by `/init` for each module that did not load: `AVP-GUEST: insmod <name> failed`. */
export const INSMOD_FAILED_LINE = /AVP-GUEST: insmod (\S+) failed/;

/** Printed by the `avp-kv KEY VALUE` helper: `AVP-GUEST: KV key=value`. */
export const KV_LINE = /AVP-GUEST: KV ([A-Za-z0-9_.-]+)=(.*)$/;

/** Collects `avp-kv` results from console lines; a later value for a key replaces an earlier one. */
export function parseGuestKv(lines: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = KV_LINE.exec(line);
    // Groups 1 and 2 always take part in a match of KV_LINE, so they are defined when m is.
    if (m) out.set(m[1] as string, m[2] as string);
  }
  return out;
}

/** Names of the modules whose insmod failed, from console lines. */
export function failedModules(lines: Iterable<string>): string[] {
  const out: string[] = [];
  for (const line of lines) {
    const m = INSMOD_FAILED_LINE.exec(line);
    if (m) out.push(m[1] as string); // group 1 always takes part in a match
  }
  return out;
}
