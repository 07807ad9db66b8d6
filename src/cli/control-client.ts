// SPDX-License-Identifier: Apache-2.0
/**
 * The client side of a device's control socket (devices/control-socket.ts): one request line,
 * one JSON reply line. `avp screenshot`, `avp input` and the e2e tests use it.
 *
 * Owns: connecting, sending, reading one reply with a time limit, and turning a refusal into an
 * error. Does not own: what the requests mean (each device kind documents its own).
 */
import { connect } from 'node:net';
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
