// SPDX-License-Identifier: Apache-2.0
/**
 * The files the dashboard serves: the page (share/ui: index.html, style.css; dist/ui-web/page:
 * the page's scripts, compiled by `tsc -p src/ui/page`), and the HTML reports found in the report
 * folders. Only names from a fixed list, or `*.html` files directly in a report folder, are ever
 * read, so no URL can reach another file.
 *
 * Owns: those lists and paths. Does not own: serving (server.ts).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PageReport } from './wire.js';

/** <package>/share/ui (this file is <package>/dist/ui/assets.js). */
const SHARE_UI = fileURLToPath(new URL('../../share/ui/', import.meta.url));
/** <package>/dist/ui-web/page: the page's compiled scripts. */
const PAGE_JS = fileURLToPath(new URL('../ui-web/page/', import.meta.url));

/** Page files by URL name: where each is and its type. */
export const PAGE_FILES: ReadonlyMap<string, { path: string; type: string }> = new Map([
  ['', { path: join(SHARE_UI, 'index.html'), type: 'text/html; charset=utf-8' }],
  ['style.css', { path: join(SHARE_UI, 'style.css'), type: 'text/css; charset=utf-8' }],
  ...['app.js', 'charts.js', 'panels.js', 'screens.js', 'dom.js'].map((f) => [f, { path: join(PAGE_JS, f), type: 'text/javascript; charset=utf-8' }] as const),
]);

/** A report file name the dashboard serves: letters, digits, `.`, `_`, `-`, ending in .html. */
const REPORT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}\.html$/;
/** Reports listed per folder at most. */
const MAX_REPORTS = 100;

/** The HTML reports in `dirs` (folder i's files at `reports/<i>/<name>`), newest first per folder. */
export function listReports(dirs: readonly string[]): PageReport[] {
  return dirs.flatMap((dir, i) => {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => REPORT_NAME.test(n));
    } catch {
      return []; // no such folder (yet): no reports
    }
    const files = names.flatMap((name) => {
      try {
        const st = statSync(join(dir, name));
        return st.isFile() ? [{ name, mtime: st.mtimeMs }] : [];
      } catch {
        return [];
      }
    });
    files.sort((a, b) => b.mtime - a.mtime);
    return files.slice(0, MAX_REPORTS).map((f) => ({ name: f.name, href: `reports/${i}/${encodeURIComponent(f.name)}` }));
  });
}

/** The file behind `reports/<index>/<name>`, or undefined when that names none the dashboard serves. */
export function reportPath(dirs: readonly string[], index: string, name: string): string | undefined {
  const dir = /^\d{1,3}$/.test(index) ? dirs[Number(index)] : undefined;
  if (dir === undefined || !REPORT_NAME.test(name)) return undefined;
  return join(dir, name);
}
