// SPDX-License-Identifier: Apache-2.0
/**
 * Runs conformance checks against a back-end and turns what happened into verdicts.
 *
 * Owns: one fresh connection per check (back-ends accept sequential connections); closing every
 * connection a check opened; the stray-write scan after each check (any write outside
 * device-writable buffers fails the check); turning exceptions into verdicts (a back-end that went
 * silent is FAIL when a fresh connection still works, WEDGED when not, CRASH when it no longer
 * accepts connections or its process died); noticing a crash right after a check and charging it
 * to that check; restarting a back-end it started itself (`--exec`) after a crash; the report.
 * Does not own: the checks, the transport (driver.ts), output formats (report.ts).
 *
 * Checks block the thread while they drive the back-end (the front-end is synchronous); between
 * checks the runner yields to the event loop, so a spawned back-end's exit is seen.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { FAILING_VERDICTS, VERDICTS, fail, type CheckInfo, type CheckOutcome, type DeviceConformance, type Verdict } from '../device/conformance.js';
import { closeQuiet, connectUnix } from '../sys/index.js';
import { describeExit, type SpawnedBackend } from '../vhost-user/spawn.js';
import { type Check, type CheckContext, errorText, hex, isBackendSilence, isBadUsed, isConnectRefused, probeOnce } from './check.js';
import { VhostUserDriver } from './driver.js';

/** The back-end under test, as the runner sees it. */
export interface Target {
  readonly socketPath: string;
  /** For reports: the command or the socket path. */
  readonly description: string;
  /** Whether the back-end still runs: exact for a spawned process, a connection attempt otherwise. */
  alive(): boolean;
  /** True when the runner can start it again after a crash. */
  readonly restartable: boolean;
  restart(): Promise<void>;
  /** What is known about a crash (exit status, last output); waits a little for the exit status. */
  crashInfo(): Promise<string>;
  /**
   * Whether the back-end dies within `ms` (a process can take a while to die: a SIGBUS with a
   * core dump keeps the listening socket open, accepting and dropping connections, until the dump
   * is written). Absent when the runner cannot watch the process.
   */
  diesWithin?(ms: number): Promise<boolean>;
}

/** How long a back-end that looks wedged gets to turn out to be dying. */
const DYING_GRACE_MS = 10_000;

/** A back-end someone else runs, reached through its socket. */
export function socketTarget(socketPath: string): Target {
  return {
    socketPath,
    description: socketPath,
    alive() {
      try {
        closeQuiet(connectUnix(socketPath));
        return true;
      } catch (e: unknown) {
        if (isConnectRefused(e)) return false;
        throw e;
      }
    },
    restartable: false,
    restart: () => Promise.reject(new Error(`cannot restart a back-end started by someone else (${socketPath})`)),
    crashInfo: () => Promise.resolve(`the back-end no longer accepts connections on ${socketPath}`),
  };
}

/** A back-end the front-end started itself. */
export function spawnedTarget(backend: SpawnedBackend): Target {
  return {
    get socketPath() {
      return backend.socketPath;
    },
    description: backend.command,
    alive: () => backend.isAlive(),
    async diesWithin(ms) {
      return !backend.isAlive() || (await backend.waitExit(ms)) !== undefined;
    },
    restartable: true,
    restart: () => backend.restart(),
    async crashInfo() {
      // The process is gone (it was seen synchronously); Node reports its status shortly after.
      const exit = backend.exitInfo ?? (await backend.waitExit(5000));
      const tail = backend.logTail(600).split('\n').slice(-4).join(' | ');
      return `the back-end process died (${exit === undefined ? 'exit status not yet known' : describeExit(exit)})${tail === '' ? '' : `; last output: ${tail}`}`;
    },
  };
}

/** One check's result. */
export interface CheckResult extends CheckInfo {
  readonly verdict: Verdict;
  readonly details: string;
  readonly durationMs: number;
}

export interface ConformanceReport {
  readonly device: string;
  readonly target: string;
  readonly startedAt: string;
  readonly durationMs: number;
  /** What the back-end offered (null when it could not be asked). */
  readonly offered: { readonly features: string; readonly protocolFeatures: string | null } | null;
  readonly results: readonly CheckResult[];
  readonly counts: Readonly<Record<Verdict, number>>;
  /** PASS + REJECT + SKIP. */
  readonly passed: number;
  /** FAIL + WEDGED + CRASH. */
  readonly failed: number;
}

export type ProgressEvent = { kind: 'start'; index: number; total: number; check: Check } | { kind: 'done'; index: number; total: number; result: CheckResult };

export interface RunOptions {
  readonly device: DeviceConformance;
  readonly checks: readonly Check[];
  readonly target: Target;
  /** Deadline for one reply or completion (default 5 s). */
  readonly timeoutMs?: number;
  readonly onProgress?: (event: ProgressEvent) => void;
}

/** Counts verdicts and the passed/failed totals. */
export function summarize(results: readonly CheckResult[]): { counts: Record<Verdict, number>; passed: number; failed: number } {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  // The cast above is safe: every Verdict key is created with 0.
  for (const r of results) counts[r.verdict]++;
  const failed = results.filter((r) => FAILING_VERDICTS.has(r.verdict)).length;
  return { counts, passed: results.length - failed, failed };
}

function result(check: CheckInfo, outcome: CheckOutcome, durationMs: number): CheckResult {
  return { id: check.id, title: check.title, source: check.source, level: check.level, group: check.group, devices: check.devices, verdict: outcome.verdict, details: outcome.details, durationMs };
}

export async function runConformance(opts: RunOptions): Promise<ConformanceReport> {
  const { device, target } = opts;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const startedAt = new Date();
  const results: CheckResult[] = [];
  const offered = readOffer(target, device, timeoutMs);
  let gone: string | undefined;
  const total = opts.checks.length;
  for (const [index, check] of opts.checks.entries()) {
    await yieldToEventLoop();
    opts.onProgress?.({ kind: 'start', index, total, check });
    const began = performance.now();
    let outcome: CheckOutcome;
    if (gone !== undefined) {
      outcome = { verdict: 'CRASH', details: `not run: ${gone}` };
    } else if (!target.alive()) {
      // It died after the previous check had finished: charge that check, then go on.
      const info = await target.crashInfo();
      const prev = results[results.length - 1];
      if (prev !== undefined && !FAILING_VERDICTS.has(prev.verdict)) results[results.length - 1] = { ...prev, verdict: 'CRASH', details: `${info} (right after this check: ${prev.details})` };
      gone = await restartOrGiveUp(target, info);
      outcome = gone === undefined ? runOne(check, device, target, timeoutMs) : { verdict: 'CRASH', details: `not run: ${gone}` };
    } else {
      outcome = runOne(check, device, target, timeoutMs);
    }
    await yieldToEventLoop();
    // A back-end that stopped serving may be dying rather than wedged (CI saw qemu-storage-daemon's
    // SIGBUS judged WEDGED on a loaded machine): give its process time to end.
    if (gone === undefined && outcome.verdict === 'WEDGED' && target.diesWithin !== undefined && (await target.diesWithin(DYING_GRACE_MS))) {
      outcome = { verdict: 'CRASH', details: `it stopped serving and then died (${outcome.details})` };
    }
    if (gone === undefined && outcome.verdict !== 'CRASH' && !target.alive()) outcome = { verdict: 'CRASH', details: `during this check (${outcome.verdict}: ${outcome.details})` };
    if (gone === undefined && outcome.verdict === 'CRASH') {
      const info = await target.crashInfo();
      outcome = { verdict: 'CRASH', details: `${info}; ${outcome.details}` };
      gone = await restartOrGiveUp(target, info);
    }
    const r = result(check, outcome, performance.now() - began);
    results.push(r);
    opts.onProgress?.({ kind: 'done', index, total, result: r });
  }
  const { counts, passed, failed } = summarize(results);
  return { device: device.device, target: target.description, startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime(), offered, results, counts, passed, failed };
}

/** Restarts a crashed back-end when possible; returns why the remaining checks cannot run, or undefined. */
async function restartOrGiveUp(target: Target, why: string): Promise<string | undefined> {
  if (!target.restartable) return `the back-end is gone (${why})`;
  try {
    await target.restart();
    return undefined;
  } catch (e: unknown) {
    return `the back-end could not be restarted after a crash: ${errorText(e)}`;
  }
}

function readOffer(target: Target, device: DeviceConformance, timeoutMs: number): ConformanceReport['offered'] {
  try {
    const d = VhostUserDriver.connect(target.socketPath, device, { timeoutMs });
    d.close();
    return { features: hex(d.offered), protocolFeatures: d.offeredProtocol === null ? null : hex(d.offeredProtocol) };
  } catch {
    return null;
  }
}

/** Runs one check with its own connections and judges the leftovers (exceptions, stray writes). */
function runOne(check: Check, device: DeviceConformance, target: Target, timeoutMs: number): CheckOutcome {
  const drivers: VhostUserDriver[] = [];
  const ctx: CheckContext = {
    device,
    timeoutMs,
    connect() {
      const d = VhostUserDriver.connect(target.socketPath, device, { timeoutMs });
      drivers.push(d);
      return d;
    },
  };
  let outcome: CheckOutcome | undefined;
  let thrown: { error: unknown } | undefined;
  try {
    outcome = check.run(ctx);
  } catch (e: unknown) {
    thrown = { error: e };
  }
  // Stray writes first (closing unmaps the memory), then close: back-ends serve one front-end at
  // a time, so the health probe below needs these connections gone.
  let stray: string | null = null;
  for (const d of drivers) {
    stray ??= d.strayWrites();
    d.close();
  }
  if (thrown !== undefined) outcome = classify(thrown.error, device, target, timeoutMs);
  // Safe: exactly one of outcome and thrown is set above.
  const verdict = outcome!;
  if (stray !== null && !FAILING_VERDICTS.has(verdict.verdict)) return fail(`${stray} (the check itself said: ${verdict.verdict} ${verdict.details})`);
  return verdict;
}

/** Turns an exception out of a check into a verdict, looking at the back-end's health. */
function classify(e: unknown, device: DeviceConformance, target: Target, timeoutMs: number): CheckOutcome {
  if (isConnectRefused(e)) return { verdict: 'CRASH', details: errorText(e) };
  if (isBadUsed(e)) return fail(e.message);
  if (!isBackendSilence(e)) return fail(`internal error in the check, an AVP bug rather than the back-end's: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const health = healthProbe(device, target, timeoutMs);
  if (health === null) return fail(errorText(e));
  if (health === 'refused') return { verdict: 'CRASH', details: `${errorText(e)}; then no connection was accepted` };
  return { verdict: 'WEDGED', details: `${errorText(e)}; afterwards a new connection is not served either: ${health}` };
}

/** A fresh connection and one probe request: null when served, 'refused', or what went wrong. */
function healthProbe(device: DeviceConformance, target: Target, timeoutMs: number): string | null {
  let d: VhostUserDriver | undefined;
  try {
    d = VhostUserDriver.connect(target.socketPath, device, { timeoutMs });
    d.start();
    return probeOnce(d);
  } catch (e: unknown) {
    if (isConnectRefused(e)) return 'refused';
    return errorText(e);
  } finally {
    d?.close();
  }
}
