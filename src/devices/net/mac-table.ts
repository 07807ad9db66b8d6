// SPDX-License-Identifier: Apache-2.0
/**
 * The switch's forwarding database: which port each unicast MAC address was last seen on, with
 * ageing (IEEE 802.1D learning: an entry not refreshed for `ageingMs` is forgotten, and frames to
 * that address are flooded again until it is re-learned).
 *
 * Owns: learning, lookup with expiry, forgetting a port's entries, and the size cap. A hostile guest
 * can send frames from any number of made-up source addresses, so the table holds at most
 * `maxEntries`; when it is full, expired entries are purged and, if none were, the new address is
 * not learned (counted in `full`; its frames are still forwarded, the replies are flooded).
 * Does not own: which addresses may be learned (the switch skips multicast and zero sources) or
 * the clock (times are passed in, in milliseconds).
 *
 * Addresses are keys of 48 bits packed into a number (exact: below 2^53).
 */
import { NetConfigError } from './errors.js';

/** A 6-byte MAC at `off` in `bytes` as a 48-bit number. */
export function macKey(bytes: Uint8Array, off: number): number {
  // Safe: callers pass offsets with 6 bytes available (frames are at least ETH_HLEN long).
  const hi = (bytes[off]! << 8) | bytes[off + 1]!;
  const lo = ((bytes[off + 2]! << 24) | (bytes[off + 3]! << 16) | (bytes[off + 4]! << 8) | bytes[off + 5]!) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/** `aa:bb:cc:dd:ee:ff` for a key. */
export function macString(key: number): string {
  return key.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** Parses `aa:bb:cc:dd:ee:ff` (case-insensitive) into 6 bytes; undefined when malformed. */
export function parseMac(text: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text)) return undefined;
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

/** True for group (multicast and broadcast) addresses: the I/G bit, bit 0 of the first octet. */
export function isMulticast(bytes: Uint8Array, off: number): boolean {
  return ((bytes[off] ?? 0) & 1) !== 0;
}

export interface MacTableStats {
  /** Entries now (some may be expired and not yet purged). */
  entries: number;
  /** New addresses learned. */
  learned: number;
  /** Known addresses seen on another port than before (a VM moved, or a spoofer). */
  moves: number;
  /** Entries forgotten because they aged out. */
  aged: number;
  /** New addresses not learned because the table was full. */
  full: number;
}

interface Entry {
  port: number;
  seen: number;
}

export class MacTable {
  readonly ageingMs: number;
  readonly maxEntries: number;
  readonly #entries = new Map<number, Entry>();
  #learned = 0;
  #moves = 0;
  #aged = 0;
  #full = 0;

  /** @throws NetConfigError NET_BAD_OPTION for a non-positive ageing time or size. */
  constructor(ageingMs: number, maxEntries: number) {
    if (!(ageingMs > 0)) throw new NetConfigError('NET_BAD_OPTION', `MAC ageing time must be positive, got ${ageingMs}`);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new NetConfigError('NET_BAD_OPTION', `MAC table size must be a positive integer, got ${maxEntries}`);
    this.ageingMs = ageingMs;
    this.maxEntries = maxEntries;
  }

  /** Records that `key` was seen as a source on `port` at `now`. */
  learn(key: number, port: number, now: number): void {
    const e = this.#entries.get(key);
    if (e !== undefined) {
      if (e.port !== port) this.#moves++;
      e.port = port;
      e.seen = now;
      return;
    }
    if (this.#entries.size >= this.maxEntries && this.purge(now) === 0) {
      this.#full++;
      return;
    }
    this.#entries.set(key, { port, seen: now });
    this.#learned++;
  }

  /** The port `key` was learned on, or undefined when unknown or aged out (then it is forgotten). */
  lookup(key: number, now: number): number | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (now - e.seen > this.ageingMs) {
      this.#entries.delete(key);
      this.#aged++;
      return undefined;
    }
    return e.port;
  }

  /** Forgets every entry older than the ageing time; returns how many. */
  purge(now: number): number {
    let n = 0;
    for (const [key, e] of this.#entries) {
      if (now - e.seen > this.ageingMs) {
        this.#entries.delete(key);
        n++;
      }
    }
    this.#aged += n;
    return n;
  }

  /** Forgets every entry of `port` (its VM went away: the addresses may reappear elsewhere). */
  forgetPort(port: number): void {
    for (const [key, e] of this.#entries) if (e.port === port) this.#entries.delete(key);
  }

  /** Entries as `{ mac, port, ageMs }`, for stats and tests. */
  dump(now: number): Array<{ mac: string; port: number; ageMs: number }> {
    return [...this.#entries].map(([key, e]) => ({ mac: macString(key), port: e.port, ageMs: now - e.seen }));
  }

  stats(): MacTableStats {
    return { entries: this.#entries.size, learned: this.#learned, moves: this.#moves, aged: this.#aged, full: this.#full };
  }
}
