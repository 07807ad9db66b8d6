// SPDX-License-Identifier: Apache-2.0
/**
 * Headless Chromium for the dashboard's browser tests: Debian's `chromium` (/usr/bin/chromium,
 * installed by scripts/setup.sh) driven by playwright-core, which never downloads a browser. Each
 * launch gets a fresh profile folder (removed by close()), no sandbox (tests run as root), no GPU,
 * and nothing that reaches the network on its own (no QUIC, background networking, component
 * updates or sync): the only address it loads is the dashboard on 127.0.0.1.
 * Also where tests put what they save (screenshots): AVP_TEST_OUTPUT, default .cache/test-output.
 *
 * Owns: those flags and folders. Test-only: nothing outside tests imports it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (package `chromium`); AVP_CHROMIUM overrides. */
export const CHROMIUM = process.env['AVP_CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (Debian package chromium); run bash scripts/setup.sh as root`;
}

/** Launches headless Chromium with a fresh profile and one page of `width`×`height`. */
export async function launchBrowser(viewport = { width: 1400, height: 1000 }): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'avp-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport, timeout: 120_000 });
  } catch (e: unknown) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The folder tests save their output in (created): $AVP_TEST_OUTPUT/<name>, default <repo>/.cache/test-output/<name>. */
export function testOutputDir(name: string): string {
  const base = process.env['AVP_TEST_OUTPUT'] ?? fileURLToPath(new URL('../../../.cache/test-output/', import.meta.url));
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
