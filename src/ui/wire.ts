// SPDX-License-Identifier: Apache-2.0
/**
 * What the dashboard's server and its page say to each other: the JSON of the page's WebSocket
 * (`<token>/ws`) and of its HTTP API (`<token>/api/...`). Types only, and nothing imported, so
 * that the page (src/ui/page, compiled for the browser) and the server (src/ui/server.ts) share
 * them; view.ts maps the control snapshot onto them, which checks that the two agree.
 *
 * Owns: those shapes. Does not own: the control protocol (platform/run/control-socket.ts).
 */

/** For each verb: null when allowed now, else why not (platform/run/control-rules.ts). */
export interface PageVerdicts {
  start: string | null;
  stop: string | null;
  restart: string | null;
}

export type PageVerb = keyof PageVerdicts;

/** A display of a VM (platform/run/extensions.ts DisplayInfo). */
export interface PageDisplay {
  id: string;
  width: number;
  height: number;
  label?: string;
}

/** Input to a display, in its pixels (platform/run/extensions.ts InputEvent). */
export type PageInputEvent = { type: 'touch'; action: 'down' | 'move' | 'up'; x: number; y: number } | { type: 'key'; action: 'down' | 'up'; code: string };

/** One number to chart (a device kind's `series`). */
export interface PageSeries {
  key: string;
  label: string;
  value: number;
  type: 'counter' | 'gauge';
  unit: string;
}

export interface PagePort {
  name: string;
  connected: boolean;
  /** The kind's one-line summary (`tx 12 fr, rx 10 fr, 0 dropped`), or the session's messages. */
  summary: string;
  series: PageSeries[];
  /** Every number in the port's metrics, by dotted path (`requests.in`), in the metrics' order. */
  counters: Array<[string, number]>;
  /** Date.now() when the metrics were taken (rates are computed against it). */
  metricsAt?: number;
}

export interface PageVm {
  name: string;
  state: string;
  pid?: number;
  startedAt?: number;
  readyAt?: number;
  endedAt?: number;
  reason?: string;
  /** Its watchdog: the action, the timeout, and how often it fired in this run. */
  watchdog?: { action: string; timeoutSeconds: number; fired: number };
  /** How often avp run started it again (watchdog restart-vm). */
  restarts?: number;
  backends: string[];
  actions: PageVerdicts;
  displays: PageDisplay[];
  input: boolean;
}

export interface PageBackend {
  id: string;
  kind: string;
  isolation: 'shared' | 'thread' | 'process';
  state: string;
  pid?: number;
  restarts: number;
  restart: 'no' | 'on-failure';
  vms: string[];
  actions: PageVerdicts;
  ports: PagePort[];
}

export interface PageReport {
  /** The file name. */
  name: string;
  /** Relative to the page. */
  href: string;
}

export interface PageSnapshot {
  /** Date.now() on the server when taken. */
  at: number;
  name: string;
  runDir: string;
  startedAt: number;
  ending: boolean;
  vms: PageVm[];
  backends: PageBackend[];
  buses: Array<{ name: string; kind: string }>;
  reports: PageReport[];
}

/** Server → page over the WebSocket. `reset`: the lines replace what the page has (a tail on connect). */
export type ServerMessage =
  | { type: 'hello'; mode: 'in-process' | 'attached'; reportDirs: string[] }
  | { type: 'snapshot'; snapshot: PageSnapshot }
  | { type: 'console-line'; vm: string; lines: string[]; reset?: boolean }
  | { type: 'log'; entries: Array<{ level: 'info' | 'error'; message: string; at: number }> }
  | { type: 'bus'; bus: string; lines: string[]; reset?: boolean }
  | { type: 'input-error'; message: string }
  | { type: 'ended'; reason: string };

/** Page → server over the WebSocket. */
export type ClientMessage = { type: 'input'; vm: string; display: string; event: PageInputEvent };

/** POST <token>/api/action. */
export interface ActionRequest {
  target: 'vm' | 'backend';
  name: string;
  action: PageVerb;
}

/** Its answer (HTTP 200 when ok; 409 refused, 404 unknown target, 400 bad request, 500 failed). */
export type ActionResponse = { ok: true; message: string } | { ok: false; code: string; message: string };
