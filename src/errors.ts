// SPDX-License-Identifier: Apache-2.0
/**
 * The one base class of every AVP error.
 *
 * Owns: the `code` contract. Every layer's `errors.ts` derives from `AvpError`; callers match on
 * the stable string `code`, never on the message or on `instanceof` across package copies.
 * Does not own: any layer's specific failures.
 */

export abstract class AvpError extends Error {
  /** Stable, machine-matchable identifier such as `GUEST_MEMORY_OUT_OF_RANGE`. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True when `e` is an AVP error with the given code. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof Error && (e as Error & { code?: unknown }).code === code;
}

/** Formats a 64-bit quantity as 0x-prefixed hex for messages. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

/** The message of an error (or the value thrown, as text), for one-line reports. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
