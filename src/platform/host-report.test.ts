// SPDX-License-Identifier: Apache-2.0
/**
 * The host report without QEMU and with a fake cached image (an image.json written here): the
 * missing pieces come with their fix commands, and the guest drivers are read from the image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostReport } from './host-report.js';

test('hostReport: no QEMU, no image: both missing, each with its fix; still a report', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'avp-host-report-'));
  try {
    const r = await hostReport({ env: { PATH: '/nonexistent' }, cacheDir: cache, kvmDevice: '/nonexistent/kvm' });
    assert.equal(r.qemu.installed, false);
    assert.equal(r.image.found, false);
    assert.equal(r.accel.accel, 'tcg');
    const fixes = r.missing.map((m) => m.fix);
    assert.ok(fixes.some((f) => /bash scripts\/setup\.sh/.test(f)));
    assert.ok(fixes.includes('npx avp image build'));

  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});

test('hostReport: the image of the default kernel tells which drivers are modules, built in or absent', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'avp-host-report-'));
  try {
    const dir = join(cache, 'images', '6.12.117+deb12-amd64-0000000000000000');
    await mkdir(dir, { recursive: true });
    const image = {
      kernelVersion: '6.12.117+deb12-amd64',
      kernelPackage: { name: 'linux-image-6.12.117+deb12-amd64', version: '6.12.117-1~deb12u1' },
      modules: ['virtio_blk', 'virtio-rng', 'virtio_snd'],
      builtinModules: ['virtio_console'],
      extraModules: [],
      hasBakedScript: false,
    };
    await writeFile(join(dir, 'image.json'), JSON.stringify(image));
    const r = await hostReport({ env: { PATH: '/nonexistent' }, cacheDir: cache });
    assert.ok(r.image.found);
    const driver = (d: string): string | undefined => r.devices.find((x) => x.device === d)?.guestDriver;
    assert.equal(driver('blk'), 'module');
    assert.equal(driver('sound'), 'module');
    assert.equal(driver('console'), 'builtin');
    assert.equal(driver('gpio'), 'absent');
    assert.equal(driver('can'), 'none-exists');
    assert.ok(r.missing.some((m) => /gpio.*no gpio-virtio/.test(m.what) && m.fix === 'npx avp image build --kernel 6.12'));
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});
