// SPDX-License-Identifier: Apache-2.0
/**
 * A bus node that replays a candump log (can/candump.ts), as can-utils' `canplayer` does, to feed
 * recorded vehicle signals (speed, gear, lights) to the VMs.
 *
 * Owns: reading and checking the log (a bad line fails the start, naming the file and line; error
 * frames are skipped and counted), the timeline (each frame sent at its time stamp's offset from
 * the first, after `start`; `loop` starts over one mean frame gap after the last frame), and
 * back-pressure (a full transmit buffer holds the replay; late frames go out as soon as there is
 * room, so the timeline slips rather than frames being lost).
 * Does not own: the bus node (server.ts adds it, open from the start), timing on the wire (the bus).
 */
import { readFileSync, statSync } from 'node:fs';
import { type CanFrame, type CanNode, CanFormatError, parseCandumpLine } from '../../can/index.js';
import type { CanReplayConfig } from './config.js';

/** Largest log read into memory. */
export const MAX_REPLAY_BYTES = 64 << 20;

export interface ReplayEntry {
  /** Milliseconds after the first frame of the log. */
  offsetMs: number;
  frame: CanFrame;
}

/**
 * Reads a candump log into entries.
 * @throws CanFormatError CAN_BAD_FRAME naming the file and line; when it has no frame at all, or is too large.
 */
export function loadReplay(cfg: Pick<CanReplayConfig, 'file' | 'ifname'>): { entries: ReplayEntry[]; skipped: number } {
  let text: string;
  try {
    if (statSync(cfg.file).size > MAX_REPLAY_BYTES) throw new Error(`larger than ${MAX_REPLAY_BYTES} bytes`);
    text = readFileSync(cfg.file, 'utf8');
  } catch (e: unknown) {
    throw new CanFormatError('CAN_BAD_FRAME', `replay ${cfg.file}: cannot read it: ${(e as Error).message}`, { cause: e });
  }
  const entries: ReplayEntry[] = [];
  let skipped = 0;
  let first: number | undefined;
  let previous = -Infinity;
  text.split('\n').forEach((line, i) => {
    const r = parseCandumpLine(line);
    if (r.kind === 'blank') return;
    if (r.kind === 'invalid') throw new CanFormatError('CAN_BAD_FRAME', `replay ${cfg.file} line ${i + 1}: ${r.reason}`);
    if (cfg.ifname !== undefined && r.ifname !== cfg.ifname) return;
    if (r.kind === 'error-frame') {
      skipped++;
      return;
    }
    if (r.timeUs < previous) throw new CanFormatError('CAN_BAD_FRAME', `replay ${cfg.file} line ${i + 1}: time stamp goes back in time`);
    previous = r.timeUs;
    first ??= r.timeUs;
    entries.push({ offsetMs: (r.timeUs - first) / 1000, frame: r.frame });
  });
  if (entries.length === 0) throw new CanFormatError('CAN_BAD_FRAME', `replay ${cfg.file}: no frames${cfg.ifname === undefined ? '' : ` of interface ${cfg.ifname}`}`);
  return { entries, skipped };
}

/** The clock the replay runs on (real time in the server, a manual clock in tests). */
export interface ReplayClock {
  now(): number;
  setTimer(ms: number, fn: () => void): { cancel(): void };
}

export interface ReplayCounters {
  sent: number;
  loops: number;
  skipped: number;
  /** Frames the bus refused (bus-off, closed). */
  refused: number;
  started: boolean;
}

/** Plays entries into a node. */
export class Replayer {
  readonly counters: ReplayCounters;
  readonly #entries: readonly ReplayEntry[];
  readonly #loop: boolean;
  readonly #clock: ReplayClock;
  readonly #cycleMs: number;
  #node: CanNode | undefined;
  #t0 = 0;
  #next = 0;
  #timer: { cancel(): void } | undefined;
  #stopped = false;

  constructor(entries: readonly ReplayEntry[], opts: { loop: boolean; clock: ReplayClock; skipped: number }) {
    this.#entries = entries;
    this.#loop = opts.loop;
    this.#clock = opts.clock;
    this.counters = { sent: 0, loops: 0, skipped: opts.skipped, refused: 0, started: false };
    // Safe: loadReplay never returns an empty list.
    const last = entries[entries.length - 1]!.offsetMs;
    const gap = entries.length > 1 ? last / (entries.length - 1) : 100;
    this.#cycleMs = last + Math.max(gap, 1);
  }

  bind(node: CanNode): void {
    this.#node = node;
  }

  /** Starts the timeline now (idempotent). */
  start(): void {
    if (this.counters.started || this.#stopped) return;
    this.counters.started = true;
    this.#t0 = this.#clock.now();
    this.#pump();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** The bus has room again: continue (NodeSink.space). */
  resume(): void {
    if (this.counters.started && this.#timer === undefined) this.#pump();
  }

  /** Sends every entry that is due; arms a timer for the next one. */
  #pump(): void {
    const node = this.#node;
    if (node === undefined || this.#stopped) return;
    this.#timer = undefined;
    const now = this.#clock.now();
    for (;;) {
      if (this.#next >= this.#entries.length) {
        if (!this.#loop) return;
        this.#next = 0;
        this.#t0 += this.#cycleMs;
        this.counters.loops++;
      }
      // Safe: #next is within the entries here.
      const e = this.#entries[this.#next]!;
      const due = this.#t0 + e.offsetMs;
      if (due > now) {
        this.#timer = this.#clock.setTimer(due - now, () => this.#pump());
        return;
      }
      const r = node.sendFrame(e.frame);
      if (r === 'full') return; // resume() continues once the bus has room
      if (r === 'queued') this.counters.sent++;
      else this.counters.refused++;
      this.#next++;
    }
  }
}
