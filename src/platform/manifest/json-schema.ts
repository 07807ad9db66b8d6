// SPDX-License-Identifier: Apache-2.0
/**
 * The JSON Schema of the platform manifest, generated from the zod schema (schema.ts), so that the
 * file editors use and the parser avp uses are one definition. scripts/gen-schema.mjs writes it to
 * share/schema/avp-platform.schema.json after each build; a test fails when that file is stale.
 *
 * Editors (VS Code with the YAML extension, anything using yaml-language-server) pick it up from
 * the first line of a manifest:
 *   # yaml-language-server: $schema=../share/schema/avp-platform.schema.json
 */
import { z } from 'zod';
import { PlatformManifestSchema } from './schema.js';

/** Where the schema is published in the package, relative to the package root. */
export const MANIFEST_SCHEMA_PATH = 'share/schema/avp-platform.schema.json';
/** The schema's `$id`. */
export const MANIFEST_SCHEMA_ID = 'https://avp.invalid/schema/avp-platform.schema.json';

/**
 * The schema of what users write (`io: 'input'`: keys with defaults are optional). Checks that
 * JSON Schema cannot express (unique names, known switches...) are avp validate's alone.
 */
export function manifestJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(PlatformManifestSchema, { io: 'input', target: 'draft-2020-12' });
  const { $schema, ...rest } = generated;
  return { $schema, $id: MANIFEST_SCHEMA_ID, ...rest };
}

/** The schema file's exact text: 2-space JSON and a final newline. */
export function manifestJsonSchemaText(): string {
  return `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
}
