#!/usr/bin/env node
// Writes share/schema/avp-platform.schema.json from the zod manifest schema (compiled to dist/).
// Run by `npm run build`; src/platform/manifest/json-schema.test.ts fails when the file is stale.
//   --check   exit 1 (and change nothing) when the file differs from what would be written
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { MANIFEST_SCHEMA_PATH, manifestJsonSchemaText } = await import(new URL('../dist/platform/manifest/json-schema.js', import.meta.url).href);
const target = `${root}${MANIFEST_SCHEMA_PATH}`;
const text = manifestJsonSchemaText();
let current = '';
try {
  current = readFileSync(target, 'utf8');
} catch {
  // not written yet
}
if (process.argv.includes('--check')) {
  if (current !== text) {
    console.error(`gen-schema: ${MANIFEST_SCHEMA_PATH} is stale; run npm run build`);
    process.exit(1);
  }
} else if (current !== text) {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  console.error(`gen-schema: wrote ${MANIFEST_SCHEMA_PATH}`);
}
