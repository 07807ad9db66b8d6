// SPDX-License-Identifier: Apache-2.0
/** ELF dependency parsing (elf.ts) on a hand-built file, a host program, and damaged input; and the guest-tools helpers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dependencyNames } from './apt.js';
import { elfDeps, isElf } from './elf.js';

/**
 * A minimal ELF64 LE file: header, 3 program headers (LOAD of the whole file at vaddr 0x400000,
 * INTERP, DYNAMIC), a string table and a dynamic section with NEEDED ×2, SONAME, STRTAB, NULL.
 */
function tinyElf(): Uint8Array {
  const strtab = '\0libfoo.so.1\0libc.so.6\0libtiny.so.3\0/lib64/ld-test.so\0';
  const str = new TextEncoder().encode(strtab);
  const off = (s: string) => strtab.indexOf(`\0${s}\0`) + 1;
  const phoff = 64;
  const strOff = phoff + 3 * 56;
  const dynOff = strOff + str.length + ((8 - ((strOff + str.length) % 8)) % 8);
  const dyn: Array<[number, number]> = [
    [1, off('libfoo.so.1')],
    [1, off('libc.so.6')],
    [14, off('libtiny.so.3')],
    [5, 0x400000 + strOff],
    [0, 0],
  ];
  const size = dynOff + dyn.length * 16;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setBigUint64(0x20, BigInt(phoff), true);
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, 3, true);
  const ph = (i: number, type: number, offset: number, vaddr: number, filesz: number) => {
    const p = phoff + i * 56;
    v.setUint32(p, type, true);
    v.setBigUint64(p + 8, BigInt(offset), true);
    v.setBigUint64(p + 16, BigInt(vaddr), true);
    v.setBigUint64(p + 32, BigInt(filesz), true);
  };
  ph(0, 1, 0, 0x400000, size);
  ph(1, 3, strOff + off('/lib64/ld-test.so'), 0x400000 + strOff + off('/lib64/ld-test.so'), 18);
  ph(2, 2, dynOff, 0x400000 + dynOff, dyn.length * 16);
  b.set(str, strOff);
  dyn.forEach(([tag, val], i) => {
    v.setBigUint64(dynOff + i * 16, BigInt(tag), true);
    v.setBigUint64(dynOff + i * 16 + 8, BigInt(val), true);
  });
  return b;
}

test('elfDeps: interpreter, DT_NEEDED in order and DT_SONAME of a hand-built file', () => {
  assert.deepEqual(elfDeps(tinyElf()), { interp: '/lib64/ld-test.so', needed: ['libfoo.so.1', 'libc.so.6'], soname: 'libtiny.so.3' });
});

test('elfDeps: a host program needs libc.so.6 and names a loader', () => {
  const prog = ['/bin/true', '/usr/bin/true'].find((p) => existsSync(p));
  assert.ok(prog !== undefined);
  const deps = elfDeps(readFileSync(prog), prog);
  assert.ok(deps.needed.includes('libc.so.6'), deps.needed.join(' '));
  assert.match(deps.interp ?? '', /ld-linux/);
});

test('elfDeps: damaged or foreign files are errors, never a wrong answer', () => {
  assert.equal(isElf(new TextEncoder().encode('#!/bin/sh')), false);
  assert.throws(() => elfDeps(new TextEncoder().encode('#!/bin/sh\n')), { code: 'IMAGE_BUILD_FAILED' });
  const elf32 = tinyElf();
  elf32[4] = 1;
  assert.throws(() => elfDeps(elf32), /64-bit/);
  const full = tinyElf();
  for (const cut of [20, 64, 120, full.length - 20]) assert.throws(() => elfDeps(full.subarray(0, cut)), { code: 'IMAGE_BUILD_FAILED' }, `cut at ${cut}`);
  const badStrtab = tinyElf();
  const dv = new DataView(badStrtab.buffer);
  // Point DT_STRTAB (4th dynamic entry) at an address no segment maps.
  const dynOff = Number(dv.getBigUint64(64 + 2 * 56 + 8, true));
  dv.setBigUint64(dynOff + 3 * 16 + 8, 0x9999_0000n, true);
  assert.throws(() => elfDeps(badStrtab), /no loaded segment/);
});

test('dependencyNames: first alternative, no versions or arch qualifiers', () => {
  assert.deepEqual(dependencyNames('libc6 (>= 2.34), libssl3 (>= 3.0.0), libwrap0 (>= 7.6-4~)'), ['libc6', 'libssl3', 'libwrap0']);
  assert.deepEqual(dependencyNames('debconf (>= 0.5) | debconf-2.0, perl:any, '), ['debconf', 'perl']);
  assert.deepEqual(dependencyNames(''), []);
});
