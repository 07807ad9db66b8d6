// SPDX-License-Identifier: Apache-2.0
/**
 * The image layout (parents before children, the console node, the baked script only when
 * given) and the cache folder choice. Building from real packages is image.e2e.test.ts's job.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, imageEntries } from './build.js';

const content = {
  busybox: Buffer.from('bb'),
  modules: [
    { name: 'virtio_ring', data: Buffer.from('r') },
    { name: 'virtio-rng', data: Buffer.from('n') },
  ],
};

test('imageEntries: every entry comes after its parent folder', () => {
  const entries = imageEntries({ ...content, script: 'exit 0\n' });
  const seen = new Set<string>();
  for (const e of entries) {
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : undefined;
    if (parent !== undefined) assert.ok(seen.has(parent), `${e.path} before ${parent}`);
    seen.add(e.path);
  }
});

test('imageEntries: init, busybox, sh link, console node, helpers, modules and their order', () => {
  const byPath = new Map(imageEntries({ ...content, script: undefined }).map((e) => [e.path, e]));
  assert.deepEqual(byPath.get('dev/console'), { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  assert.deepEqual(byPath.get('bin/sh'), { type: 'symlink', path: 'bin/sh', target: 'busybox' });
  for (const p of ['init', 'bin/busybox', 'bin/avp-arg', 'bin/avp-kv', 'bin/avp-wait']) {
    const e = byPath.get(p);
    assert.ok(e?.type === 'file' && e.mode === 0o755, p);
  }
  const order = byPath.get('etc/modules-order');
  assert.ok(order?.type === 'file');
  assert.equal(Buffer.from(order.data).toString(), 'virtio_ring\nvirtio-rng\n');
  assert.ok(byPath.has('lib/modules/virtio-rng.ko'));
  assert.equal(byPath.has('etc/avp/test.sh'), false);
});

test('imageEntries: a baked script goes to /etc/avp/test.sh', () => {
  const e = imageEntries({ ...content, script: 'avp-kv x 1\n' }).find((x) => x.path === 'etc/avp/test.sh');
  assert.ok(e?.type === 'file');
  assert.equal(Buffer.from(e.data).toString(), 'avp-kv x 1\n');
});

test('defaultCacheDir: $AVP_CACHE_DIR, else <repo>/.cache/avp', () => {
  assert.equal(defaultCacheDir({ AVP_CACHE_DIR: 'rel/dir' }), resolve('rel/dir'));
  const repo = fileURLToPath(new URL('../../../', import.meta.url));
  assert.equal(defaultCacheDir({}), join(repo, '.cache', 'avp'));
  assert.equal(defaultCacheDir({ AVP_CACHE_DIR: '' }), join(repo, '.cache', 'avp'));
});

test('imageEntries: guest tools go in after the image folders, without repeating them, parents first', () => {
  const tools = [
    { type: 'dir' as const, path: 'lib' },
    { type: 'dir' as const, path: 'usr' },
    { type: 'dir' as const, path: 'lib/x86_64-linux-gnu' },
    { type: 'dir' as const, path: 'usr/bin' },
    { type: 'file' as const, path: 'lib/x86_64-linux-gnu/libc.so.6', data: Buffer.from('c'), mode: 0o755 },
    { type: 'file' as const, path: 'usr/bin/socat', data: Buffer.from('s'), mode: 0o755 },
    { type: 'symlink' as const, path: 'lib64/ld-linux-x86-64.so.2', target: '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
  ];
  const entries = imageEntries({ ...content, script: undefined, tools: [{ type: 'dir', path: 'lib64' }, ...tools] });
  const paths = entries.map((e) => e.path);
  assert.equal(paths.filter((p) => p === 'lib').length, 1, 'folders the image has are not repeated');
  assert.ok(paths.includes('usr/bin/socat') && paths.includes('lib/x86_64-linux-gnu/libc.so.6'));
  const seen = new Set<string>();
  for (const e of entries) {
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : undefined;
    if (parent !== undefined) assert.ok(seen.has(parent), `${e.path} before ${parent}`);
    seen.add(e.path);
  }
});
