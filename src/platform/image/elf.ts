// SPDX-License-Identifier: Apache-2.0
/**
 * Just enough of the ELF format to find what a dynamically linked program needs at run time: its
 * program interpreter (PT_INTERP) and the shared libraries of its dynamic section (DT_NEEDED), plus
 * a library's own name (DT_SONAME). The image build uses it to copy a Debian program and the
 * libraries it loads into the initramfs, without running the program or ldd.
 *
 * Owns: parsing 64-bit little-endian ELF files (x86-64, arm64); every offset is bounds-checked and a
 * damaged file is an ImageBuildError, never a wrong answer. Does not own: finding the library files
 * (tools.ts's caller, guest-tools.ts).
 */
import { ImageBuildError } from '../errors.js';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_SONAME = 14;

export interface ElfDeps {
  /** PT_INTERP: the dynamic loader's path (e.g. /lib64/ld-linux-x86-64.so.2), if any. */
  interp: string | undefined;
  /** DT_NEEDED sonames, in file order. */
  needed: string[];
  /** DT_SONAME, for a shared library. */
  soname: string | undefined;
}

/** True when `data` starts with the ELF magic. */
export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

/** @throws ImageBuildError for a file that is not a 64-bit little-endian ELF or is damaged. */
export function elfDeps(data: Uint8Array, what = 'file'): ElfDeps {
  const fail = (why: string): never => {
    throw new ImageBuildError(`${what}: ${why}`);
  };
  if (!isElf(data)) fail('not an ELF file');
  if (data[4] !== 2 || data[5] !== 1) fail('not a 64-bit little-endian ELF file');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u64 = (off: number): number => {
    if (off < 0 || off + 8 > data.length) fail(`offset ${off} outside the file`);
    const n = Number(v.getBigUint64(off, true));
    return Number.isSafeInteger(n) ? n : fail(`value at ${off} too large`);
  };
  const u32 = (off: number): number => (off < 0 || off + 4 > data.length ? fail(`offset ${off} outside the file`) : v.getUint32(off, true));
  const u16 = (off: number): number => (off < 0 || off + 2 > data.length ? fail(`offset ${off} outside the file`) : v.getUint16(off, true));
  const cstr = (off: number): string => {
    if (off < 0 || off >= data.length) fail(`string at ${off} outside the file`);
    const end = data.indexOf(0, off);
    return new TextDecoder().decode(data.subarray(off, end < 0 ? fail('unterminated string') : end));
  };
  const phoff = u64(0x20);
  const phentsize = u16(0x36);
  const phnum = u16(0x38);
  if (phentsize < 56) fail(`program header size ${phentsize}`);
  const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
  let dynamic: { offset: number; size: number } | undefined;
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = u32(ph);
    const offset = u64(ph + 8);
    const vaddr = u64(ph + 16);
    const filesz = u64(ph + 32);
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
    else if (type === PT_INTERP) interp = cstr(offset);
  }
  if (dynamic === undefined) return { interp, needed: [], soname: undefined };
  // DT_STRTAB holds a virtual address: map it to a file offset through the PT_LOAD segments.
  const fileOffset = (vaddr: number): number => {
    const seg = loads.find((l) => vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz);
    return seg === undefined ? fail(`address 0x${vaddr.toString(16)} is in no loaded segment`) : seg.offset + (vaddr - seg.vaddr);
  };
  const entries: Array<{ tag: number; val: number }> = [];
  for (let off = dynamic.offset; off + 16 <= dynamic.offset + dynamic.size; off += 16) {
    const tag = u64(off);
    if (tag === DT_NULL) break;
    entries.push({ tag, val: u64(off + 8) });
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB);
  if (strtab === undefined) fail('dynamic section without DT_STRTAB');
  // Safe: fail() above throws when strtab is undefined.
  const base = fileOffset(strtab!.val);
  const needed = entries.filter((e) => e.tag === DT_NEEDED).map((e) => cstr(base + e.val));
  const so = entries.find((e) => e.tag === DT_SONAME);
  return { interp, needed, soname: so === undefined ? undefined : cstr(base + so.val) };
}
