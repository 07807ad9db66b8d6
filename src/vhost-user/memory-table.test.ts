// SPDX-License-Identifier: Apache-2.0
/**
 * MemoryTable against hostile memory (#18): a region larger than its fd, sealing, size checks of
 * unsealed regions, the strict option, and what `release` gives back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F_SEAL_SHRINK, SysError, closeQuiet, dup, ftruncate, getSeals, isOpenFd, memfdCreate } from '../sys/index.js';
import { MemoryTable } from './memory-table.js';
import { mappingsOf, uniqueName } from './testing/attacker.js';

const KIB = 1024;
const region = (size: number) => ({ guestAddr: 0, size, userAddr: 0x7f00_0000_0000, mmapOffset: 0 });

function memfd(t: { after: (fn: () => void) => void }, size: number, sealable: boolean): { fd: number; name: string } {
  const name = uniqueName('table');
  const fd = memfdCreate(name, size, { allowSealing: sealable });
  t.after(() => closeQuiet(fd));
  return { fd, name };
}

const code = (c: string) => (e: unknown) => typeof e === 'object' && e !== null && 'code' in e && e.code === c;

test('a region whose mmap_offset + size passes the end of its fd is refused and nothing is mapped', (t) => {
  const table = new MemoryTable();
  const m = memfd(t, 64 * KIB, false);
  const given = dup(m.fd);
  assert.throws(() => table.add(region(128 * KIB), given), code('VHOST_USER_BAD_MEMORY_REGION'));
  assert.equal(isOpenFd(given), false, 'the fd was closed');
  assert.equal(mappingsOf(m.name), 0);
  assert.throws(() => table.add({ ...region(60 * KIB), mmapOffset: 8 * KIB }, dup(m.fd)), code('VHOST_USER_BAD_MEMORY_REGION'));
  assert.equal(table.mappingCount, 0);
});

test('a sealable memfd is sealed against shrinking and its fd is not kept', (t) => {
  const table = new MemoryTable();
  const m = memfd(t, 64 * KIB, true);
  table.add(region(64 * KIB), dup(m.fd));
  assert.equal((getSeals(m.fd) ?? 0) & F_SEAL_SHRINK, F_SEAL_SHRINK);
  assert.equal(table.hasUnsealed, false);
  assert.throws(() => ftruncate(m.fd, 4 * KIB), (e: unknown) => e instanceof SysError && e.errnoName === 'EPERM');
  for (const r of table.clear()) r.release();
  assert.equal(mappingsOf(m.name), 0);
});

test('an unsealable memfd keeps its fd; checkIntact throws VHOST_USER_MEMORY_SHRUNK once it shrank; release closes and unmaps', (t) => {
  const table = new MemoryTable();
  const m = memfd(t, 64 * KIB, false);
  table.add(region(64 * KIB), dup(m.fd));
  assert.equal(table.hasUnsealed, true);
  table.checkIntact();
  ftruncate(m.fd, 32 * KIB);
  assert.throws(() => table.checkIntact(), code('VHOST_USER_MEMORY_SHRUNK'));
  assert.equal(mappingsOf(m.name), 1);
  for (const r of table.clear()) r.release();
  assert.equal(mappingsOf(m.name), 0);
});

test('requireSealed refuses memory that cannot be sealed and accepts memory that can', (t) => {
  const table = new MemoryTable({ requireSealed: true });
  const plain = memfd(t, 64 * KIB, false);
  assert.throws(() => table.add(region(64 * KIB), dup(plain.fd)), code('VHOST_USER_BAD_MEMORY_REGION'));
  assert.equal(mappingsOf(plain.name), 0);
  const sealable = memfd(t, 64 * KIB, true);
  table.add(region(64 * KIB), dup(sealable.fd));
  assert.equal(table.mappingCount, 1);
  for (const r of table.clear()) r.release();
});
