// SPDX-License-Identifier: Apache-2.0
/**
 * The import-boundary rule (eslint.config.js + scripts/layers.mjs) fails on upward imports and
 * passes downward ones. Runs ESLint on in-memory sources placed at real layer paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function lint(path: string, source: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(source, { filePath: `${root}${path}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const cases: Array<[string, string, string | null]> = [
  ['src/devices/rng/x.ts', "import { a } from '../../vhost-user/backend.js';", "layer 'devices' must not import layer 'vhost-user'"],
  ['src/devices/rng/x.ts', "import type { a } from '../../sys/libc.js';", "layer 'devices' must not import layer 'sys'"],
  ['src/devices/rng/x.ts', "export { a } from '../../platform/run.js';", "layer 'devices' must not import layer 'platform'"],
  ['src/memory/x.ts', "import { a } from '../queue/split.js';", "layer 'memory' must not import layer 'queue'"],
  ['src/spec/x.ts', "import { a } from '../memory/index.js';", "layer 'spec' must not import layer 'memory'"],
  ['src/queue/x.ts', "import { a } from '../device/index.js';", "layer 'queue' must not import layer 'device'"],
  ['src/vhost-user/x.ts', "import { a } from '../devices/rng/index.js';", "layer 'vhost-user' must not import layer 'devices'"],
  ['src/devices/rng/x.ts', "import { a } from '../../queue/index.js';", null],
  ['src/devices/rng/x.ts', "import { a } from '../../device/index.js';", null],
  ['src/vhost-user/x.ts', "import { a } from '../sys/index.js';", null],
  ['src/cli/x.ts', "import { a } from '../vhost-user/index.js';", null],
  ['src/ui/x.ts', "import { a } from '../vhost-user/index.js';", "layer 'ui' must not import layer 'vhost-user'"],
  ['src/ui/x.ts', "import { a } from '../platform/run/index.js';", null],
  ['src/platform/x.ts', "import { a } from '../ui/server.js';", "layer 'platform' must not import layer 'ui'"],
];

for (const [path, source, expected] of cases) {
  test(`import boundary: ${path}: ${source}`, async () => {
    const messages = await lint(path, source);
    if (expected === null) assert.deepEqual(messages, []);
    else assert.ok(messages.some((m) => m.includes(expected)), `expected "${expected}", got ${JSON.stringify(messages)}`);
  });
}
