// SPDX-License-Identifier: Apache-2.0
/**
 * The JSON Schema shipped in share/schema/ is the one generated from the zod schema (a stale
 * file fails here: run `npm run build`), and it describes what editors need: strict objects,
 * the device kinds, defaults, size patterns that take lower case too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEVICE_KINDS } from '../../devices/registry.js';
import { MANIFEST_SCHEMA_PATH, manifestJsonSchema, manifestJsonSchemaText } from './json-schema.js';

test(`${MANIFEST_SCHEMA_PATH} is up to date (else run npm run build, or node scripts/gen-schema.mjs)`, () => {
  const file = fileURLToPath(new URL(`../../../${MANIFEST_SCHEMA_PATH}`, import.meta.url));
  assert.equal(readFileSync(file, 'utf8'), manifestJsonSchemaText(), `${MANIFEST_SCHEMA_PATH} is stale: run npm run build`);
});

test('the schema: root keys, required ones, no extra keys, device kinds', () => {
  const s = manifestJsonSchema() as {
    $schema: string;
    title: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, { items?: { properties?: Record<string, { items?: { oneOf?: Array<{ properties: { kind: { const: string } } }> } }> } }>;
  };
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(s.title, 'AVP platform manifest');
  assert.deepEqual(s.required, ['name', 'vms']);
  assert.equal(s.additionalProperties, false);
  const kinds = s.properties['vms']?.items?.properties?.['devices']?.items?.oneOf?.map((o) => o.properties.kind.const);
  assert.deepEqual(kinds, DEVICE_KINDS.map((k) => k.name));
});

test('the size pattern works without regex flags (JSON Schema has none)', () => {
  const text = manifestJsonSchemaText();
  const m = /"pattern": "(\^\(\\\\d\+\)[^"]*)"/.exec(text);
  assert.ok(m?.[1] !== undefined, 'a size pattern is in the schema');
  const re = new RegExp(JSON.parse(`"${m[1]}"`) as string);
  for (const ok of ['256M', '1g', '512MiB', '64 mb']) assert.match(ok, re);
  for (const bad of ['1.5G', '12345', 'M']) assert.doesNotMatch(bad, re);
});
