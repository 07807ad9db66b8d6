// SPDX-License-Identifier: Apache-2.0
/**
 * apt-cache output parsing and kernel package resolution from it (text as Debian 12 prints it),
 * and the cached .deb lookups. apt itself runs in the end-to-end test's image build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCachedDeb, kernelDependency, newestCachedDeb, parseStanza } from './apt.js';

const META = `Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Description-en: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel and modules for use on
 PCs with AMD64, Intel 64 or VIA Nano processors.

Package: linux-image-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)
`;

const CONCRETE = `Package: linux-image-6.1.0-56-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
`;

test('parseStanza: first stanza only, continuation lines joined', () => {
  const s = parseStanza(META);
  assert.equal(s.Package, 'linux-image-amd64');
  assert.equal(s.Version, '6.1.192-2');
  assert.equal(s.Depends, 'linux-image-6.1.0-56-amd64 (= 6.1.192-2)');
});

test('kernelDependency: meta package → the concrete kernel and its exact version', () => {
  assert.deepEqual(kernelDependency(parseStanza(META)), { name: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2' });
});

test('kernelDependency: a concrete kernel package resolves to itself', () => {
  assert.deepEqual(kernelDependency(parseStanza(CONCRETE)), { name: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2' });
});

test('kernelDependency: a package that depends on no kernel gives undefined', () => {
  assert.equal(kernelDependency(parseStanza('Package: busybox-static\nVersion: 1:1.35.0-4\nDepends: libc6\n')), undefined);
});

test('cached .deb lookups: exact version (epoch as %3a) and newest by time', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avp-apt-test-'));
  try {
    const older = join(dir, 'linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb');
    const newer = join(dir, 'linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb');
    const bb = join(dir, 'busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb');
    for (const f of [older, newer, bb]) await writeFile(f, '');
    await utimes(older, 1000, 1000);
    await utimes(newer, 2000, 2000);
    assert.equal(await findCachedDeb(dir, { name: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1' }), bb);
    assert.equal(await findCachedDeb(dir, { name: 'busybox-static', version: '1:1.36' }), undefined);
    assert.deepEqual(await newestCachedDeb(dir, (n) => /^linux-image-\d/.test(n)), {
      path: newer,
      pkg: { name: 'linux-image-6.1.0-56-amd64', version: '6.1.192-2' },
    });
    assert.equal((await newestCachedDeb(dir, (n) => n === 'busybox-static'))?.pkg.version, '1:1.35.0-4+deb12u1+b1');
    assert.equal(await newestCachedDeb(join(dir, 'missing'), () => true), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
