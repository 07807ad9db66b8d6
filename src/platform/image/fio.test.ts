// SPDX-License-Identifier: Apache-2.0
/**
 * The pure parts of building fio from Debian's source: the pool folder from apt's URI, file names
 * from versions, the .dsc's checksum list, the download check and the build key. The download and
 * the build themselves run in the image build (resilience-blk.e2e.test.ts boots the result).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostToolFailedError, ImageBuildError } from '../errors.js';
import { buildStep, checkDownload, dscFileName, fioBuildKey, fioCacheDir, newestCachedFio, origTarball, parseDsc, poolDirOf, upstreamVersion } from './fio.js';
import { parsePrintUri, sourceOfStanza } from './apt.js';

/** Debian 12's fio .dsc as the mirror serves it (signature shortened). */
const DSC = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Format: 3.0 (quilt)
Source: fio
Binary: fio, gfio, fio-examples
Architecture: any all
Version: 3.33-3
Maintainer: Martin Steigerwald <martin.steigerwald@proact.de>
Build-Depends: debhelper-compat (= 13), libaio-dev [linux-any], zlib1g-dev,
 flex, bison
Package-List:
 fio deb utils optional arch=any
 gfio deb utils optional arch=any
Checksums-Sha1:
 dc60f93161aa411935dd23710516524597147624 6185325 fio_3.33.orig.tar.gz
 27f8e4340ef0cc3d40ecef5ac036f271b5dcfc6f 22064 fio_3.33-3.debian.tar.xz
Checksums-Sha256:
 d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc 6185325 fio_3.33.orig.tar.gz
 3391c3bbac03bf56d7abe6bb1cfeaf1a1118110e00c6206cfc861d33fbabb9ea 858 fio_3.33.orig.tar.gz.asc
 796ef40f7f1de5b4d3698024b4c56eb1b7b86fb1fef58ec41c966deebbafd515 22064 fio_3.33-3.debian.tar.xz
Files:
 709d1385de95294fea7146a5f0d5675d 6185325 fio_3.33.orig.tar.gz
 790b93e7682dd212273856638c596bf0 22064 fio_3.33-3.debian.tar.xz

-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEEfAcX+forK514ixQbptwk2dokk9EFAmONy0cACgkQptwk2dok
=3o1/
-----END PGP SIGNATURE-----
`;

const FIO = { name: 'fio', version: '3.33-3' };

test('fio source: the pool folder is the folder of the URI apt prints for the binary package', () => {
  const line = "'http://deb.debian.org/debian/pool/main/f/fio/fio_3.33-3_amd64.deb' fio_3.33-3_amd64.deb 537684 SHA256:dc79dae895125512620fcd16465f1a19edec8f2d73736fe76a9fbf8195cfb745\n";
  const uri = parsePrintUri(line);
  assert.equal(uri, 'http://deb.debian.org/debian/pool/main/f/fio/fio_3.33-3_amd64.deb');
  assert.equal(poolDirOf(uri as string), 'http://deb.debian.org/debian/pool/main/f/fio/');
  assert.equal(poolDirOf('https://mirror.example/debian/pool/main/f/fio/fio_3.33-3_amd64.deb'), 'https://mirror.example/debian/pool/main/f/fio/');
  assert.equal(parsePrintUri(''), undefined);
  assert.equal(parsePrintUri('E: Unable to locate package fio\n'), undefined);
});

test('fio source: a URI that is not an http(s) .deb is refused with what apt printed', () => {
  assert.throws(() => poolDirOf('file:/srv/mirror/pool/main/f/fio/fio_3.33-3_amd64.deb'), (e: unknown) => e instanceof ImageBuildError && /over file:/.test(e.message));
  assert.throws(() => poolDirOf('http://deb.debian.org/debian/dists/bookworm/Release'), /not a \.deb/);
  assert.throws(() => poolDirOf('no url'), /not a URL: no url/);
});

test('fio source: the source package of a stanza, with or without a Source field or a binNMU', () => {
  assert.deepEqual(sourceOfStanza({ Package: 'fio', Version: '3.33-3' }), FIO);
  assert.deepEqual(sourceOfStanza({ Package: 'fio', Version: '3.33-3+b1' }), FIO);
  assert.deepEqual(sourceOfStanza({ Package: 'fio', Version: '3.33-3+b1', Source: 'fio (3.33-3)' }), FIO);
  assert.deepEqual(sourceOfStanza({ Package: 'libaio1', Version: '0.3.113-4', Source: 'libaio' }), { name: 'libaio', version: '0.3.113-4' });
  assert.equal(sourceOfStanza({ Package: 'fio' }), undefined);
  assert.equal(sourceOfStanza({ Package: 'fio', Version: '1', Source: 'not a name!' }), undefined);
});

test('fio source: file names leave out the epoch; the upstream version drops the Debian revision', () => {
  assert.equal(dscFileName(FIO), 'fio_3.33-3.dsc');
  assert.equal(dscFileName({ name: 'x', version: '1:2.3-4' }), 'x_2.3-4.dsc');
  assert.equal(upstreamVersion('3.33-3'), '3.33');
  assert.equal(upstreamVersion('1:2.3-4'), '2.3');
  assert.equal(upstreamVersion('1.0-rc1-2'), '1.0-rc1');
  assert.equal(upstreamVersion('20230101'), '20230101');
});

test('fio source: the .dsc gives Source, Version and only the Checksums-Sha256 files', () => {
  const dsc = parseDsc(DSC);
  assert.equal(dsc.source, 'fio');
  assert.equal(dsc.version, '3.33-3');
  assert.deepEqual(
    dsc.files.map((f) => `${f.name} ${f.size}`),
    ['fio_3.33.orig.tar.gz 6185325', 'fio_3.33.orig.tar.gz.asc 858', 'fio_3.33-3.debian.tar.xz 22064'],
  );
  assert.deepEqual(origTarball(dsc, FIO), { name: 'fio_3.33.orig.tar.gz', size: 6185325, sha256: 'd2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc' });
  // CRLF line ends parse the same.
  assert.deepEqual(parseDsc(DSC.replaceAll('\n', '\r\n')).files, dsc.files);
});

test('fio source: a .dsc without the orig tarball, or with a broken checksum line, is refused', () => {
  const noOrig = parseDsc(DSC.replace(/^ \S+ \d+ fio_3\.33\.orig\.tar\.gz\n/gm, ''));
  assert.throws(() => origTarball(noOrig, FIO), /lists no fio_3\.33\.orig\.tar\.\{gz,xz,bz2\}.*fio_3\.33\.orig\.tar\.gz\.asc/);
  assert.throws(() => origTarball(parseDsc(DSC), { name: 'fio', version: '3.34-1' }), /lists no fio_3\.34\.orig/);
  assert.throws(() => parseDsc(DSC.replace(' 796ef40f', ' 796XX40f')), (e: unknown) => e instanceof ImageBuildError && /malformed Checksums-Sha256 line/.test(e.message));
});

test('fio source: a download must have the size and SHA-256 the .dsc lists', () => {
  const data = Buffer.from('fio source tarball');
  const file = { name: 'fio_1.orig.tar.gz', size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  checkDownload(file, data, 'http://m/fio_1.orig.tar.gz');
  assert.throws(() => checkDownload(file, data.subarray(1), 'http://m/f'), /17 bytes, the \.dsc says 18; refusing/);
  const flipped = Buffer.from(data);
  flipped[0] = (flipped[0] as number) ^ 1;
  assert.throws(() => checkDownload(file, flipped, 'http://m/f'), (e: unknown) => e instanceof ImageBuildError && /SHA-256 [0-9a-f]{64}, the \.dsc says/.test(e.message));
});

test('fio build key: changes with the source version, stable otherwise; the cache folder carries both', () => {
  assert.equal(fioBuildKey(FIO), fioBuildKey({ ...FIO }));
  assert.notEqual(fioBuildKey(FIO), fioBuildKey({ name: 'fio', version: '3.33-4' }));
  assert.match(fioBuildKey(FIO), /^[0-9a-f]{16}$/);
  assert.equal(fioCacheDir('/c', { name: 'fio', version: '1:3.33-3' }), `/c/fio/1%3a3.33-3-${fioBuildKey({ name: 'fio', version: '1:3.33-3' })}`);
});

test('fio cache: offline, the newest build whose record matches its folder is taken', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'avp-fio-cache-'));
  try {
    assert.equal(await newestCachedFio(cache), undefined);
    const put = async (dir: string, record: object): Promise<void> => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'fio'), 'ELF');
      await writeFile(join(dir, 'build.json'), JSON.stringify(record));
    };
    await put(fioCacheDir(cache, FIO), { version: 'fio-3.33', source: FIO, key: fioBuildKey(FIO), buildSeconds: 1 });
    // A folder of an older recipe (its key no longer matches): ignored.
    await put(join(cache, 'fio', '3.33-3-0000000000000000'), { version: 'fio-3.33', source: FIO, key: '0000000000000000', buildSeconds: 1 });
    const hit = await newestCachedFio(cache);
    assert.equal(hit?.file, join(fioCacheDir(cache, FIO), 'fio'));
    assert.equal(hit?.version, 'fio-3.33');
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});

test('fio build: a failing step fails with its name and the tail of its output (stdout included: configure explains there)', async () => {
  const tree = await mkdtemp(join(tmpdir(), 'avp-fio-step-'));
  try {
    await writeFile(join(tree, 'configure'), '#!/bin/sh\necho "Operating system   Linux"\necho "ERROR: zlib headers missing" \nexit 1\n');
    await chmod(join(tree, 'configure'), 0o755);
    await assert.rejects(buildStep('configure', './configure', ['--disable-native'], tree), (e: unknown) => {
      assert.ok(e instanceof HostToolFailedError);
      assert.match(e.message, /^\.\/configure --disable-native failed: exit status 1: building fio from Debian's source, step configure\n/);
      assert.match(e.message, /ERROR: zlib headers missing/);
      return true;
    });
    await writeFile(join(tree, 'configure'), '#!/bin/sh\nexit 0\n');
    await buildStep('configure', './configure', [], tree);
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
});
