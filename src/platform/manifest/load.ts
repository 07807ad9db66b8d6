// SPDX-License-Identifier: Apache-2.0
/**
 * Reading a platform manifest: YAML (or JSON, which is YAML) → schema → checks → model, with every
 * problem reported at its line and column.
 *
 * Owns: the YAML parse (yaml's parseDocument + LineCounter keeps each node's source range), the
 * mapping of zod issues and check issues to those ranges, and the wording of schema errors
 * (`expected ...; got ...`, `missing; expected ...`, one error per unknown key at that key).
 * Does not own: the rules themselves (schema.ts, checks.ts).
 *
 * Every problem is collected before returning; nothing here throws for bad input. YAML syntax
 * errors stop there (the schema is not run on a document that did not parse).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ManifestInvalidError, ManifestReadError, type ManifestIssue } from '../errors.js';
import { checkFiles, checkManifest, formatPath, toModel, type CheckContext, type IssuePath, type PlatformModel, type RawIssue } from './checks.js';
import { checkFrontends, type FrontendContext } from './frontends.js';
import { PlatformManifestSchema, type PlatformManifest } from './schema.js';
import { errorText } from '../../errors.js';

export interface ManifestLoadResult {
  /** Every problem, in file order; empty when the manifest is valid. */
  issues: ManifestIssue[];
  /** The parsed manifest (defaults applied) when the schema accepted it. */
  manifest?: PlatformManifest;
  /** The normalized platform when there are no issues at all. */
  model?: PlatformModel;
}

export interface ParseManifestOptions extends Partial<CheckContext> {
  /** Skip the file checks (kernel, initrd, blk images): for tools that only read the layout. */
  skipFileChecks?: boolean;
  /** Also refuse devices this QEMU cannot attach (frontends.ts). */
  frontends?: FrontendContext;
}

/**
 * Parses and checks manifest text. `baseDir` (relative paths in the manifest start there)
 * defaults to the current folder. Never throws for bad input.
 */
export function parseManifest(text: string, options: ParseManifestOptions = {}): ManifestLoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: false });
  const pos = (offset: number): { line: number; col: number } => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const at = pos(e.pos[0]);
      // yaml says only "Map keys must be unique"; name the key, which starts where it points.
      const key = e.code === 'DUPLICATE_KEY' ? /^[^:\n]*/.exec(text.slice(e.pos[0]))?.[0]?.trim() : undefined;
      return { path: '(syntax)', ...at, message: key ? `duplicate key '${key}' in this mapping` : yamlMessage(e.message) };
    });
    return { issues: sortIssues(issues) };
  }
  // yaml's own limit on alias expansion protects against "billion laughs" documents.
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e: unknown) {
    return { issues: [{ path: '(syntax)', line: 1, col: 1, message: errorText(e) }] };
  }
  if (data === null || data === undefined) {
    return { issues: [{ path: '(root)', line: 1, col: 1, message: 'the file is empty; expected a platform manifest (a mapping with name: and vms:)' }] };
  }
  const place = (raw: RawIssue): ManifestIssue => ({ path: formatPath(raw.path), ...pos(nodeOffset(doc, raw.path, raw.at ?? 'value')), message: raw.message });

  const parsed = PlatformManifestSchema.safeParse(data);
  if (!parsed.success) return { issues: sortIssues(parsed.error.issues.flatMap((iss) => zodIssues(iss, data)).map(place)) };
  const manifest = parsed.data;
  const ctx: CheckContext = { baseDir: options.baseDir ?? process.cwd(), ...(options.fileExists === undefined ? {} : { fileExists: options.fileExists }) };
  const raw = checkManifest(manifest);
  if (options.skipFileChecks !== true) raw.push(...checkFiles(manifest, ctx));
  if (options.frontends !== undefined) raw.push(...checkFrontends(manifest, options.frontends));
  const issues = sortIssues(raw.map(place));
  return issues.length > 0 ? { issues, manifest } : { issues, manifest, model: toModel(manifest, ctx) };
}

/**
 * Reads and checks a manifest file; relative paths in it start at its folder.
 * @throws ManifestReadError when the file cannot be read; ManifestInvalidError listing every
 *   problem when it is not valid.
 */
export async function loadManifestFile(file: string, options: Omit<ParseManifestOptions, 'baseDir'> = {}): Promise<{ manifest: PlatformManifest; model: PlatformModel }> {
  const text = await readManifestText(file);
  const result = parseManifest(text, { ...options, baseDir: dirname(resolve(file)) });
  if (result.model === undefined || result.manifest === undefined) throw new ManifestInvalidError(file, result.issues);
  return { manifest: result.manifest, model: result.model };
}

/** The manifest's text. @throws ManifestReadError naming the reason. */
export async function readManifestText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e: unknown) {
    const code = (e as NodeJS.ErrnoException).code; // fs errors carry an errno code
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : String(code ?? e);
    throw new ManifestReadError(file, reason, { cause: e });
  }
}

function sortIssues(issues: ManifestIssue[]): ManifestIssue[] {
  // Array.prototype.sort is stable: issues at one position keep the order they were found in.
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** yaml's messages without the trailing position it adds when prettyErrors is on (it is off). */
function yamlMessage(message: string): string {
  return message.split('\n')[0] ?? message;
}

// ---------------------------------------------------------------------------------------------
// zod issues → raw issues with our wording

type ZodIssue = z.core.$ZodIssue;

function zodIssues(iss: ZodIssue, data: unknown): RawIssue[] {
  const path: IssuePath = iss.path.map((s) => (typeof s === 'symbol' ? String(s) : s));
  if (iss.code === 'unrecognized_keys') {
    return iss.keys.map((key) => ({ path: [...path, key], message: `unknown key '${key}'; ${iss.message}`, at: 'key' as const }));
  }
  const present = valueAt(data, path);
  if (!present.found || present.value === undefined) {
    return [{ path, message: `missing; ${iss.message}` }];
  }
  return [{ path, message: /\bgot\b/.test(iss.message) ? iss.message : `${iss.message}; got ${describe(present.value)}` }];
}

function valueAt(data: unknown, path: IssuePath): { found: boolean; value?: unknown } {
  let v: unknown = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, seg)) return { found: false };
    v = (v as Record<string | number, unknown>)[seg]; // objects and arrays from YAML index by key
  }
  return { found: true, value: v };
}

/** A value as a message shows it: strings quoted (shortened), lists and mappings by kind. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Positions

/**
 * The source offset of the node at `path`: its value (or, with `at: 'key'`, its key). When the
 * path goes past what the document has (a missing key), the deepest node that exists.
 */
function nodeOffset(doc: Document, path: IssuePath, at: 'key' | 'value'): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return offset;
      if (last && at === 'key') return rangeStart(pair.key) ?? offset;
      // `key:` with nothing after it has no value node; the key is the place to point at.
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) return offset;
      node = item;
    } else {
      return offset;
    }
    offset = rangeStart(node) ?? offset;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range; // every yaml node has range [start, valueEnd, nodeEnd]
  return range?.[0];
}
