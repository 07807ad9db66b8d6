// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture: runs the whole catalog for a device against a back-end command and compares the
 * verdicts with a checked-in expected-verdict file (devices/<kind>/*.expected.txt for AVP's
 * back-ends, conformance/expected/*.txt for third-party ones). The back-end is
 * always stopped and its directory removed, pass or fail.
 */
import { readFileSync } from 'node:fs';
import { catalogFor, fullCatalog } from './catalog.js';
import { conformanceFor } from './devices.js';
import { compareExpected, parseExpected } from './expected.js';
import { runConformance, spawnedTarget, type ConformanceReport } from './runner.js';
import { SpawnedBackend } from '../vhost-user/spawn.js';

/** A checked-in expected-verdict file of a third-party back-end (conformance/expected/, in the source tree next to dist/). */
export function expectedFile(name: string): URL {
  return new URL(`../../src/conformance/expected/${name}`, import.meta.url);
}

/** The expected-verdict file `name` of AVP's own back-end of a kind, beside the device (devices/<kind>/). */
export function kindExpectedFile(kind: string, name: string): URL {
  return new URL(`../../src/devices/${kind}/${name}`, import.meta.url);
}

/**
 * A conformance set-up's options with `{scratch}` replaced by `dir` in every string value, list
 * items included (`eeprom: ['0x50={scratch}/eeprom.bin']`).
 */
export function withScratch(options: Readonly<Record<string, unknown>>, dir: string): Record<string, unknown> {
  const sub = (v: unknown): unknown => (typeof v === 'string' ? v.replaceAll('{scratch}', dir) : Array.isArray(v) ? v.map(sub) : v);
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [k, sub(v)]));
}

export interface ExpectedRun {
  readonly report: ConformanceReport;
  /** Differences from the expected file; empty when every verdict is as recorded. */
  readonly problems: string[];
}

export async function runAgainstExpected(device: string, command: string, expected: URL, timeoutMs = 3000): Promise<ExpectedRun> {
  const want = parseExpected(readFileSync(expected, 'utf8'), expected.pathname);
  const backend = await SpawnedBackend.start(command);
  try {
    const conf = conformanceFor(device);
    const report = await runConformance({ device: conf, checks: catalogFor(conf), target: spawnedTarget(backend), timeoutMs });
    return { report, problems: compareExpected(report.results, want, fullCatalog().map((c) => c.id)) };
  } finally {
    await backend.stop();
  }
}
