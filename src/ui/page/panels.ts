// SPDX-License-Identifier: Apache-2.0
/**
 * The cards of the dashboard page: a VM (state, uptime, its screens, its console tail), a
 * back-end (state, its ports with the kind's summary, live charts and every counter), a bus
 * (its trace); each with start/stop/restart buttons that show the supervisor's verdict (a refused
 * action is greyed out, its reason as the tooltip). Each card is made once and updated in place.
 */
import type { PageBackend, PagePort, PageVerb, PageVerdicts, PageVm } from '../wire.js';
import { CounterRates, Sparkline } from './charts.js';
import { duration, h, number, setText } from './dom.js';
import { ScreenPanel, type SendInput } from './screens.js';

/** Lines kept in a console or trace panel. */
const MAX_LINES = 500;

export type Act = (target: 'vm' | 'backend', name: string, action: PageVerb) => Promise<void>;

/** start/stop/restart buttons reflecting the verdicts. */
class Actions {
  readonly element: HTMLElement;
  readonly #buttons: Record<PageVerb, HTMLButtonElement>;
  #busy = false;

  constructor(target: 'vm' | 'backend', name: string, act: Act) {
    const make = (verb: PageVerb): HTMLButtonElement => {
      const b = h('button', { type: 'button', 'data-action': verb }, verb);
      b.addEventListener('click', () => {
        this.#busy = true;
        for (const x of Object.values(this.#buttons)) x.disabled = true;
        void act(target, name, verb).finally(() => (this.#busy = false));
      });
      return b;
    };
    this.#buttons = { start: make('start'), stop: make('stop'), restart: make('restart') };
    this.element = h('div', { class: 'actions' }, this.#buttons.start, this.#buttons.stop, this.#buttons.restart);
  }

  update(v: PageVerdicts): void {
    for (const verb of ['start', 'stop', 'restart'] as const) {
      const b = this.#buttons[verb];
      const why = v[verb];
      b.disabled = this.#busy || why !== null;
      b.title = why ?? `${verb} it`;
    }
  }
}

/** A scrolling text panel that keeps its last MAX_LINES lines and follows the end unless scrolled up. */
export class LinePanel {
  readonly element: HTMLPreElement;
  #lines: string[] = [];

  constructor(attrs: Record<string, string>) {
    this.element = h('pre', { class: 'lines', ...attrs });
  }

  add(lines: readonly string[], reset = false): void {
    const e = this.element;
    const atEnd = e.scrollTop + e.clientHeight >= e.scrollHeight - 8;
    this.#lines = reset ? [...lines] : [...this.#lines, ...lines];
    if (this.#lines.length > MAX_LINES) this.#lines = this.#lines.slice(-MAX_LINES);
    e.textContent = this.#lines.join('\n');
    if (atEnd || reset) e.scrollTop = e.scrollHeight;
  }
}

function badge(state: string): HTMLElement {
  return h('span', { class: `badge s-${state}`, 'data-state': state }, state);
}

function setBadge(e: HTMLElement, state: string): void {
  e.className = `badge s-${state}`;
  e.dataset['state'] = state;
  setText(e, state);
}

export class VmCard {
  readonly element: HTMLElement;
  readonly console: LinePanel;
  readonly #badge = badge('pending');
  readonly #meta = h('div', { class: 'meta' });
  readonly #actions: Actions;
  readonly #screens: ScreenPanel;
  #vm: PageVm | undefined;

  constructor(name: string, act: Act, send: SendInput) {
    this.#actions = new Actions('vm', name, act);
    this.#screens = new ScreenPanel(name, send);
    this.console = new LinePanel({ 'data-console': name });
    this.element = h(
      'section',
      { class: 'card vm', 'data-vm': name },
      h('header', {}, h('h3', {}, name), this.#badge, this.#actions.element),
      this.#meta,
      this.#screens.element,
      h('div', { class: 'sub' }, 'serial console'),
      this.console.element,
    );
  }

  update(vm: PageVm, now: number): void {
    this.#vm = vm;
    setBadge(this.#badge, vm.state);
    this.#actions.update(vm.actions);
    this.#screens.update(vm);
    this.tick(now);
  }

  /** Redraws what depends on the clock (uptime). */
  tick(now: number): void {
    const vm = this.#vm;
    if (vm === undefined) return;
    const parts: string[] = [];
    if (vm.startedAt !== undefined) parts.push(`up ${duration((vm.endedAt ?? now) - vm.startedAt)}`);
    if (vm.readyAt !== undefined && vm.startedAt !== undefined) parts.push(`ready after ${duration(vm.readyAt - vm.startedAt)}`);
    if (vm.pid !== undefined) parts.push(`QEMU pid ${vm.pid}`);
    const w = vm.watchdog;
    if (w !== undefined) parts.push(`watchdog ${w.timeoutSeconds} s, ${w.action}: ${w.fired === 0 ? 'never fired' : `fired ${w.fired} time${w.fired === 1 ? '' : 's'}`}`);
    if (vm.restarts !== undefined) parts.push(`started again ${vm.restarts} time${vm.restarts === 1 ? '' : 's'}`);
    if (vm.reason !== undefined) parts.push(vm.reason);
    setText(this.#meta, parts.join(' · '));
  }
}

class PortView {
  readonly element: HTMLElement;
  readonly #dot = h('span', { class: 'dot' });
  readonly #summary = h('span', { class: 'summary' });
  readonly #charts = h('div', { class: 'charts' });
  readonly #series = new Map<string, Sparkline>();
  readonly #table = h('tbody');
  readonly #count = h('span');
  readonly #rates = new CounterRates();

  constructor(name: string) {
    this.element = h(
      'div',
      { class: 'port', 'data-port': name },
      h('div', { class: 'port-head' }, this.#dot, h('span', { class: 'port-name' }, name), this.#summary),
      this.#charts,
      h('details', {}, h('summary', {}, 'all counters (', this.#count, ')'), h('table', { class: 'counters' }, h('thead', {}, h('tr', {}, h('th', {}, 'counter'), h('th', {}, 'value'), h('th', {}, 'per s'))), this.#table)),
    );
  }

  update(p: PagePort, at: number): void {
    const t = p.metricsAt ?? at;
    this.#dot.className = `dot ${p.connected ? 'on' : 'off'}`;
    this.#dot.title = p.connected ? 'front-end connected' : 'no front-end connected';
    setText(this.#summary, p.summary);
    for (const s of p.series) {
      let chart = this.#series.get(s.key);
      if (chart === undefined) {
        chart = new Sparkline(s.label, s.type, s.unit, s.key);
        this.#series.set(s.key, chart);
        this.#charts.append(chart.element);
      }
      if (p.counters.length > 0) chart.add(t, s.value);
    }
    this.#rates.update(t, p.counters);
    setText(this.#count, String(p.counters.length));
    const rows = p.counters.map(([path, v]) => {
      const r = this.#rates.rate(path);
      return h('tr', { 'data-counter': path }, h('td', {}, path), h('td', { class: 'num' }, number(v)), h('td', { class: 'num' }, r === undefined || r === 0 ? '' : number(r)));
    });
    this.#table.replaceChildren(...rows);
  }
}

export class BackendCard {
  readonly element: HTMLElement;
  readonly #badge = badge('starting');
  readonly #meta = h('div', { class: 'meta' });
  readonly #actions: Actions;
  readonly #ports = h('div', { class: 'ports' });
  readonly #portViews = new Map<string, PortView>();

  constructor(id: string, act: Act) {
    this.#actions = new Actions('backend', id, act);
    this.element = h('section', { class: 'card backend', 'data-backend': id }, h('header', {}, h('h3', {}, id), this.#badge, this.#actions.element), this.#meta, this.#ports);
  }

  update(b: PageBackend, at: number): void {
    setBadge(this.#badge, b.state);
    this.#actions.update(b.actions);
    const runs = b.isolation === 'process' ? `process ${b.pid ?? '-'}` : b.isolation === 'shared' ? 'shared thread' : 'thread';
    const restarts = b.restarts > 0 ? ` · ${b.restarts} restart${b.restarts === 1 ? '' : 's'}` : '';
    setText(this.#meta, `${b.kind} · ${runs} · restart: ${b.restart}${restarts} · for ${b.vms.join(', ')}`);
    for (const p of b.ports) {
      let view = this.#portViews.get(p.name);
      if (view === undefined) {
        view = new PortView(p.name);
        this.#portViews.set(p.name, view);
        this.#ports.append(view.element);
      }
      view.update(p, at);
    }
  }
}
