// SPDX-License-Identifier: Apache-2.0
/**
 * Live charts of the dashboard page: the history of a counter (as its rate per second) or a gauge
 * (as its value), drawn as a sparkline on a small canvas. Rates are measured between metric
 * samples by the time each was taken (`metricsAt`), so a back-end that answers late does not
 * show a spike; a sample that did not change time adds no point.
 */
import { h, number, setText } from './dom.js';

/** Points kept per series: two minutes at one snapshot a second. */
const HISTORY = 120;

/** One series' samples and the chart that draws them. */
export class Sparkline {
  readonly element: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #label: HTMLElement;
  readonly #value: HTMLElement;
  readonly #points: number[] = [];
  #last: { t: number; v: number } | undefined;

  constructor(label: string, readonly type: 'counter' | 'gauge', readonly unit: string, key: string) {
    this.#canvas = h('canvas', { width: 160, height: 36 });
    this.#label = h('span', { class: 'label' }, label);
    this.#value = h('span', { class: 'value', 'data-value': '' });
    this.element = h('div', { class: 'chart', 'data-series': key, 'data-type': type }, h('div', { class: 'chart-head' }, this.#label, this.#value), this.#canvas);
  }

  /** Adds the sample `v` taken at `t` (ms); redraws. */
  add(t: number, v: number): void {
    if (this.type === 'gauge') {
      this.#push(v);
      setText(this.#value, `${number(v)} ${this.unit}`);
    } else {
      const last = this.#last;
      if (last !== undefined && t <= last.t) return; // no new sample
      this.#last = { t, v };
      this.element.dataset['total'] = String(v);
      if (last === undefined) return setText(this.#value, `– ${this.unit}/s`);
      // A counter that went down was reset (its back-end restarted): count from the new value.
      const rate = v >= last.v ? (v - last.v) / ((t - last.t) / 1000) : 0;
      this.#push(rate);
      setText(this.#value, `${number(rate)} ${this.unit}/s`);
    }
    this.element.dataset['total'] = String(v);
    this.#draw();
  }

  #push(p: number): void {
    this.#points.push(p);
    if (this.#points.length > HISTORY) this.#points.shift();
  }

  #draw(): void {
    const c = this.#canvas;
    const g = c.getContext('2d');
    if (g === null) return;
    g.clearRect(0, 0, c.width, c.height);
    const pts = this.#points;
    if (pts.length === 0) return;
    const max = Math.max(...pts, 1e-9);
    const step = c.width / (HISTORY - 1);
    const x0 = c.width - (pts.length - 1) * step;
    const y = (p: number): number => c.height - 2 - (p / max) * (c.height - 4);
    g.beginPath();
    g.moveTo(x0, c.height);
    pts.forEach((p, i) => g.lineTo(x0 + i * step, y(p)));
    g.lineTo(c.width, c.height);
    g.closePath();
    g.fillStyle = 'rgba(56, 139, 253, 0.18)';
    g.fill();
    g.beginPath();
    pts.forEach((p, i) => (i === 0 ? g.moveTo(x0, y(p)) : g.lineTo(x0 + i * step, y(p))));
    g.strokeStyle = '#388bfd';
    g.lineWidth = 1.5;
    g.stroke();
  }
}

/** Rate of each of a port's counters between two samples, for the "all counters" table. */
export class CounterRates {
  #last: { t: number; values: Map<string, number> } | undefined;
  #rates = new Map<string, number>();

  update(t: number, counters: ReadonlyArray<[string, number]>): void {
    const values = new Map(counters);
    const last = this.#last;
    if (last !== undefined && t <= last.t) return;
    if (last !== undefined) {
      const dt = (t - last.t) / 1000;
      this.#rates = new Map([...values].map(([k, v]) => [k, Math.max(0, (v - (last.values.get(k) ?? v)) / dt)]));
    }
    this.#last = { t, values };
  }

  rate(path: string): number | undefined {
    return this.#rates.get(path);
  }
}
