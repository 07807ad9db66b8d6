// SPDX-License-Identifier: Apache-2.0
/**
 * The newc writer: exact bytes of a one-file archive written out from the format description,
 * and archives read back by GNU cpio (listing with types, modes and device numbers; extraction).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from './tools.js';
import { packNewc, type CpioEntry } from './cpio.js';

test('packNewc: one file, byte for byte', () => {
  const got = packNewc([{ type: 'file', path: 'ab', data: Buffer.from('xyz'), mode: 0o644 }]);
  // Header fields in order: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
  // rdevminor namesize check, 8 hex digits each after the magic "070701".
  const h1 = '070701' + '00000001' + '000081a4' + '00000000' + '00000000' + '00000001' + '00000000' + '00000003' +
    '00000000' + '00000000' + '00000000' + '00000000' + '00000003' + '00000000';
  const h2 = '070701' + '00000000' + '00000000' + '00000000' + '00000000' + '00000001' + '00000000' + '00000000' +
    '00000000' + '00000000' + '00000000' + '00000000' + '0000000b' + '00000000';
  // 110-byte header + "ab\0" = 113 → 3 bytes of padding; data 3 → 1 byte; 110 + "TRAILER!!!\0" = 121 → 3.
  const expected = Buffer.concat([
    Buffer.from(h1, 'ascii'),
    Buffer.from('ab\0', 'ascii'),
    Buffer.alloc(3),
    Buffer.from('xyz'),
    Buffer.alloc(1),
    Buffer.from(h2, 'ascii'),
    Buffer.from('TRAILER!!!\0', 'ascii'),
    Buffer.alloc(3),
  ]);
  assert.deepEqual(got, expected);
  assert.equal(got.length % 4, 0);
});

test('packNewc: the same entries give the same bytes', () => {
  const entries: CpioEntry[] = [{ type: 'dir', path: 'd' }, { type: 'file', path: 'd/f', data: Buffer.from('1') }];
  assert.deepEqual(packNewc(entries), packNewc(entries));
});

test('packNewc: refuses absolute, dot-dot and empty paths', () => {
  for (const path of ['/init', '../x', 'a//b', '', 'a/./b']) {
    assert.throws(() => packNewc([{ type: 'dir', path }]), RangeError, path);
  }
});

const SAMPLE: CpioEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'dir', path: 'dev' },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'tool' },
  { type: 'file', path: 'empty', data: Buffer.alloc(0) },
  { type: 'file', path: 'odd-size', data: Buffer.alloc(4097, 7) },
];

test('GNU cpio lists what packNewc wrote: types, modes, device numbers, link targets', async () => {
  const { stdout } = await runTool('cpio', ['-itv', '--quiet'], { input: packNewc(SAMPLE) });
  const rows = stdout
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/));
  // cpio -tv: mode links owner group size(or "major, minor") month day year/time name [-> target]
  const byName = new Map(rows.map((r) => [r.slice(r.indexOf('->') > 0 ? -3 : -1)[0] ?? '', r]));
  assert.deepEqual([...byName.keys()], ['bin', 'dev', 'tmp', 'dev/console', 'bin/tool', 'bin/sh', 'empty', 'odd-size']);
  assert.equal(byName.get('tmp')?.[0], 'drwxrwxrwt');
  assert.equal(byName.get('dev/console')?.[0], 'crw-------');
  assert.deepEqual(byName.get('dev/console')?.slice(4, 6), ['5,', '1']);
  assert.equal(byName.get('bin/tool')?.[0], '-rwxr-xr-x');
  assert.equal(byName.get('bin/sh')?.[0], 'lrwxrwxrwx');
  assert.equal(byName.get('bin/sh')?.at(-1), 'tool');
  assert.equal(byName.get('odd-size')?.[4], '4097');
  assert.equal(byName.get('bin')?.[2], 'root');
});

test('GNU cpio extracts what packNewc wrote', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avp-cpio-test-'));
  try {
    // The device node needs root to create; the rest is extracted as any user.
    const entries = SAMPLE.filter((e) => e.type !== 'chardev');
    await runTool('cpio', ['-id', '--quiet', '--no-absolute-filenames'], { cwd: dir, input: packNewc(entries) });
    assert.equal(await readFile(join(dir, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal((await stat(join(dir, 'bin/tool'))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(dir, 'bin/sh')), 'tool');
    assert.deepEqual(await readFile(join(dir, 'odd-size')), Buffer.alloc(4097, 7));
    assert.equal((await stat(join(dir, 'empty'))).size, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
