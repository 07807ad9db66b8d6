// SPDX-License-Identifier: Apache-2.0
/** `avp balloon VM SIZE`: the sizes it takes (MiB, or a unit in whole MiB) and the ones it refuses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../errors.js';
import { balloonTargetBytes } from './balloon.js';

test('balloon SIZE: MiB as a number, or a size with a unit', () => {
  assert.equal(balloonTargetBytes('192'), 192 * 2 ** 20);
  assert.equal(balloonTargetBytes('192M'), 192 * 2 ** 20);
  assert.equal(balloonTargetBytes('1G'), 2 ** 30);
});

test('balloon SIZE: anything else is refused with what is expected', () => {
  for (const bad of ['0', '-5', '1.5', '100K', 'lots', '']) {
    assert.throws(() => balloonTargetBytes(bad), (e: unknown) => hasCode(e, 'CLI_USAGE') && /SIZE must be MiB as a whole number or a size with a unit in whole MiB/.test((e as Error).message), bad);
  }
});
