// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CANFD_MTU, CAN_MTU, decodeRawCanFrame, encodeRawCanFrame, openCanRaw } from './can.js';

test('can_frame layout: can_id (native u32), len at 4, data at 8', () => {
  const b = encodeRawCanFrame({ canId: 0x80000123, fd: false, flags: 0, data: Uint8Array.of(0xaa, 0xbb), rtrLength: 0 });
  assert.equal(b.length, CAN_MTU);
  assert.deepEqual([...b.subarray(0, 10)], [0x23, 0x01, 0x00, 0x80, 2, 0, 0, 0, 0xaa, 0xbb]);
  assert.deepEqual(decodeRawCanFrame(b, CAN_MTU), { canId: 0x80000123, fd: false, flags: 0, data: Uint8Array.of(0xaa, 0xbb), rtrLength: 0 });
});

test('remote frames keep their length in len and carry no data; canfd_frame has flags at 5', () => {
  const r = encodeRawCanFrame({ canId: 0x40000010, fd: false, flags: 0, data: new Uint8Array(0), rtrLength: 4 });
  assert.equal(r[4], 4);
  assert.deepEqual(decodeRawCanFrame(r, CAN_MTU), { canId: 0x40000010, fd: false, flags: 0, data: new Uint8Array(0), rtrLength: 4 });
  const fd = encodeRawCanFrame({ canId: 0x10, fd: true, flags: 1, data: new Uint8Array(12).fill(7), rtrLength: 0 });
  assert.equal(fd.length, CANFD_MTU);
  assert.deepEqual([fd[4], fd[5]], [12, 1]);
  assert.deepEqual(decodeRawCanFrame(fd, CANFD_MTU)?.data, new Uint8Array(12).fill(7));
  assert.equal(decodeRawCanFrame(new Uint8Array(20), 20), null, 'a read of another size is not a frame');
});

test('a hostile len in a kernel frame is capped at the struct size', () => {
  const b = new Uint8Array(CAN_MTU);
  b[4] = 200;
  assert.equal(decodeRawCanFrame(b, CAN_MTU)?.data.length, 8);
});

test('opening a CAN interface that is not there fails with a SysError naming the call', () => {
  // This host may lack CAN altogether (EAFNOSUPPORT at socket) or just the interface (ENODEV).
  assert.throws(() => openCanRaw('avpnone0'), (e: unknown) => {
    const code = (e as { errnoName?: string }).errnoName ?? '';
    return ['EAFNOSUPPORT', 'ENODEV'].includes(code);
  });
  assert.throws(() => openCanRaw('bad name'), { code: 'SYS_INVALID_ARGUMENT' });
});
