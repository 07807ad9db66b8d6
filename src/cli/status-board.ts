// SPDX-License-Identifier: Apache-2.0
/**
 * A status table kept at the bottom of a terminal and redrawn in place, with ordinary output
 * scrolling above it (`avp run` on a TTY). Plain ANSI: cursor up N lines, clear to the end of the
 * screen, print. Rows are cut to the terminal width so that none wraps (a wrapped row would break
 * the line count the redraw relies on).
 */

const CSI = '\x1b[';

export class StatusBoard {
  readonly #out: NodeJS.WriteStream;
  readonly #render: () => string[];
  #drawn = 0;
  #stopped = false;

  constructor(out: NodeJS.WriteStream, render: () => string[]) {
    this.#out = out;
    this.#render = render;
  }

  /** Writes `text` (whole lines) to `stream` above the table. */
  print(stream: NodeJS.WritableStream, text: string): void {
    this.#clear();
    stream.write(text);
    this.#draw();
  }

  /** Redraws the table with fresh content. */
  refresh(): void {
    this.#clear();
    this.#draw();
  }

  /** Removes the table for good. */
  stop(): void {
    this.#clear();
    this.#stopped = true;
  }

  #clear(): void {
    if (this.#drawn > 0) this.#out.write(`${CSI}${this.#drawn}A${CSI}J`);
    this.#drawn = 0;
  }

  #draw(): void {
    if (this.#stopped) return;
    // A pseudo-terminal without a size reports 0 columns: assume a common width then.
    const columns = this.#out.columns > 0 ? this.#out.columns : 120;
    const width = Math.max(20, columns - 1);
    const rows = this.#render().map((r) => (r.length > width ? `${r.slice(0, width - 1)}…` : r));
    if (rows.length === 0) return;
    this.#out.write(`${CSI}2m${rows.join('\n')}${CSI}0m\n`);
    this.#drawn = rows.length;
  }
}
