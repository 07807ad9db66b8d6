// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignalTrace } from './signal-trace.js';

test('signal trace: header, comments, values held between rows, unsorted rows sorted', () => {
  const t = SignalTrace.parse('time,signal,value\n# engine\n0,coolant,20\n10.5,coolant,85.5\n5,coolant,40\n1,door,1\n');
  assert.deepEqual(t.signals.sort(), ['coolant', 'door']);
  assert.equal(t.valueAt('coolant', 0), 20);
  assert.equal(t.valueAt('coolant', 7), 40);
  assert.equal(t.valueAt('coolant', 100), 85.5);
  assert.equal(t.valueAt('door', 0.5), undefined);
  assert.equal(t.valueAt('nope', 1), undefined);
  assert.deepEqual(t.nextAfter('coolant', 5), { time: 10.5, value: 85.5 });
  assert.deepEqual(t.events('coolant'), [{ time: 0, value: 20 }, { time: 5, value: 40 }, { time: 10.5, value: 85.5 }]);
  assert.deepEqual(t.events('nope'), []);
});

test('signal trace: bad rows are named by line', () => {
  assert.throws(() => SignalTrace.parse('0,a,1\n1,a\n', 'x.csv'), { code: 'SIGNAL_TRACE_INVALID', message: /x\.csv:2/ });
  assert.throws(() => SignalTrace.parse('-1,a,1\n'), { message: /time must be/ });
  assert.throws(() => SignalTrace.parse('1,a,hot\n'), { message: /value must be/ });
});
