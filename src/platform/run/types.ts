// SPDX-License-Identifier: Apache-2.0
/**
 * The types of a platform run: its options, its reporter, the snapshot of its VMs and back-ends
 * (what the status board, the control socket and the dashboard show), its events and result.
 * The supervisor (supervisor.ts) carries a run out; these are its vocabulary.
 */
import type { PlatformPlan } from '../manifest/plan.js';
import type { QemuVmOptions, VmExit } from '../qemu.js';
import type { PortState, SharedLoopThread } from './launch.js';
import type { WatchdogAction } from '../manifest/schema.js';

/** Where the supervisor's output goes (the CLI prints it; tests collect it). */
export interface RunReporter {
  /** A console line of a VM whose console is echoed. */
  console(vm: string, line: string): void;
  info(message: string): void;
  error(message: string): void;
}

export interface RunPlatformOptions {
  plan: PlatformPlan;
  reporter: RunReporter;
  /** End with 0 as soon as every VM is ready (`--headless`, `--until`). */
  untilReady?: boolean;
  /** Replaces each VM's ready pattern. */
  until?: RegExp;
  /** End with 1 when the run has not ended by then. */
  timeoutMs?: number;
  /** Aborting stops the run; a signal name as the reason (`'SIGTERM'`) sets the exit status. */
  signal?: AbortSignal;
  /** QEMU binary, environment, kill grace. */
  qemu?: Pick<QemuVmOptions, 'binary' | 'env' | 'killGraceMs'>;
  /** At most `count` restarts of one back-end within `windowMs`; default 5 in 60 s. */
  restartLimit?: { count: number; windowMs: number };
  /**
   * Do not end the run when every VM has ended (without `untilReady`): a dashboard keeps it up so
   * that VMs can be started again; it ends on abort or timeout.
   */
  stayUp?: boolean;
  /** The thread of the `isolation: shared` back-ends; a new one by default (tests pass their own to crash it). */
  sharedLoop?: SharedLoopThread;
}

/** Console lines kept per VM for `consoleTail` (the dashboard's console panel). */
export const CONSOLE_TAIL_LINES = 500;

/** What happens in a run, for live observers (the control socket): console lines and the run's own log. */
export type RunEvent = { type: 'console-line'; vm: string; line: string } | { type: 'log'; level: 'info' | 'error'; message: string; at: number };

export type VmStateName = 'pending' | 'booting' | 'ready' | 'exited' | 'failed' | 'stopped';

export interface VmStatus {
  name: string;
  state: VmStateName;
  pid?: number;
  startedAt?: number;
  readyAt?: number;
  endedAt?: number;
  /** From the built-in image's `AVP-GUEST: EXIT n` line. */
  guestStatus?: number;
  exit?: VmExit;
  /** Why it failed or was stopped. */
  reason?: string;
  /** The back-ends it connects to (BackendStatus ids). */
  backends: string[];
  /** Its watchdog (manifest `watchdog:`): how often it fired in this run, the last time, and what it does. */
  watchdog?: { action: WatchdogAction; timeoutSeconds: number; fired: number; lastFiredAt?: number };
  /** How often avp run started it again (watchdog `restart-vm`). */
  restarts?: number;
}

export type BackendStateName = 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

export interface BackendStatus {
  id: string;
  kind: string;
  isolation: 'shared' | 'thread' | 'process';
  state: BackendStateName;
  pid?: number;
  restarts: number;
  /** The manifest's policy: only `on-failure` back-ends are restarted, by the runner or on request. */
  restart: 'no' | 'on-failure';
  /** The VMs that use it. */
  vms: string[];
  ports: PortState[];
}

export interface RunSnapshot {
  name: string;
  runDir: string;
  /** Date.now() when the run started. */
  startedAt: number;
  vms: VmStatus[];
  backends: BackendStatus[];
  /** The run is ending (or has ended): no more control requests. */
  ending: boolean;
}

export interface RunResult {
  exitCode: number;
  /** One line: why the run ended. */
  reason: string;
  snapshot: RunSnapshot;
}

/** Where a back-end runs, as the status board and the run's messages say it: `process 123`, `shared thread`, `thread`. */
export function describeIsolation(isolation: 'shared' | 'thread' | 'process', pid: number | undefined): string {
  return isolation === 'process' ? `process ${pid ?? '-'}` : isolation === 'shared' ? 'shared thread' : 'thread';
}
