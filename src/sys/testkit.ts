// SPDX-License-Identifier: Apache-2.0
/**
 * Cleanup bookkeeping for this layer's tests: every fd, mapping and temp directory a test makes is
 * released in `t.after`, also when an assertion fails halfway.
 *
 * Owns: test resource tracking only. Not exported from index.ts; not a fake.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { close, closeQuiet } from './fd.js';
import { munmap } from './memory.js';
import type { Mapping } from './memory.js';

export class Resources {
  readonly #fds = new Set<number>();
  readonly #mappings: Mapping[] = [];
  readonly #dirs: string[] = [];

  constructor(t: TestContext) {
    t.after(() => this.release());
  }

  /** Tracks `fd` for closing at the end of the test; returns it. */
  fd(fd: number): number {
    this.#fds.add(fd);
    return fd;
  }

  /** Tracks every fd in `fds`; returns them. */
  fds<T extends number[]>(fds: T): T {
    for (const fd of fds) this.#fds.add(fd);
    return fds;
  }

  /**
   * Closes a tracked fd now (a test that needs the close mid-way) and stops tracking it, so the
   * cleanup never closes a later descriptor that reuses the number.
   */
  close(fd: number): void {
    this.#fds.delete(fd);
    close(fd);
  }

  /** Tracks a mapping for munmap at the end of the test; returns it. */
  mapping(m: Mapping): Mapping {
    this.#mappings.push(m);
    return m;
  }

  /** A fresh temp directory, removed with its contents at the end of the test. */
  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'avp-sys-'));
    this.#dirs.push(dir);
    return dir;
  }

  release(): void {
    for (const m of this.#mappings.splice(0)) munmap(m);
    for (const fd of this.#fds) closeQuiet(fd);
    this.#fds.clear();
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** O_CLOEXEC as it appears in the octal `flags:` line of /proc/self/fdinfo/<fd>. */
const FDINFO_CLOEXEC = 0o2000000;

/** True when `fd` has FD_CLOEXEC, read from /proc/self/fdinfo (independent of the code under test). */
export function hasCloexec(fd: number): boolean {
  const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no flags line in /proc/self/fdinfo/${fd}`);
  return (parseInt(match[1], 8) & FDINFO_CLOEXEC) !== 0;
}

