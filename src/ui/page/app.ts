// SPDX-License-Identifier: Apache-2.0
/**
 * The dashboard page: connects to its server's WebSocket (`ws`, beside the page: the token is the
 * first part of the page's path, so relative URLs carry it), draws each snapshot into the VM,
 * back-end, bus, message and report panels, appends console and bus lines as they come, and sends
 * start/stop/restart requests (`api/action`) and screen input. Reconnects when the connection
 * drops, until the server says the run has ended.
 */
import type { ActionResponse, PageInputEvent, PageSnapshot, PageVerb, ServerMessage } from '../wire.js';
import { duration, h, setText } from './dom.js';
import { BackendCard, LinePanel, VmCard } from './panels.js';

const $ = (id: string): HTMLElement => {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`); // index.html and this file disagree: our bug
  return e;
};

const vms = new Map<string, VmCard>();
const backends = new Map<string, BackendCard>();
const buses = new Map<string, LinePanel>();
let snapshot: PageSnapshot | undefined;
/** Server clock minus ours, so uptimes tick with the server's. */
let skew = 0;
let ws: WebSocket | undefined;
let ended = false;

function notice(text: string, error = false): void {
  const n = $('notice');
  n.className = error ? 'error' : 'ok';
  n.textContent = text;
}

async function act(target: 'vm' | 'backend', name: string, action: PageVerb): Promise<void> {
  notice(`${action} ${target === 'vm' ? 'VM' : 'back-end'} ${name}…`);
  try {
    const res = await fetch('api/action', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ target, name, action }) });
    const body = (await res.json()) as ActionResponse; // the server answers ActionResponse on every status
    notice(body.message, !body.ok);
  } catch (e: unknown) {
    notice(`${action} ${name}: ${e instanceof Error ? e.message : String(e)}`, true);
  }
}

function sendInput(vm: string, display: string, event: PageInputEvent): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'input', vm, display, event }));
}

function draw(s: PageSnapshot): void {
  snapshot = s;
  skew = s.at - Date.now();
  document.title = `${s.name} · AVP`;
  setText($('title'), s.name);
  setText($('rundir'), s.runDir);
  if (!ended) setText($('status'), s.ending ? 'stopping' : 'live');
  $('status').className = ended ? 'ended' : s.ending ? 'stopping' : 'live';
  for (const v of s.vms) {
    let card = vms.get(v.name);
    if (card === undefined) {
      card = new VmCard(v.name, act, sendInput);
      vms.set(v.name, card);
      $('vms').append(card.element);
    }
    card.update(v, s.at);
  }
  $('vms-empty').hidden = s.vms.length > 0;
  for (const b of s.backends) {
    let card = backends.get(b.id);
    if (card === undefined) {
      card = new BackendCard(b.id, act);
      backends.set(b.id, card);
      $('backends').append(card.element);
    }
    card.update(b, s.at);
  }
  $('backends-empty').hidden = s.backends.length > 0;
  for (const b of s.buses) busPanel(b.name, b.kind);
  $('buses-empty').hidden = s.buses.length > 0;
  const links = s.reports.map((r) => h('li', {}, h('a', { href: r.href, target: '_blank', rel: 'noopener noreferrer' }, r.name)));
  $('reports').replaceChildren(...links);
  $('reports-empty').hidden = links.length > 0;
  tick();
}

function busPanel(name: string, kind = 'bus'): LinePanel {
  let p = buses.get(name);
  if (p === undefined) {
    p = new LinePanel({ 'data-bus': name });
    buses.set(name, p);
    $('buses').append(h('section', { class: 'card bus' }, h('header', {}, h('h3', {}, name), h('span', { class: 'badge' }, kind)), p.element));
  }
  return p;
}

function tick(): void {
  const now = Date.now() + skew;
  if (snapshot !== undefined && !ended) setText($('uptime'), `up ${duration(now - snapshot.startedAt)}`);
  if (!ended) for (const c of vms.values()) c.tick(now);
}

function onMessage(m: ServerMessage): void {
  switch (m.type) {
    case 'hello':
      setText($('mode'), m.mode === 'attached' ? 'attached to its control socket' : 'in avp run');
      setText($('report-dirs'), m.reportDirs.join(', '));
      return;
    case 'snapshot':
      return draw(m.snapshot);
    case 'console-line':
      return vms.get(m.vm)?.console.add(m.lines, m.reset === true);
    case 'bus':
      return busPanel(m.bus).add(m.lines, m.reset === true);
    case 'log': {
      const list = $('log');
      for (const e of m.entries) list.append(h('li', { class: e.level }, h('time', {}, new Date(e.at).toLocaleTimeString()), ' ', e.message));
      while (list.childElementCount > 200) list.firstElementChild?.remove();
      list.scrollTop = list.scrollHeight;
      return;
    }
    case 'input-error':
      return notice(`input: ${m.message}`, true);
    case 'ended':
      ended = true;
      setText($('status'), 'ended');
      $('status').className = 'ended';
      notice(`the run has ended: ${m.reason}`);
      for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-action]')) b.disabled = true;
      return;
  }
}

function connect(): void {
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url);
  ws = socket;
  socket.addEventListener('message', (e) => onMessage(JSON.parse(String(e.data)) as ServerMessage)); // the server sends ServerMessages
  socket.addEventListener('open', () => document.body.classList.remove('offline'));
  socket.addEventListener('close', () => {
    if (ended) return;
    document.body.classList.add('offline');
    setText($('status'), 'disconnected');
    $('status').className = 'ended';
    setTimeout(connect, 1000);
  });
}

setInterval(tick, 1000);
connect();
