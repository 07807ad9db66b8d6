// SPDX-License-Identifier: Apache-2.0
/**
 * The conformance suite against a back-end nobody here wrote: qemu-storage-daemon 7.2 exporting a
 * raw image as vhost-user-blk (shared/reference/qemu-7.2-and-node-notes.md §9), writable and
 * read-only. Every verdict must be the one recorded, with its reason, in
 * conformance/expected/qemu-storage-daemon-blk*.txt; a change in either direction fails the test.
 * Skipped when qemu-storage-daemon is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedFile, runAgainstExpected } from './testing.js';

const QSD = '/usr/bin/qemu-storage-daemon';

function installed(): boolean {
  try {
    accessSync(QSD, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function image(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'avp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(16 << 20, 0x3c));
  return file;
}

test('conformance: qemu-storage-daemon vhost-user-blk, writable', { skip: !installed() && `${QSD} is not installed` }, async (t) => {
  const img = image(t);
  const cmd = `${QSD} --blockdev driver=file,node-name=f0,filename=${img} --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path={socket},writable=on`;
  const { problems } = await runAgainstExpected('blk', cmd, expectedFile('qemu-storage-daemon-blk.txt'), 2000);
  assert.deepEqual(problems, []);
});

test('conformance: qemu-storage-daemon vhost-user-blk, read-only', { skip: !installed() && `${QSD} is not installed` }, async (t) => {
  const img = image(t);
  const cmd = `${QSD} --blockdev driver=file,node-name=f0,filename=${img},read-only=on --export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path={socket},writable=off`;
  const { problems } = await runAgainstExpected('blk', cmd, expectedFile('qemu-storage-daemon-blk-ro.txt'), 2000);
  assert.deepEqual(problems, []);
});
