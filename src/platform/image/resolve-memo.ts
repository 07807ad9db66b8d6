// SPDX-License-Identifier: Apache-2.0
/**
 * A memo of package resolution, so that an image already in the cache is found without asking
 * apt: each `apt-cache` call loads apt's whole package cache (2-3 s on a loaded machine), and
 * every e2e test and every `avp run` asks for the image again.
 *
 * Owns: the apt state fingerprint (the names, sizes and mtimes of the files in apt's lists folder
 * and of dpkg's status file: `apt-get update` or an install changes one of them, so a memo never
 * outlives what it was resolved from), and the memo files (`<cacheDir>/resolved/<hash>.json`,
 * written atomically). Does not own: resolving (apt.ts) or what is resolved (build.ts).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const APT_LISTS = '/var/lib/apt/lists';
const DPKG_STATUS = '/var/lib/dpkg/status';

/** A digest of the apt lists and dpkg status; undefined when they cannot be read (then no memo). */
export async function aptStateFingerprint(lists = APT_LISTS, status = DPKG_STATUS): Promise<string | undefined> {
  try {
    const h = createHash('sha256');
    const names = (await readdir(lists)).filter((n) => n !== 'lock' && n !== 'partial' && n !== 'auxfiles').sort();
    for (const path of [...names.map((n) => join(lists, n)), status]) {
      const st = await stat(path);
      h.update(`${path}\0${st.size}\0${st.mtimeMs}\n`);
    }
    return h.digest('hex');
  } catch {
    return undefined;
  }
}

/** The memo of `query` under apt state `fingerprint`, if one was written. */
export async function readMemo<T>(cacheDir: string, fingerprint: string | undefined, query: unknown): Promise<T | undefined> {
  if (fingerprint === undefined) return undefined;
  try {
    return JSON.parse(await readFile(memoPath(cacheDir, fingerprint, query), 'utf8')) as T;
  } catch {
    return undefined; // absent or damaged: resolve again
  }
}

/** Writes the memo of `query` (atomically: a reader sees all of it or nothing). */
export async function writeMemo(cacheDir: string, fingerprint: string | undefined, query: unknown, value: unknown): Promise<void> {
  if (fingerprint === undefined) return;
  const path = memoPath(cacheDir, fingerprint, query);
  await mkdir(join(cacheDir, 'resolved'), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

function memoPath(cacheDir: string, fingerprint: string, query: unknown): string {
  const key = createHash('sha256').update(fingerprint).update(JSON.stringify(query)).digest('hex').slice(0, 24);
  return join(cacheDir, 'resolved', `${key}.json`);
}
