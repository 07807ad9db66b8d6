// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixture for the virtio-fs back-end as `avp serve fs` builds it: the device from the
 * registry with the real native calls (sys/fs.ts injected as HostCapabilities.fsSyscalls, as
 * backend-worker.ts does), driven in-process through HarnessDriver and the conformance suite's
 * FUSE client, over a fresh temporary tree:
 *
 * ```
 * <root>/share/hello.txt      the shared directory (4096 bytes of 0x3c)
 * <root>/outside/secret       what must never be reachable (SECRET)
 * ```
 *
 * Lives in platform/ because it composes devices/ with sys/ (devices/ may not import sys/).
 * Everything is closed and removed by `close()`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HarnessDriver } from '../device/testing.js';
import { FuseClient } from '../devices/fs/client.js';
import type { FsDevice } from '../devices/fs/model.js';
import { createDevice } from '../devices/registry.js';
import { fsSyscalls } from '../sys/index.js';

export const SECRET = 'outside the share: must never be read\n';

export interface FsBed {
  readonly root: string;
  readonly share: string;
  readonly outside: string;
  readonly device: FsDevice;
  /** The current driver and client (`renew` replaces them). */
  readonly driver: HarnessDriver;
  readonly client: FuseClient;
  /**
   * A device reset and a new driver with fresh guest memory (the harness' allocator never frees),
   * INIT sent again: for tests that send more requests than one driver's memory holds.
   */
  renew(): void;
  close(): void;
}

/** A share with hello.txt, an outside folder with a secret, and a device serving the share. */
export function fsBed(options: Record<string, unknown> = {}, opts: { init?: boolean; prepare?: (share: string, outside: string) => void } = {}): FsBed {
  const root = mkdtempSync(join(tmpdir(), 'avp-fs-'));
  const share = join(root, 'share');
  const outside = join(root, 'outside');
  mkdirSync(share);
  mkdirSync(outside);
  writeFileSync(join(share, 'hello.txt'), Buffer.alloc(4096, 0x3c));
  writeFileSync(join(outside, 'secret'), SECRET);
  opts.prepare?.(share, outside);
  let device: FsDevice;
  try {
    // Safe: the fs kind's create returns an FsDevice (kind.ts).
    device = createDevice({ kind: 'fs', options: { sharedDir: share, tag: 'test', ...options } }, { fsSyscalls }) as FsDevice;
  } catch (e: unknown) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const connect = (): { driver: HarnessDriver; client: FuseClient } => {
    const driver = new HarnessDriver(device, { defaultQueue: 1, memorySize: 16 << 20 });
    driver.start({ queueSize: 64 });
    const client = new FuseClient(driver);
    if (opts.init !== false) {
      const r = client.init();
      if (r.error !== 0) throw new Error(`INIT failed: ${r.error}`);
    }
    return { driver, client };
  };
  let current = connect();
  let closed = false;
  return {
    root,
    share,
    outside,
    device,
    get driver() {
      return current.driver;
    },
    get client() {
      return current.client;
    },
    renew() {
      device.reset();
      current = connect();
    },
    close() {
      if (closed) return;
      closed = true;
      device.dispose();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
