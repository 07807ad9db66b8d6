// SPDX-License-Identifier: Apache-2.0
/**
 * Device options, written once per kind as a zod object, and everything derived from it: the
 * field builders kinds use (so every integer option says its bounds the same way), the
 * `avp serve` flags (`numQueues` → `--num-queues <n>`), parsing command-line strings into typed
 * options with errors that name the flag, parsing plain data (manifests, worker messages) with
 * errors that name the key, and the reverse: options → `avp serve` argv (isolation: process).
 *
 * Owns: the camelCase ↔ `--kebab` rule, the string → value coercions, `DeviceOptionError`.
 * Does not own: any kind's options (devices/<name>/kind.ts), commander (cli/ adds the flags it
 * gets from `cliFlags`), the manifest entry (platform/manifest builds it from `kind.manifest`).
 */
import { z } from 'zod';
import { DeviceOptionError } from './errors.js';
import type { DeviceKind, OptionsSchema } from './kind.js';

// ---------------------------------------------------------------------------------------------
// Field builders

/** An integer option from `min` to `max`. */
export function intField(min: number, max: number, description: string) {
  const expected = `expected an integer from ${min} to ${max}`;
  return z.number({ error: expected }).int({ error: expected }).min(min, { error: expected }).max(max, { error: expected }).meta({ description });
}

/** A boolean option (a bare flag on the command line). */
export function boolField(description: string) {
  return z.boolean({ error: 'expected true or false' }).meta({ description });
}

/** A file-system path: non-empty, no line breaks or NUL. */
export function pathField(description: string) {
  return z
    .string({ error: 'expected a path (a string)' })
    .min(1, { error: 'expected a path, got an empty string' })
    .regex(/^[^\n\r\0]*$/, { error: 'expected a path without line breaks or NUL' })
    .meta({ description });
}

/** A string matching `re`, with `expected` as the message. */
export function stringField(re: RegExp, expected: string, description: string) {
  return z.string({ error: expected }).regex(re, { error: expected }).meta({ description });
}

/** One of `values`. */
export function enumField<const T extends readonly [string, ...string[]]>(values: T, description: string) {
  return z.enum(values, { error: `expected ${values.map((v) => `'${v}'`).join(' or ')}` }).meta({ description });
}

/**
 * A size with a unit: digits, optional spaces, K/M/G/T with optional i and B, any case; binary
 * multiples. No `i` flag: the pattern also goes into the JSON Schema, whose patterns take no flags.
 */
export const SIZE_WITH_UNIT_RE = /^(\d+)\s*([KMGTkmgt])(?:[iI]?[bB])?$/;

const UNIT_SHIFT: Readonly<Record<string, number>> = { K: 10, M: 20, G: 30, T: 40 };

/** Bytes of a size string with a unit, or undefined when `text` is not one (or is not exact). */
export function sizeStringBytes(text: string): number | undefined {
  const m = SIZE_WITH_UNIT_RE.exec(text.trim());
  if (m === null) return undefined;
  // Both groups take part in every match of SIZE_WITH_UNIT_RE.
  const bytes = Number(m[1] as string) * 2 ** (UNIT_SHIFT[(m[2] as string).toUpperCase()] as number);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size: bytes as a number, or a string with a unit (`64M`). */
export function sizeField(description: string) {
  const expected = 'expected a size in bytes or with a unit, such as 64M or 1G';
  return z.union([z.number().int().min(1), z.string().regex(SIZE_WITH_UNIT_RE, { error: expected })], { error: expected }).meta({ description });
}

/** Bytes of a size field's value: a number is bytes; a string needs a unit. */
export function sizeBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  return typeof value === 'string' ? sizeStringBytes(value) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Introspection

/** What a field is, under its optional/default wrappers. */
interface FieldInfo {
  base: 'number' | 'boolean' | 'string' | 'array' | 'other';
  /** For arrays: the element's base. */
  element?: FieldInfo['base'];
  defaultValue?: unknown;
  description?: string;
  /** False for fields that are not command-line flags (`meta({ cli: false })`). */
  cli: boolean;
}

type AnySchema = z.ZodType & { def: { type: string; innerType?: AnySchema; element?: AnySchema; defaultValue?: unknown } };

function baseOf(t: string): FieldInfo['base'] {
  return t === 'number' || t === 'boolean' || t === 'string' || t === 'array' ? t : t === 'enum' ? 'string' : 'other';
}

/** Unwraps optional/default/pipe layers, collecting the default and the first description. */
export function fieldInfo(field: z.ZodType): FieldInfo {
  // Safe: every zod v4 schema has `def.type`; the other members are read only when present.
  let s = field as AnySchema;
  let description: string | undefined;
  let cli = true;
  let defaultValue: unknown;
  for (let depth = 0; depth < 8; depth++) {
    const meta = z.globalRegistry.get(s) as { description?: string; cli?: boolean } | undefined;
    if (description === undefined && typeof meta?.description === 'string') description = meta.description;
    if (meta?.cli === false) cli = false;
    if (s.def.type === 'default') defaultValue = s.def.defaultValue;
    if ((s.def.type === 'optional' || s.def.type === 'default' || s.def.type === 'nullable') && s.def.innerType !== undefined) {
      s = s.def.innerType;
      continue;
    }
    break;
  }
  const base = baseOf(s.def.type);
  const info: FieldInfo = { base, cli };
  if (base === 'array' && s.def.element !== undefined) info.element = baseOf(s.def.element.def.type);
  if (defaultValue !== undefined) info.defaultValue = defaultValue;
  if (description !== undefined) info.description = description;
  return info;
}

/** `numQueues` → `--num-queues`. */
export function optionFlag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

// ---------------------------------------------------------------------------------------------
// Command line

/** One commander option: flags (`--num-queues <n>`, `--no-discard`), description, the option key. */
export interface CliFlag {
  readonly key: string;
  readonly flags: string;
  readonly description: string;
}

/** The `avp serve` flags of a kind's options, in schema order. */
export function cliFlags(schema: OptionsSchema): CliFlag[] {
  const out: CliFlag[] = [];
  for (const [key, field] of Object.entries(schema.shape)) {
    const info = fieldInfo(field as z.ZodType);
    if (!info.cli) continue;
    const flag = optionFlag(key);
    const description = info.description ?? key;
    if (info.base === 'boolean') {
      // A boolean that defaults to true is switched off: commander's --no-X sets X to false.
      out.push(info.defaultValue === true ? { key, flags: `--no-${flag.slice(2)}`, description } : { key, flags: flag, description });
      continue;
    }
    const placeholder = flag.slice(2).split('-').pop() ?? 'value';
    const dflt = info.defaultValue === undefined ? '' : ` (default ${String(info.defaultValue)})`;
    out.push({ key, flags: info.base === 'array' ? `${flag} <${placeholder}...>` : `${flag} <${placeholder}>`, description: `${description}${dflt}` });
  }
  return out;
}

/**
 * Command-line values (strings, string arrays and booleans, as commander gives them) → values of
 * the schema's types: numbers parsed, lists split at commas. Keys not in the schema are kept as
 * they are (the parse then names them).
 */
export function coerceCliValues(schema: OptionsSchema, raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const field = schema.shape[key] as z.ZodType | undefined;
    if (field === undefined) {
      out[key] = value;
      continue;
    }
    const info = fieldInfo(field);
    if (info.base === 'number') out[key] = toNumber(value);
    else if (info.base === 'array') {
      const items = (Array.isArray(value) ? (value as unknown[]) : [value]).flatMap((v) => (typeof v === 'string' && info.element !== 'string' ? v.split(/[,\s]+/).filter((p) => p !== '') : [v]));
      out[key] = info.element === 'number' ? items.map(toNumber) : items;
    } else out[key] = value;
  }
  return out;
}

function toNumber(v: unknown): unknown {
  if (typeof v !== 'string' || v.trim() === '') return v;
  const n = Number(v);
  return Number.isNaN(n) ? v : n;
}

/** Where options came from: names in errors are flags for the command line, keys otherwise. */
export type OptionSource = 'cli' | 'data';

/**
 * Parses options against the kind's schema, defaults applied.
 * @throws DeviceOptionError DEVICE_BAD_OPTION naming the first bad option (`--num-queues: expected
 *   an integer from 1 to 1024, got 0`), or DEVICE_UNKNOWN_OPTION.
 */
export function parseOptions(kind: Pick<DeviceKind, 'name' | 'options'>, raw: Readonly<Record<string, unknown>>, source: OptionSource = 'data'): Record<string, unknown> {
  const input = source === 'cli' ? coerceCliValues(kind.options, raw) : raw;
  const strict = kind.options.strict();
  const r = strict.safeParse(input);
  if (r.success) return r.data as Record<string, unknown>;
  // Safe: a failed parse has at least one issue.
  const issue = r.error.issues[0]!;
  const name = (key: string) => (source === 'cli' ? optionFlag(key) : key);
  if (issue.code === 'unrecognized_keys') {
    const known = Object.keys(kind.options.shape).map(name).join(', ');
    throw new DeviceOptionError('DEVICE_UNKNOWN_OPTION', `unknown option ${issue.keys.map(name).join(', ')} for ${kind.name}; known: ${known}`);
  }
  const key = String(issue.path[0] ?? '');
  let got: unknown = input;
  for (const seg of issue.path) got = typeof got === 'object' && got !== null ? (got as Record<PropertyKey, unknown>)[seg as PropertyKey] : undefined; // checked: an object
  const at = issue.path.length > 1 ? `${name(key)}[${issue.path.slice(1).join('.')}]` : name(key);
  throw new DeviceOptionError('DEVICE_BAD_OPTION', `${at}: ${issue.message}, got ${JSON.stringify(got) ?? String(got)}`);
}

/**
 * Options → `avp serve` flags, the inverse of parsing them: `true` is a bare flag (or left out
 * when it is the default), `false` becomes `--no-x` for options defaulting to true and is left out
 * otherwise, lists are joined with commas.
 * @throws DeviceOptionError DEVICE_UNKNOWN_OPTION for a key the kind has no flag for.
 */
export function toServeFlags(kind: Pick<DeviceKind, 'name' | 'options'>, options: Readonly<Record<string, unknown>>): string[] {
  const argv: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const field = kind.options.shape[key] as z.ZodType | undefined;
    const info = field === undefined ? undefined : fieldInfo(field);
    if (info === undefined || !info.cli) throw new DeviceOptionError('DEVICE_UNKNOWN_OPTION', `avp serve ${kind.name} has no ${optionFlag(key)} option for '${key}'`);
    const flag = optionFlag(key);
    if (info.base === 'boolean') {
      if (value === info.defaultValue || (value === false && info.defaultValue === undefined)) continue;
      argv.push(value === false ? `--no-${flag.slice(2)}` : flag);
    } else if (Array.isArray(value)) {
      if (value.length > 0) argv.push(flag, value.map(String).join(','));
    } else argv.push(flag, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));
  }
  return argv;
}
