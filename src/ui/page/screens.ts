// SPDX-License-Identifier: Apache-2.0
/**
 * The screen panel of a VM on the dashboard page: each display as an image refreshed as fast as
 * the server delivers it (`api/screens/VM/DISPLAY.png`), and, when the VM's screens take input, a
 * pointer on the image as touch (down, move, up, in the display's pixels) and keys while the
 * screen has focus (KeyboardEvent.code), sent over the page's WebSocket. A VM without a display
 * says so.
 */
import type { PageDisplay, PageInputEvent, PageVm } from '../wire.js';
import { h } from './dom.js';

/** Pause between two screenshots of one display. */
const REFRESH_MS = 250;
/** Pause after a screenshot failed. */
const RETRY_MS = 2000;

export type SendInput = (vm: string, display: string, event: PageInputEvent) => void;

export class ScreenPanel {
  readonly element: HTMLElement;
  readonly #vm: string;
  readonly #send: SendInput;
  readonly #screens = new Map<string, { element: HTMLElement; stop: () => void; width: number; height: number }>();
  readonly #empty: HTMLElement;
  #input = false;

  constructor(vm: string, send: SendInput) {
    this.#vm = vm;
    this.#send = send;
    this.#empty = h('div', { class: 'empty' }, 'no display on this VM');
    this.element = h('div', { class: 'screens', 'data-screens': vm }, this.#empty);
  }

  update(vm: PageVm): void {
    this.#input = vm.input;
    const ids = new Set(vm.displays.map((d) => d.id));
    for (const [id, s] of this.#screens) {
      const d = vm.displays.find((x) => x.id === id);
      if (d === undefined || d.width !== s.width || d.height !== s.height) {
        s.stop();
        s.element.remove();
        this.#screens.delete(id);
      }
    }
    for (const d of vm.displays) if (!this.#screens.has(d.id)) this.#add(d);
    this.#empty.hidden = ids.size > 0;
    this.element.classList.toggle('input', vm.input);
  }

  #add(d: PageDisplay): void {
    const img = h('img', { alt: `${this.#vm} display ${d.id}`, draggable: 'false', width: d.width, height: d.height });
    img.style.aspectRatio = `${d.width} / ${d.height}`; // the display's shape, whatever picture arrives
    const status = h('div', { class: 'screen-status' });
    const box = h('div', { class: 'screen', tabindex: 0, 'data-display': d.id }, img, status);
    const title = h('div', { class: 'screen-title' }, d.label ?? `display ${d.id}`, ` · ${d.width}×${d.height}`);
    const element = h('figure', {}, title, box);
    let stopped = false;
    let timer: number | undefined;
    let n = 0;
    const load = (): void => {
      if (!stopped) img.src = `api/screens/${encodeURIComponent(this.#vm)}/${encodeURIComponent(d.id)}.png?n=${n++}`;
    };
    img.addEventListener('load', () => {
      status.textContent = '';
      timer = window.setTimeout(load, REFRESH_MS);
    });
    img.addEventListener('error', () => {
      status.textContent = 'no picture from this display';
      timer = window.setTimeout(load, RETRY_MS);
    });
    this.#wireInput(box, img, d);
    load();
    this.element.append(element);
    this.#screens.set(d.id, {
      element,
      width: d.width,
      height: d.height,
      stop: () => {
        stopped = true;
        window.clearTimeout(timer);
      },
    });
  }

  /** Pointer → touch in display pixels; keys while focused. Only when the VM takes input. */
  #wireInput(box: HTMLElement, img: HTMLImageElement, d: PageDisplay): void {
    const at = (e: PointerEvent): { x: number; y: number } => {
      const r = img.getBoundingClientRect();
      const clamp = (v: number, max: number): number => Math.min(max - 1, Math.max(0, Math.floor(v)));
      return { x: clamp(((e.clientX - r.left) / r.width) * d.width, d.width), y: clamp(((e.clientY - r.top) / r.height) * d.height, d.height) };
    };
    let down = false;
    let moveQueued: PointerEvent | undefined;
    box.addEventListener('pointerdown', (e) => {
      if (!this.#input || e.button !== 0) return;
      e.preventDefault();
      box.focus();
      box.setPointerCapture(e.pointerId);
      down = true;
      this.#send(this.#vm, d.id, { type: 'touch', action: 'down', ...at(e) });
    });
    box.addEventListener('pointermove', (e) => {
      if (!down) return;
      // At most one move per frame: a drag must not flood the socket.
      if (moveQueued === undefined) {
        requestAnimationFrame(() => {
          if (moveQueued !== undefined && down) this.#send(this.#vm, d.id, { type: 'touch', action: 'move', ...at(moveQueued) });
          moveQueued = undefined;
        });
      }
      moveQueued = e;
    });
    const up = (e: PointerEvent): void => {
      if (!down) return;
      down = false;
      moveQueued = undefined;
      this.#send(this.#vm, d.id, { type: 'touch', action: 'up', ...at(e) });
    };
    box.addEventListener('pointerup', up);
    box.addEventListener('pointercancel', up);
    const key = (action: 'down' | 'up') => (e: KeyboardEvent) => {
      if (!this.#input || !/^[A-Za-z0-9]{1,32}$/.test(e.code)) return;
      e.preventDefault();
      if (action === 'down' && e.repeat) return;
      this.#send(this.#vm, d.id, { type: 'key', action, code: e.code });
    };
    box.addEventListener('keydown', key('down'));
    box.addEventListener('keyup', key('up'));
  }
}
