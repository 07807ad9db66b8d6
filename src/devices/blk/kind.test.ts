// SPDX-License-Identifier: Apache-2.0
/** The blk kind: options through the registry build a device on the named image, with its feature bits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasCode } from '../../errors.js';
import { featureBit } from '../../spec/virtio.js';
import { parseOptions } from '../options.js';
import { createDevice, kindOf } from '../registry.js';
import { BlkDevice } from './model.js';

const F_RO = 5;
const F_MQ = 12;
const F_DISCARD = 13;

test('blk kind: the registry builds a blk device over the named image (--blk-file alias), with the injected fallocate', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avp-blk-opt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, new Uint8Array(1 << 20));
  const calls: number[][] = [];
  const dev = createDevice({ kind: 'blk', options: { blkFile: file, numQueues: 2, serial: 'avp0' } }, { fallocate: (...a) => void calls.push(a) });
  assert.ok(dev instanceof BlkDevice);
  assert.equal(dev.capacity, 2048);
  assert.ok(dev.offeredFeatures & featureBit(F_MQ));
  assert.deepEqual(dev.readConfig(56, 1), Uint8Array.of(1), 'fallocate given: write-zeroes may unmap');
  assert.equal(kindOf('blk').vhostUserType, 'block');
  assert.deepEqual(kindOf('blk').capabilities, ['blk-file', 'read-only']);
  const ro = createDevice({ kind: 'blk', options: parseOptions(kindOf('blk'), { image: file, readOnly: true, discard: false, blkSize: '4096', writethrough: true }, 'cli') });
  assert.ok(ro.offeredFeatures & featureBit(F_RO));
  assert.equal(ro.offeredFeatures & featureBit(F_DISCARD), 0n);
  assert.deepEqual([ro.readConfig(20, 4), ro.readConfig(32, 1)], [Uint8Array.of(0, 16, 0, 0), Uint8Array.of(0)]);
  for (const bad of [{}, { blkFile: '' }, { blkFile: file, numQueues: 'two' }, { blkFile: file, blkSize: 1000 }, { blkFile: file, readOnly: 'yes' }, { blkFile: file, serial: 7 }, { blkFile: file, serial: 'x'.repeat(21) }]) {
    // The schema's checks throw DEVICE_BAD_OPTION; the device's own (blkSize 1000 is no power of 2) BLK_BAD_OPTION.
    assert.throws(() => createDevice({ kind: 'blk', options: bad }), (e: unknown) => hasCode(e, 'DEVICE_BAD_OPTION') || hasCode(e, 'BLK_BAD_OPTION'), JSON.stringify(bad));
  }
  assert.throws(() => createDevice({ kind: 'blk', options: { blkFile: path.join(dir, 'missing.img') } }), { code: 'ENOENT' });
});
