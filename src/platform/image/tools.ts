// SPDX-License-Identifier: Apache-2.0
/**
 * Running the host programs the image build needs (apt-get, apt-cache, dpkg-deb, depmod, xz,
 * zstd, tar, strip), always as argv arrays, never through a shell.
 *
 * Owns: process spawning, the tool → Debian package map used in "not installed" errors, output
 * capture. Does not own: what the tools are asked to do (apt.ts, modules.ts).
 */
import { spawn } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HostToolFailedError, HostToolMissingError } from '../errors.js';

/** Debian package that provides each host tool, for the "run scripts/setup.sh" message. */
const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  'dpkg-query': 'dpkg',
  depmod: 'kmod',
  xz: 'xz-utils',
  zstd: 'zstd',
  strip: 'binutils',
  tar: 'tar',
  make: 'make',
};

export interface ToolResult {
  stdout: Buffer;
  stderr: string;
}

export interface ToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Bytes for the tool's standard input. */
  input?: Uint8Array;
}

/**
 * Runs `tool args…` and resolves with its output; rejects with HostToolMissingError when the tool
 * is not installed and with HostToolFailedError when it exits non-zero or dies of a signal.
 */
export function runTool(tool: string, args: readonly string[], options: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    // depmod lives in /usr/sbin, which a non-login PATH may lack; add the sbin folders so that a
    // tool that is installed is found.
    const env = { ...(options.env ?? process.env) };
    env['PATH'] = withSbin(env['PATH']);
    const child = spawn(tool, [...args], {
      cwd: options.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new HostToolMissingError(tool, TOOL_PACKAGES[tool] ?? tool, { cause: e }));
      else reject(new HostToolFailedError(tool, args, e.message, '', { cause: e }));
    });
    // A tool that exits before reading all its input makes the pipe fail with EPIPE; its exit
    // status says what went wrong, so the pipe error is ignored.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else {
        const detail = signal === null ? `exit status ${String(code)}` : `killed by ${signal}`;
        reject(new HostToolFailedError(tool, args, detail, stderr));
      }
    });
  });
}

/** PATH with /usr/sbin and /sbin appended when missing. */
export function withSbin(path: string | undefined): string {
  const parts = (path ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((p) => p !== '');
  for (const dir of ['/usr/sbin', '/sbin']) if (!parts.includes(dir)) parts.push(dir);
  return parts.join(':');
}

/** Writes a cache folder (a build's output) under a scratch name and renames it into place (whole or absent). */
export async function publish(outDir: string, work: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const staging = join(work, 'out');
  await mkdir(staging, { recursive: true });
  await fill(staging);
  await mkdir(join(outDir, '..'), { recursive: true });
  await rm(outDir, { recursive: true, force: true });
  try {
    await rename(staging, outDir);
  } catch (e: unknown) {
    const code = (e as NodeJS.ErrnoException).code; // fs errors carry an errno code
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e; // a concurrent build won: keep its copy
  }
}
