// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: a minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst) over the
 * Unix socket of `-qmp unix:PATH,server=on,wait=off`, enough to take `screendump`s of QEMU's own
 * display, and a reader of the PPM (P6) files screendump writes.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';

/** One QMP command and its `return` (QMP errors and events are handled: errors reject). */
export async function qmpCommand(path: string, execute: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
  const sock: Socket = connect(path);
  sock.setEncoding('utf8');
  try {
    return await new Promise((resolve, reject) => {
      let buf = '';
      let stage = 0;
      const timer = setTimeout(() => reject(new Error(`QMP ${execute}: no answer within ${timeoutMs} ms`)), timeoutMs);
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.on('data', (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
          buf = buf.slice(nl + 1);
          if ('event' in msg) continue;
          if ('error' in msg) {
            clearTimeout(timer);
            reject(new Error(`QMP ${stage === 0 ? 'greeting' : execute}: ${JSON.stringify(msg['error'])}`));
            return;
          }
          if (stage === 0 && 'QMP' in msg) {
            stage = 1;
            sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
          } else if (stage === 1 && 'return' in msg) {
            stage = 2;
            sock.write(`${JSON.stringify({ execute, arguments: args })}\n`);
          } else if (stage === 2 && 'return' in msg) {
            clearTimeout(timer);
            resolve(msg['return']);
          }
        }
      });
    });
  } finally {
    sock.destroy();
  }
}

/** Reads a binary PPM (P6, maxval 255) into RGB bytes. */
export function readPpm(file: string): { width: number; height: number; rgb: Buffer } {
  const b = readFileSync(file);
  // Header: "P6" whitespace width whitespace height whitespace maxval, one whitespace byte, pixels.
  const fields: string[] = [];
  let at = 0;
  while (fields.length < 4) {
    while (at < b.length && /\s/.test(String.fromCharCode(b[at] ?? 0))) at++;
    let tok = '';
    while (at < b.length && !/\s/.test(String.fromCharCode(b[at] ?? 0))) tok += String.fromCharCode(b[at++] ?? 0);
    fields.push(tok);
  }
  at++;
  const [magic, w, h, max] = fields;
  if (magic !== 'P6' || max !== '255') throw new Error(`${file}: not a P6 PPM with maxval 255 (${fields.join(' ')})`);
  const width = Number(w);
  const height = Number(h);
  return { width, height, rgb: b.subarray(at, at + width * height * 3) };
}
