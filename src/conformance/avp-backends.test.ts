// SPDX-License-Identifier: Apache-2.0
/**
 * The whole conformance catalog against AVP's own back-ends, every device kind of the registry
 * and each of its conformance set-ups (`kind.conformanceSetups`), started as real programs
 * (`avp serve <kind> --socket-path ...`). Every verdict must be the one recorded in the kind's
 * expected-verdict file (devices/<kind>/*.expected.txt), and those files may hold only PASS,
 * REJECT and SKIP: our back-ends never FAIL, WEDGE or CRASH. Files the set-up names are filled
 * with a pattern first and must hold it again at the end (checks restore what they write).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEVICE_KINDS } from '../devices/registry.js';
import { toServeFlags } from '../devices/options.js';
import { parseExpected } from './expected.js';
import { kindExpectedFile, runAgainstExpected, withScratch } from './testing.js';

const AVP = [process.execPath, fileURLToPath(new URL('../../bin/avp.js', import.meta.url))];

/** One shell word (the spawn helper runs the command through sh). */
const sh = (w: string): string => (/^[A-Za-z0-9_/.,:=+@%-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`);

for (const kind of DEVICE_KINDS) {
  for (const setup of kind.conformanceSetups) {
    test(`expected file ${kind.name}/${setup.expected} allows only PASS, REJECT and SKIP`, () => {
      const file = kindExpectedFile(kind.name, setup.expected);
      for (const [id, e] of parseExpected(readFileSync(file, 'utf8'), file.pathname)) assert.ok(['PASS', 'REJECT', 'SKIP'].includes(e.verdict), `${id} ${e.verdict}`);
    });

    test(`conformance: avp serve ${kind.name} (${setup.label})`, async (t) => {
      const scratch = mkdtempSync(join(tmpdir(), 'avp-conf-'));
      t.after(() => rmSync(scratch, { recursive: true, force: true }));
      const files = Object.entries(setup.files ?? {}).map(([name, size]) => {
        const path = join(scratch, name);
        writeFileSync(path, Buffer.alloc(size, 0x3c));
        return path;
      });
      const before = files.map((f) => readFileSync(f));
      const options = withScratch(setup.options, scratch);
      const command = [...AVP, 'serve', kind.name, '--socket-path', '{socket}', ...toServeFlags(kind, options)].map((w) => (w === '{socket}' ? w : sh(w))).join(' ');
      const { report, problems } = await runAgainstExpected(kind.name, command, kindExpectedFile(kind.name, setup.expected));
      assert.deepEqual(problems, []);
      assert.equal(report.failed, 0);
      files.forEach((f, i) => assert.ok(readFileSync(f).equals(before[i] ?? Buffer.alloc(0)), `${f}: every byte a check wrote was written back`));
    });
  }
}

