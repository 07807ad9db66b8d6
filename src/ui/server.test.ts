// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard server without a browser, over a fake RunControl: the token (every request
 * without it, or with another, refused; also the WebSocket), the Host check, each route (page,
 * scripts, snapshot with the kinds' series and flattened counters, actions with the status codes
 * of the control errors, screenshots, reports served sandboxed and nothing outside their folder),
 * and the WebSocket: greeting with tails, batched live events, input validated and passed on,
 * and the end of the run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Dashboard } from './server.js';
import { FakeControl, PNG } from './testing/fake-control.js';
import type { PageSnapshot, ServerMessage } from './wire.js';

let dir = '';
let control: FakeControl;
let dash: Dashboard;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'avp-ui-test-'));
  mkdirSync(join(dir, 'reports'));
  writeFileSync(join(dir, 'reports', 'blk-conformance.html'), '<html><script>alert(1)</script>report</html>');
  writeFileSync(join(dir, 'reports', 'notes.txt'), 'not a report');
  writeFileSync(join(dir, 'secret.html'), 'outside the report folder');
  control = new FakeControl();
  dash = await Dashboard.start({ control, mode: 'in-process', reportDirs: [join(dir, 'reports')], intervalMs: 50 });
});

after(async () => {
  await dash.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(path: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dash.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const t = (): string => `/${dash.token}`;
const post = (body: unknown, headers: Record<string, string> = { 'Content-Type': 'application/json' }): Promise<Reply> => http(`${t()}/api/action`, { method: 'POST', body: JSON.stringify(body), headers });

test('the address: 127.0.0.1, a random token of 43 characters', () => {
  assert.match(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\/$/);
  assert.equal(dash.url, `http://127.0.0.1:${dash.port}/${dash.token}/`);
});

test('every request without the token, or with another, is refused (403)', async () => {
  const other = `${dash.token.slice(0, -1)}${dash.token.endsWith('A') ? 'B' : 'A'}`;
  for (const path of ['/', '/index.html', '/app.js', '/api/snapshot', `/${other}/`, `/${other}/api/snapshot`, `/x${dash.token}/`, `/${dash.token}x/`, `/?token=${dash.token}`]) {
    const r = await http(path);
    assert.equal(r.status, 403, path);
    assert.match(r.body, /^forbidden: open the dashboard with the address avp printed/, path);
    assert.equal(r.body.includes(dash.token), false);
  }
  assert.equal((await http('/api/action', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })).status, 403);
  assert.equal(control.acts.length, 0, 'no action reached the run');
});

test('a Host header other than the loopback address is refused (DNS rebinding)', async () => {
  const r = await http(`${t()}/`, { headers: { Host: `evil.example:${dash.port}` } });
  assert.equal(r.status, 403);
  assert.equal((await http(`${t()}/`, { headers: { Host: `localhost:${dash.port}` } })).status, 200);
});

test('the page and its scripts, with a strict CSP and no caching', async () => {
  assert.deepEqual([(await http(t())).status, (await http(t())).headers['location']], [308, `${t()}/`]);
  const page = await http(`${t()}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /<script type="module" src="app.js"><\/script>/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  assert.equal(page.headers['cache-control'], 'no-store');
  assert.equal(page.headers['referrer-policy'], 'no-referrer');
  for (const f of ['app.js', 'charts.js', 'panels.js', 'screens.js', 'dom.js', 'style.css']) {
    const r = await http(`${t()}/${f}`);
    assert.equal(r.status, 200, f);
    assert.ok(r.body.length > 100, f);
  }
  assert.equal((await http(`${t()}/wire.js`)).status, 404);
  assert.equal((await http(`${t()}/../package.json`)).status, 404, 'dot segments name no file');
  assert.equal((await http(`${t()}/app.js`, { method: 'DELETE' })).status, 405);
});

test('api/snapshot: the page snapshot with the kind’s series, every counter flattened, and the reports', async () => {
  const r = await http(`${t()}/api/snapshot`);
  assert.equal(r.status, 200);
  const s = JSON.parse(r.body) as PageSnapshot;
  assert.deepEqual(s.vms.map((v) => [v.name, v.state, v.displays, v.input]), [['cluster', 'ready', [{ id: '0', width: 800, height: 480 }], true]]);
  const port = s.backends[0]?.ports[0];
  assert.deepEqual(port?.series.map((x) => [x.key, x.value, x.type, x.unit]), [
    ['iops', 12, 'counter', 'req'],
    ['read', 4096, 'counter', 'B'],
    ['written', 0, 'counter', 'B'],
  ]);
  assert.deepEqual(port?.counters, [
    ['requests.in', 10],
    ['requests.out', 2],
    ['bytesRead', 4096],
    ['bytesWritten', 0],
  ]);
  assert.equal(typeof port?.metricsAt, 'number');
  assert.equal(port?.summary, 'read 4.0 KiB, written 0 B');
  assert.deepEqual(s.reports, [{ name: 'blk-conformance.html', href: 'reports/0/blk-conformance.html' }]);
});

test('api/action: carried out (200), refused (409), unknown target (404), bad requests refused before the run sees them', async () => {
  control.acts = [];
  assert.deepEqual([(await post({ target: 'vm', name: 'cluster', action: 'restart' })).status], [200]);
  assert.deepEqual(JSON.parse((await post({ target: 'vm', name: 'cluster', action: 'stop' })).body), { ok: true, message: 'VM cluster stoped' });
  const refused = await post({ target: 'vm', name: 'cluster', action: 'start' });
  assert.deepEqual([refused.status, JSON.parse(refused.body)], [409, { ok: false, code: 'CONTROL_REFUSED', message: 'VM cluster is already running (ready)' }]);
  assert.equal((await post({ target: 'backend', name: 'nope', action: 'stop' })).status, 404);
  assert.equal(control.acts.length, 4);
  assert.equal((await post({ target: 'vm', name: 'cluster', action: 'explode' })).status, 400);
  assert.equal((await post({ target: 'vm', name: 'cluster', action: 'stop', extra: 1 })).status, 400);
  assert.equal((await http(`${t()}/api/action`, { method: 'POST', body: '{', headers: { 'Content-Type': 'application/json' } })).status, 400);
  assert.equal((await post({ target: 'vm', name: 'cluster', action: 'stop' }, { 'Content-Type': 'text/plain' })).status, 415, 'a form cannot post it');
  assert.equal((await post({ target: 'vm', name: 'cluster', action: 'stop' }, { 'Content-Type': 'application/json', Origin: 'http://evil.example' })).status, 403);
  assert.equal((await http(`${t()}/api/action`, { method: 'POST', body: 'x'.repeat(20_000), headers: { 'Content-Type': 'application/json' } })).status, 413);
  assert.equal((await http(`${t()}/api/action`)).status, 405);
  assert.equal(control.acts.length, 4, 'none of the bad requests reached the run');
});

test('api/screens: the PNG of a display; 404 for a VM or display without one', async () => {
  const r = await new Promise<{ status: number; type: string | undefined; body: Buffer }>((resolve, reject) => {
    request({ host: '127.0.0.1', port: dash.port, path: `${t()}/api/screens/cluster/0.png` }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
  assert.deepEqual([r.status, r.type, r.body], [200, 'image/png', PNG]);
  assert.equal((await http(`${t()}/api/screens/cluster/1.png`)).status, 404);
  assert.equal((await http(`${t()}/api/screens/infotainment/0.png`)).status, 404);
});

test('reports: served sandboxed; nothing outside the report folders, nothing but .html', async () => {
  const r = await http(`${t()}/reports/0/blk-conformance.html`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-security-policy']), /^sandbox; default-src 'none'/);
  for (const p of ['reports/0/notes.txt', 'reports/0/..%2Fsecret.html', 'reports/1/blk-conformance.html', 'reports/0/missing.html', 'reports/x/blk-conformance.html']) {
    assert.equal((await http(`${t()}/${p}`)).status, 404, p);
  }
});

/** A WebSocket to the dashboard, collecting its messages. */
async function connect(path = `${t()}/ws`): Promise<{ ws: WebSocket; msgs: ServerMessage[]; waitFor: (f: (m: ServerMessage) => boolean) => Promise<ServerMessage> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${dash.port}${path}`);
  const msgs: ServerMessage[] = [];
  ws.on('message', (d) => msgs.push(JSON.parse(String(d)) as ServerMessage));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waitFor = async (f: (m: ServerMessage) => boolean): Promise<ServerMessage> => {
    for (let i = 0; i < 1000; i++) {
      const m = msgs.find(f);
      if (m !== undefined) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no such message in ${JSON.stringify(msgs)}`);
  };
  return { ws, msgs, waitFor };
}

test('WebSocket: refused without the token, or from another origin', async () => {
  for (const path of ['/ws', `/${dash.token}x/ws`]) await assert.rejects(connect(path), /Unexpected server response: 403/);
  const ws = new WebSocket(`ws://127.0.0.1:${dash.port}${t()}/ws`, { headers: { Origin: 'http://evil.example' } });
  await assert.rejects(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), /Unexpected server response: 403/);
});

test('WebSocket: greeting, snapshots that follow the counters, batched console and bus lines, run messages', async () => {
  const { ws, waitFor } = await connect();
  try {
    assert.deepEqual(await waitFor((m) => m.type === 'hello'), { type: 'hello', mode: 'in-process', reportDirs: [join(dir, 'reports')] });
    assert.deepEqual(await waitFor((m) => m.type === 'console-line'), { type: 'console-line', vm: 'cluster', lines: ['login:', 'AVP-GUEST: ready'], reset: true });
    assert.deepEqual(await waitFor((m) => m.type === 'bus'), { type: 'bus', bus: 'body', lines: ['123#00'], reset: true });
    control.blkRequests = 50;
    await waitFor((m) => m.type === 'snapshot' && m.snapshot.backends[0]?.ports[0]?.series[0]?.value === 52);
    control.listener?.({ type: 'console-line', vm: 'cluster', line: 'one' });
    control.listener?.({ type: 'console-line', vm: 'cluster', line: 'two' });
    control.listener?.({ type: 'log', level: 'error', message: 'back-end x failed', at: 5 });
    control.listener?.({ type: 'bus', bus: 'body', line: '124#01' });
    assert.deepEqual(await waitFor((m) => m.type === 'console-line' && m.reset !== true), { type: 'console-line', vm: 'cluster', lines: ['one', 'two'] });
    assert.deepEqual(await waitFor((m) => m.type === 'log'), { type: 'log', entries: [{ level: 'error', message: 'back-end x failed', at: 5 }] });
    assert.deepEqual(await waitFor((m) => m.type === 'bus' && m.reset !== true), { type: 'bus', bus: 'body', lines: ['124#01'] });
  } finally {
    ws.close();
  }
});

test('WebSocket: input reaches the run as given; a malformed message is refused and reaches nothing', async () => {
  const { ws, waitFor } = await connect();
  try {
    control.inputs = [];
    ws.send(JSON.stringify({ type: 'input', vm: 'cluster', display: '0', event: { type: 'touch', action: 'down', x: 400, y: 240 } }));
    ws.send(JSON.stringify({ type: 'input', vm: 'cluster', display: '0', event: { type: 'key', action: 'up', code: 'KeyA' } }));
    ws.send(JSON.stringify({ type: 'input', vm: 'cluster', display: '0', event: { type: 'touch', action: 'down', x: -1, y: 0 } }));
    ws.send(JSON.stringify({ type: 'input', vm: 'cluster', display: '0', event: { type: 'key', action: 'down', code: '<script>' } }));
    ws.send('not json');
    await waitFor((m) => m.type === 'input-error');
    for (let i = 0; i < 100 && control.inputs.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(control.inputs, [
      ['cluster', '0', { type: 'touch', action: 'down', x: 400, y: 240 }],
      ['cluster', '0', { type: 'key', action: 'up', code: 'KeyA' }],
    ]);
  } finally {
    ws.close();
  }
});

test('end(): open pages are told the run has ended, and so is a page that connects afterwards', async () => {
  const { ws, waitFor } = await connect();
  try {
    await waitFor((m) => m.type === 'hello');
    dash.end('every VM powered off successfully (2)');
    assert.deepEqual(await waitFor((m) => m.type === 'ended'), { type: 'ended', reason: 'every VM powered off successfully (2)' });
    const later = await connect();
    assert.deepEqual(await later.waitFor((m) => m.type === 'ended'), { type: 'ended', reason: 'every VM powered off successfully (2)' });
    later.ws.close();
  } finally {
    ws.close();
  }
});
