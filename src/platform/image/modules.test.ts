// SPDX-License-Identifier: Apache-2.0
/**
 * Module load order from modules.dep / modules.builtin text (an excerpt of Debian 12's 6.1
 * kernel, written out by hand), naming rules, and decompression of .ko.xz / .ko.zst / .ko.gz
 * against the real xz and zstd tools.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hasCode } from '../../errors.js';
import { runTool } from './tools.js';
import {
  DEFAULT_GUEST_MODULES,
  compressionOf,
  moduleNameFromPath,
  normalizeModuleName,
  parseModulesBuiltin,
  parseModulesDep,
  readModuleFile,
  resolveLoadOrder,
} from './modules.js';

const DEP = `kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
`;

const BUILTIN = `kernel/drivers/char/hw_random/rng-core.ko
kernel/drivers/block/loop.ko
`;

test('parseModulesDep: paths and dependency lists; blank lines skipped', () => {
  const dep = parseModulesDep(`a.ko: b.ko c.ko\n\nb.ko:\n  c.ko:   \n`);
  assert.deepEqual([...dep], [
    ['a.ko', ['b.ko', 'c.ko']],
    ['b.ko', []],
    ['c.ko', []],
  ]);
});

test('parseModulesDep: a line without "path:" is an error naming the line', () => {
  assert.throws(() => parseModulesDep('a.ko: b.ko\nbroken line\n'), /line 2/);
});

test('module names: file names with compression suffixes, and - equals _', () => {
  assert.equal(moduleNameFromPath('kernel/drivers/char/hw_random/virtio-rng.ko.xz'), 'virtio-rng');
  assert.equal(moduleNameFromPath('kernel/a/b.ko.zst'), 'b');
  assert.equal(moduleNameFromPath('b.ko'), 'b');
  assert.equal(normalizeModuleName('virtio-rng'), 'virtio_rng');
  assert.deepEqual([...parseModulesBuiltin(BUILTIN)], ['rng_core', 'loop']);
});

/** The blk, rng, net and vsock part of DEFAULT_GUEST_MODULES, which the DEP excerpt covers. */
const BASE_MODULES = DEFAULT_GUEST_MODULES.slice(0, DEFAULT_GUEST_MODULES.indexOf('vmw_vsock_virtio_transport') + 1);

test('resolveLoadOrder: Debian 6.1 virtio set loads each module after its dependencies', () => {
  const plan = resolveLoadOrder(BASE_MODULES, parseModulesDep(DEP), parseModulesBuiltin(BUILTIN), '6.1.0-test');
  assert.deepEqual(
    plan.order.map((m) => m.name),
    [
      'virtio_ring',
      'virtio',
      'virtio_pci_modern_dev',
      'virtio_pci_legacy_dev',
      'virtio_pci',
      'virtio-rng',
      'virtio_blk',
      'failover',
      'net_failover',
      'virtio_net',
      'vsock',
      'vmw_vsock_virtio_transport_common',
      'vmw_vsock_virtio_transport',
    ],
  );
  assert.deepEqual(plan.builtin, []);
  assert.equal(plan.order[5]?.path, 'kernel/drivers/char/hw_random/virtio-rng.ko');
});

test('resolveLoadOrder: with skipAbsent, modules the kernel lacks are reported and the rest load', () => {
  const plan = resolveLoadOrder(DEFAULT_GUEST_MODULES, parseModulesDep(DEP), parseModulesBuiltin(BUILTIN), '6.1.0-test', { skipAbsent: true });
  assert.deepEqual(plan.order.length, 13);
  assert.ok(plan.absent.includes('virtio_snd') && plan.absent.includes('gpio-virtio'));
  assert.ok(!plan.absent.includes('virtio_blk'));
});

test('DEFAULT_GUEST_MODULES: every AVPS guest driver AVP tests with', () => {
  for (const m of ['virtio_input', 'virtio-gpu', 'virtio_snd', 'gpio-virtio', 'i2c-virtio', 'virtio_console', 'virtiofs', 'virtio_crypto', 'vcan', 'slcan', 'lm75']) {
    assert.ok(DEFAULT_GUEST_MODULES.includes(m), m);
  }
});

test('resolveLoadOrder: dependencies come first whatever the request order', () => {
  const dep = parseModulesDep(DEP);
  const plan = resolveLoadOrder(['virtio_pci', 'virtio_net'], dep, new Set(), 'k');
  const names = plan.order.map((m) => m.name);
  // Every module appears after each of its modules.dep entries.
  for (const [i, m] of plan.order.entries()) {
    for (const d of dep.get(m.path) ?? []) assert.ok(names.indexOf(moduleNameFromPath(d)) < i, `${d} before ${m.name}`);
  }
  // The walk visits a module's dependencies from the end of its list, as modprobe does.
  assert.deepEqual(names.slice(0, 5), ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci']);
});

test('resolveLoadOrder: a built-in module is reported and skipped; names match with - or _', () => {
  const plan = resolveLoadOrder(['rng-core', 'virtio_rng', 'rng_core'], parseModulesDep(DEP), parseModulesBuiltin(BUILTIN), 'k');
  assert.deepEqual(plan.builtin, ['rng-core', 'rng_core']);
  assert.deepEqual(plan.order.map((m) => m.name), ['virtio_ring', 'virtio', 'virtio-rng']);
});

test('resolveLoadOrder: an unknown module is KERNEL_MODULE_NOT_FOUND', () => {
  assert.throws(
    () => resolveLoadOrder(['virtio_gpio'], parseModulesDep(DEP), new Set(), '6.1.0-56-amd64'),
    (e: unknown) => hasCode(e, 'KERNEL_MODULE_NOT_FOUND') && /virtio_gpio.*6\.1\.0-56-amd64/.test((e as Error).message),
  );
});

test('resolveLoadOrder: a dependency without its own line is KERNEL_MODULE_NOT_FOUND', () => {
  assert.throws(() => resolveLoadOrder(['a'], parseModulesDep('a.ko: gone.ko\n'), new Set(), 'k'), (e: unknown) =>
    hasCode(e, 'KERNEL_MODULE_NOT_FOUND'),
  );
});

test('resolveLoadOrder: a cycle is KERNEL_MODULE_DEPENDENCY_CYCLE naming it', () => {
  const dep = parseModulesDep('a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\n');
  assert.throws(
    () => resolveLoadOrder(['a'], dep, new Set(), 'k'),
    (e: unknown) => hasCode(e, 'KERNEL_MODULE_DEPENDENCY_CYCLE') && /a -> b -> c -> a/.test((e as Error).message),
  );
});

test('compressionOf', () => {
  assert.equal(compressionOf('x.ko'), 'none');
  assert.equal(compressionOf('x.ko.xz'), 'xz');
  assert.equal(compressionOf('x.ko.zst'), 'zst');
  assert.equal(compressionOf('x.ko.gz'), 'gz');
});

test('readModuleFile: plain, gzip, xz and zstd modules decompress to the same bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avp-modules-test-'));
  try {
    const elf = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(5000, 0xab), Buffer.from('tail')]);
    await writeFile(join(dir, 'm.ko'), elf);
    await writeFile(join(dir, 'm.ko.gz'), gzipSync(elf));
    await writeFile(join(dir, 'm.ko.xz'), (await runTool('xz', ['-c'], { input: elf })).stdout);
    await writeFile(join(dir, 'm.ko.zst'), (await runTool('zstd', ['-c', '-q'], { input: elf })).stdout);
    for (const name of ['m.ko', 'm.ko.gz', 'm.ko.xz', 'm.ko.zst']) {
      assert.deepEqual(await readModuleFile(join(dir, name)), elf, name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
