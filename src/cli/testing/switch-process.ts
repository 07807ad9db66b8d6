// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: runs `avp switch` as a real child process, waits for its "serving switch" log
 * line, reads its `--stats-file`, and guarantees the process is stopped when the test ends.
 * The caller owns the socket folder (the switch removes its sockets itself on exit).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnAvp, type AvpProcess } from './backend-process.js';

export type SwitchProcess = AvpProcess;

/** Starts `avp switch ...args` and waits until it serves ($AVP_SWITCH_ECHO echoes its log). */
export function startSwitch(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<SwitchProcess> {
  return spawnAvp(['switch', ...args], /"msg":"serving switch /, { label: 'switch', echoEnv: 'AVP_SWITCH_ECHO', ...opts });
}

/** The parsed `--stats-file`, or undefined while it does not exist yet (or is being replaced). */
export function readStats(file: string): SwitchStats | undefined {
  try {
    // The switch writes this document (statsDocument in commands/switch.ts); the cast names its shape.
    return JSON.parse(readFileSync(file, 'utf8')) as SwitchStats;
  } catch {
    return undefined;
  }
}

/** The parts of the stats document tests look at. */
export interface SwitchStats {
  time: string;
  switch: { clockMs: number | null; macTable: { entries: number }; uplink: { rx: { frames: number }; tx: { frames: number } } | null };
  ports: Record<
    string,
    {
      active: boolean;
      tx: { frames: number; bytes: number };
      rx: { frames: number; bytes: number };
      drops: Record<string, number>;
      shaping: { throttled: number };
      internalErrors: number;
      connected?: boolean;
    }
  >;
}

/**
 * Waits until `pred` holds for the stats file (re-read every 100 ms: the switch rewrites it every
 * --stats-interval) and returns that snapshot; rejects with the last snapshot after `timeoutMs`.
 */
export async function waitStats(file: string, pred: (s: SwitchStats) => boolean, what: string, timeoutMs = 120_000): Promise<SwitchStats> {
  const deadline = Date.now() + timeoutMs;
  let last: SwitchStats | undefined;
  for (;;) {
    last = readStats(file) ?? last;
    if (last !== undefined && pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`stats: ${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await delay(100);
  }
}
