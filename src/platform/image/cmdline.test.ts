// SPDX-License-Identifier: Apache-2.0
/**
 * Kernel command-line encoding and the 2047-byte limit, and reading the limit from a bzImage
 * setup header built here byte by byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../errors.js';
import { BASE_KERNEL_PARAMS, X86_CMDLINE_MAX_BYTES, bzImageCmdlineLimit, checkCmdlineLength, cmdParam, kernelCmdline, scriptParam } from './cmdline.js';

test('base parameters: serial console, panic ends the run, quiet kernel', () => {
  assert.deepEqual(BASE_KERNEL_PARAMS, ['console=ttyS0', 'panic=-1', 'quiet']);
  assert.equal(kernelCmdline(), 'console=ttyS0 panic=-1 quiet');
  assert.equal(kernelCmdline(['a=1', 'b']), 'console=ttyS0 panic=-1 quiet a=1 b');
});

test('scriptParam: standard base64 of the UTF-8 script, one word', () => {
  assert.equal(scriptParam('echo hi\n'), 'avp.script=ZWNobyBoaQo=');
  assert.doesNotMatch(scriptParam('x'.repeat(500)), /\s/);
});

test('cmdParam: quoted; quotes and line breaks refused', () => {
  assert.equal(cmdParam('cat /proc/uptime'), 'avp.cmd="cat /proc/uptime"');
  for (const bad of ['', 'echo "x"', 'a\nb']) {
    assert.throws(() => cmdParam(bad), (e: unknown) => hasCode(e, 'VM_SPEC_INVALID'));
  }
});

test('checkCmdlineLength: 2047 bytes fit, 2048 do not; counts UTF-8 bytes', () => {
  assert.equal(X86_CMDLINE_MAX_BYTES, 2047);
  checkCmdlineLength('a'.repeat(2047));
  assert.throws(() => checkCmdlineLength('a'.repeat(2048)), (e: unknown) => hasCode(e, 'GUEST_CMDLINE_TOO_LONG'));
  assert.throws(() => checkCmdlineLength('é'.repeat(1024)), (e: unknown) => hasCode(e, 'GUEST_CMDLINE_TOO_LONG'));
  checkCmdlineLength('abc', 3);
});

test('a script of about 1,400 bytes still fits after the base parameters', () => {
  checkCmdlineLength(kernelCmdline([scriptParam('x'.repeat(1500))]));
  assert.throws(() => checkCmdlineLength(kernelCmdline([scriptParam('x'.repeat(1520))])), (e: unknown) =>
    hasCode(e, 'GUEST_CMDLINE_TOO_LONG'),
  );
});

function header(version: number, cmdlineSize: number): Uint8Array {
  const b = new Uint8Array(0x300);
  b.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  b[0x206] = version & 0xff;
  b[0x207] = version >> 8;
  b[0x238] = cmdlineSize & 0xff;
  b[0x239] = (cmdlineSize >> 8) & 0xff;
  return b;
}

test('bzImageCmdlineLimit: cmdline_size from protocol 2.06, 255 before, undefined for non-bzImage', () => {
  assert.equal(bzImageCmdlineLimit(header(0x20f, 2047)), 2047);
  assert.equal(bzImageCmdlineLimit(header(0x206, 4095)), 4095);
  assert.equal(bzImageCmdlineLimit(header(0x205, 2047)), 255);
  assert.equal(bzImageCmdlineLimit(new Uint8Array(0x300)), undefined);
  assert.equal(bzImageCmdlineLimit(new Uint8Array(16)), undefined);
});
