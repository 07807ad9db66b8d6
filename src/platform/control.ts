// SPDX-License-Identifier: Apache-2.0
/**
 * The client side of the devices' control sockets (devices/control-socket.ts) in a running
 * platform: one request line, one JSON reply line; and finding the sockets `avp run` made
 * (`<runDir>/<vm>/<device>.ctl`, runs under `.avp/runs/` by default) that take a request, by asking
 * each its `capabilities` (so nothing here names a device kind); a screenshot of a display and an
 * input step to the first input device that takes it. `avp screenshot`, `avp input`, the run's
 * dashboard wiring (run/device-views.ts) and the e2e tests use it.
 *
 * Owns: connecting, sending, reading one reply with a time limit, turning a refusal into an error,
 * and the search. Does not own: what the requests mean (each device kind documents its own).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { AvpError } from '../errors.js';

/** A control socket could not be reached, did not answer in time, or answered `ok: false`. */
export class ControlRequestError extends AvpError {
  override readonly code = 'CONTROL_REQUEST_FAILED';
}

/** Sends `line` to the control socket at `path` and returns its reply (`ok: true`). */
export function controlRequest(path: string, line: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let text = '';
    let done = false;
    const finish = (e: Error | null, v?: Record<string, unknown>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (e !== null) reject(e);
      else resolve(v ?? {});
    };
    const timer = setTimeout(() => finish(new ControlRequestError(`${path}: no reply to '${line}' within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(new ControlRequestError(`${path}: ${e.message}`, { cause: e })));
    sock.on('connect', () => sock.end(`${line}\n`));
    sock.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      let reply: unknown;
      try {
        reply = JSON.parse(text.slice(0, nl));
      } catch {
        finish(new ControlRequestError(`${path}: the reply is not JSON: ${text.slice(0, 200)}`));
        return;
      }
      const r = reply as Record<string, unknown>;
      if (r['ok'] === true) finish(null, r);
      else finish(new ControlRequestError(`${path}: ${typeof r['error'] === 'string' ? r['error'] : JSON.stringify(reply)}`));
    });
    sock.on('end', () => finish(new ControlRequestError(`${path}: closed without a reply to '${line}'`)));
  });
}

/** What a display device answers to `screenshot` (devices/gpu/kind.ts). */
export interface ScreenshotReply {
  /** The PNG the back-end wrote. */
  path: string;
  width: number;
  height: number;
  /** The scanout's frame counter when it was taken. */
  frame: number;
}

/**
 * Asks the display device at `socket` for a PNG of `scanout`, written by the back-end at `output`
 * (absolute), or without it at its default `<vmDir>/<device>-scanout<N>.png`.
 * @throws ControlRequestError (no such scanout, nothing shown on it yet, no back-end)
 */
export async function requestScreenshot(socket: string, scanout: number, output?: string, timeoutMs?: number): Promise<ScreenshotReply> {
  const r = await controlRequest(socket, `screenshot ${scanout}${output === undefined ? '' : ` ${output}`}`, timeoutMs);
  if (typeof r['path'] !== 'string') throw new ControlRequestError(`${socket}: the screenshot reply names no file: ${JSON.stringify(r).slice(0, 200)}`);
  return { path: r['path'], width: Number(r['width']), height: Number(r['height']), frame: Number(r['frame']) };
}

/** An input step no device took; `refusals` says why each refused (`name: why`). */
export class InputStepRefusedError extends ControlRequestError {
  readonly refusals: string[];
  constructor(step: string, refusals: string[]) {
    super(`no input device took '${step}': ${refusals.length === 0 ? 'there is none' : refusals.join('; ')}`);
    this.refusals = refusals;
  }
}

/**
 * Sends one input step (devices/input/steps.ts: `touch 10,20`, `press KEY_A`, `up`) to the first of
 * `sockets` that takes it, in order, and returns that socket and its reply.
 * @throws InputStepRefusedError when every one refused it (or there is none)
 */
export async function sendInputStep<S extends { name: string; path: string }>(sockets: readonly S[], step: string, timeoutMs?: number): Promise<{ socket: S; reply: Record<string, unknown> }> {
  const refusals: string[] = [];
  for (const socket of sockets) {
    try {
      return { socket, reply: await controlRequest(socket.path, step, timeoutMs) };
    } catch (e: unknown) {
      if (!(e instanceof ControlRequestError)) throw e;
      refusals.push(`${socket.name}: ${e.message.replace(`${socket.path}: `, '')}`);
    }
  }
  throw new InputStepRefusedError(step, refusals);
}

/** A device control socket of a running platform. */
export interface ControlSocketRef {
  /** The run directory it belongs to. */
  runDir: string;
  vm: string;
  /** The device's name in the manifest (the socket is `<runDir>/<vm>/<name>.ctl`). */
  name: string;
  path: string;
  /** The device kind and the requests it takes (its `capabilities` answer). */
  device: string;
  requests: string[];
}

/** Where `avp run` puts its runs by default (platform/manifest/plan.ts defaultRunDir). */
export function runsFolder(cwd: string): string {
  return join(cwd, '.avp', 'runs');
}

/**
 * The control sockets of `vm` that take `request`, in the newest run that has any (or in
 * `runDir`), sorted by device name; `device` narrows them to one device name. Sockets that do not
 * answer (a run that ended badly) are passed over.
 * @throws ControlRequestError saying where it looked when none is found.
 */
export async function findControlSockets(opts: { vm: string; request: string; cwd: string; runDir?: string; device?: string }): Promise<ControlSocketRef[]> {
  const dirs = opts.runDir !== undefined ? [resolve(opts.cwd, opts.runDir)] : newestFirst(runsFolder(opts.cwd));
  const looked: string[] = [];
  for (const runDir of dirs) {
    const vmDir = join(runDir, opts.vm);
    if (!existsSync(vmDir)) continue;
    const names = readdirSync(vmDir)
      .filter((f) => f.endsWith('.ctl'))
      .map((f) => f.slice(0, -4))
      .filter((n) => opts.device === undefined || n === opts.device)
      .sort();
    const found: ControlSocketRef[] = [];
    for (const name of names) {
      const path = join(vmDir, `${name}.ctl`);
      looked.push(path);
      let caps: Record<string, unknown>;
      try {
        caps = await controlRequest(path, 'capabilities', 5_000);
      } catch {
        continue;
      }
      const requests = Array.isArray(caps['requests']) ? caps['requests'].filter((r): r is string => typeof r === 'string') : [];
      if (requests.includes(opts.request)) found.push({ runDir, vm: opts.vm, name, path, device: String(caps['device']), requests });
    }
    if (found.length > 0) return found;
  }
  const where = opts.runDir !== undefined ? resolve(opts.cwd, opts.runDir) : `the runs in ${runsFolder(opts.cwd)}`;
  const what = opts.device === undefined ? `device of VM '${opts.vm}'` : `device '${opts.device}' of VM '${opts.vm}'`;
  throw new ControlRequestError(
    `no ${what} takes '${opts.request}' in ${where}${looked.length > 0 ? ` (asked: ${looked.join(', ')})` : ''}; is avp run running? (--run-dir names its run directory)`,
  );
}

/** Subfolders of `dir`, newest first (none when `dir` does not exist). */
function newestFirst(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(dir, e.name))
    .map((p) => ({ p, t: statSync(p).mtimeMs }))
    .sort((a, b) => b.t - a.t)
    .map((x) => x.p);
}
