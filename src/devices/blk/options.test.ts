// SPDX-License-Identifier: Apache-2.0
/** Building virtio-blk from plain options, directly and through the device registry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '../../errors.js';
import { featureBit } from '../../spec/virtio.js';
import { DEVICE_KINDS, createDevice } from '../registry.js';
import { BlkDevice, createBlkFromOptions } from './index.js';

const F_RO = 5;
const F_MQ = 12;
const F_DISCARD = 13;

test('blk options: the registry builds a blk device over the named image, with the injected fallocate', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avp-blk-opt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, new Uint8Array(1 << 20));
  const calls: number[][] = [];
  const dev = createDevice({ kind: 'blk', options: { blkFile: file, numQueues: '2', serial: 'avp0' } }, { fallocate: (...a) => void calls.push(a) });
  assert.ok(dev instanceof BlkDevice);
  assert.equal(dev.capacity, 2048);
  assert.ok(dev.offeredFeatures & featureBit(F_MQ));
  assert.deepEqual(dev.readConfig(56, 1), Uint8Array.of(1), 'fallocate given: write-zeroes may unmap');
  assert.equal(DEVICE_KINDS['blk']?.vhostUserType, 'block');
  assert.deepEqual(DEVICE_KINDS['blk']?.capabilities, ['blk-file', 'read-only']);
  const ro = createBlkFromOptions({ blkFile: file, readOnly: true, discard: false, blkSize: 4096, writethrough: true });
  assert.ok(ro.offeredFeatures & featureBit(F_RO));
  assert.equal(ro.offeredFeatures & featureBit(F_DISCARD), 0n);
  assert.deepEqual([ro.readConfig(20, 4), ro.readConfig(32, 1)], [Uint8Array.of(0, 16, 0, 0), Uint8Array.of(0)]);
  for (const bad of [{}, { blkFile: '' }, { blkFile: file, numQueues: 'two' }, { blkFile: file, blkSize: 1000 }, { blkFile: file, readOnly: 'yes' }, { blkFile: file, serial: 7 }, { blkFile: file, serial: 'x'.repeat(21) }]) {
    // options.ts's own checks throw RangeError; the device's (blkSize 1000, a 21-byte serial) BLK_BAD_OPTION.
    assert.throws(() => createBlkFromOptions(bad), (e: unknown) => e instanceof RangeError || hasCode(e, 'BLK_BAD_OPTION'), JSON.stringify(bad));
  }
  assert.throws(() => createBlkFromOptions({ blkFile: path.join(dir, 'missing.img') }), { code: 'ENOENT' });
});
