// SPDX-License-Identifier: Apache-2.0
/**
 * Setting up a run directory before anything starts: its folders, the run log, and the sparse blk
 * images the plan asks for (an existing image is used as it is).
 *
 * Owns: those file-system steps and their errors. Does not own: the layout (plan.ts), reporting
 * (the supervisor says what was created).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { RunDirError } from '../errors.js';
import type { PlatformPlan } from '../manifest/plan.js';

/** Creates the plan's folders and opens the run log for appending. @throws RunDirError */
export async function createRunDir(plan: PlatformPlan): Promise<WriteStream> {
  try {
    for (const dir of plan.dirs) await mkdir(dir, { recursive: true });
  } catch (e: unknown) {
    throw new RunDirError(`cannot create the run directory ${plan.runDir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e }); // fs errors carry a code
  }
  const log = createWriteStream(plan.runLog, { flags: 'a' });
  log.on('error', () => {}); // a full disk must not end the run; the terminal still shows everything
  return log;
}

/** Creates the blk images that do not exist yet; resolves with those it created. @throws RunDirError */
export async function createDisks(plan: PlatformPlan): Promise<PlatformPlan['disks']> {
  const created: PlatformPlan['disks'] = [];
  for (const disk of plan.disks) {
    let handle;
    try {
      handle = await open(disk.path, 'wx', 0o644);
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue; // an existing image is used as it is
      throw new RunDirError(`cannot create the blk image ${disk.path} (${disk.owner}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
    try {
      await handle.truncate(disk.sizeBytes); // sparse: takes no space until the guest writes
    } finally {
      await handle.close();
    }
    created.push(disk);
  }
  return created;
}
