// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture for the runner's unit tests (supervisor, control, watchdog): a stand-in QEMU (a
 * small Node program written as an executable into a temp folder) and plans of manifests whose
 * files need not exist, each into a fresh run directory under that folder.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../../manifest/load.js';
import { planPlatform, type PlatformPlan } from '../../manifest/plan.js';

/**
 * Makes a temp folder `<tmp>/<prefix>XXXXXX` holding `source` (a Node program) as the executable
 * `stand-in-vm` (not named *qemu*: pgrep qemu must find only real ones). The caller removes `dir`.
 */
export async function standInQemu(prefix: string, source: string): Promise<{ dir: string; fake: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const fake = join(dir, 'stand-in-vm');
  await writeFile(fake, `#!${process.execPath}\n${source}`);
  await chmod(fake, 0o755);
  return { dir, fake };
}

let runs = 0;

/** Plans `yaml` (relative paths from `dir`, no file checks) into a fresh run directory in `dir`. */
export function planIn(dir: string, yaml: string): PlatformPlan {
  const r = parseManifest(yaml, { baseDir: dir, fileExists: () => true });
  assert.deepEqual(r.issues, []);
  assert.ok(r.model !== undefined);
  return planPlatform(r.model, { runDir: join(dir, `run${++runs}`), image: { kernel: '/nonexistent/vmlinuz', initramfs: '/nonexistent/initrd' } });
}
