// SPDX-License-Identifier: Apache-2.0
/**
 * QmpListener and QmpSession against a stand-in QEMU (a Unix socket client speaking QMP as
 * docs/interop/qmp-spec.rst shows it, "\r\n" line ends included): the greeting and
 * qmp_capabilities come first, commands get their `return` or their error, events reach the
 * listeners (with QEMU's timestamp), a new connection replaces the old, and a peer that sends
 * garbage ends the session rather than the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '../errors.js';
import { QmpListener, type QmpEvent, type QmpSession } from './qmp.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}';

/** A stand-in QEMU: connects, greets, and answers each command with `answer(execute, arguments)`. */
function fakeQemu(path: string, answer: (execute: string, args: unknown) => unknown): Promise<{ sock: Socket; received: Array<Record<string, unknown>> }> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const received: Array<Record<string, unknown>> = [];
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('connect', () => {
      sock.write(`${GREETING}\r\n`);
      resolve({ sock, received });
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        received.push(msg);
        const reply = answer(String(msg['execute']), msg['arguments']);
        sock.write(`${JSON.stringify({ ...(reply as object), id: msg['id'] })}\r\n`);
      }
    });
  });
}

async function withListener(fn: (path: string, sessions: QmpSession[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-qmp-test-'));
  const path = join(dir, 'qmp.sock');
  const sessions: QmpSession[] = [];
  const listener = await QmpListener.listen(path, (s) => sessions.push(s));
  try {
    await fn(path, sessions);
  } finally {
    await listener.close();
    assert.equal(existsSync(path), false, 'close() removes the socket');
    rmSync(dir, { recursive: true, force: true });
  }
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setImmediate(r));
};

test('QMP: capabilities first, then commands with their returns and errors; events with their timestamp', async () => {
  await withListener(async (path, sessions) => {
    const { sock, received } = await fakeQemu(path, (execute) =>
      execute === 'query-balloon' ? { return: { actual: 201326592 } } : execute === 'balloon' ? { return: {} } : execute === 'qmp_capabilities' ? { return: {} } : { error: { class: 'CommandNotFound', desc: `The command ${execute} has not been found` } },
    );
    await until(() => sessions.length === 1);
    const s = sessions[0] as QmpSession; // one connection, one session
    await s.ready;
    const events: QmpEvent[] = [];
    s.onEvent((e) => events.push(e));
    assert.deepEqual(await s.execute('balloon', { value: 201326592 }), {});
    assert.deepEqual(await s.execute('query-balloon'), { actual: 201326592 });
    await assert.rejects(s.execute('nope'), (e: unknown) => hasCode(e, 'QMP_ERROR') && /QMP nope: The command nope has not been found \(CommandNotFound\)/.test((e as Error).message));
    assert.deepEqual(
      received.map((m) => [m['execute'], m['arguments']]),
      [['qmp_capabilities', undefined], ['balloon', { value: 201326592 }], ['query-balloon', undefined], ['nope', undefined]],
    );
    sock.write('{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "WATCHDOG", "data": {"action": "reset"}}\r\n');
    await until(() => events.length === 1);
    assert.deepEqual(events[0], { event: 'WATCHDOG', data: { action: 'reset' }, at: 1_700_000_000_250 });
    sock.destroy();
    await s.closed;
    await assert.rejects(s.execute('query-balloon'), (e: unknown) => hasCode(e, 'QMP_ERROR'));
  });
});

test('QMP: a QEMU started again connects anew and replaces the old session', async () => {
  await withListener(async (path, sessions) => {
    const ok = (): unknown => ({ return: {} });
    const a = await fakeQemu(path, ok);
    await until(() => sessions.length === 1);
    const b = await fakeQemu(path, ok);
    await until(() => sessions.length === 2);
    await (sessions[0] as QmpSession).closed; // the old one is ended
    await (sessions[1] as QmpSession).execute('cont');
    a.sock.destroy();
    b.sock.destroy();
  });
});

test('QMP: a peer that sends garbage (no greeting, not JSON, an endless line) ends its session, never the process', async () => {
  await withListener(async (path, sessions) => {
    for (const [i, garbage] of ['{"return": {}}\n', 'not json\n', 'x'.repeat((1 << 20) + 10)].entries()) {
      const sock = connect(path);
      sock.on('error', () => {});
      await new Promise<void>((r) => sock.once('connect', () => r()));
      sock.write(garbage);
      await until(() => sessions.length === i + 1);
      const s = sessions[i] as QmpSession; // the session of this connection
      await s.closed;
      await assert.rejects(s.ready, (e: unknown) => hasCode(e, 'QMP_ERROR'));
      await assert.rejects(s.execute('query-balloon'), (e: unknown) => hasCode(e, 'QMP_ERROR'));
      sock.destroy();
    }
  });
});
