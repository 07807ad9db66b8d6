// SPDX-License-Identifier: Apache-2.0
/** ManualReactor: the test clock runs timers in order, including ones set by timers; watches fire by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualReactor } from './manual-reactor.js';

test('manual reactor: advance runs due timers in order, chained timers too, and stops at the end time', () => {
  const r = new ManualReactor();
  const log: string[] = [];
  r.setTimer(10, () => {
    log.push(`a@${r.now()}`);
    r.setTimer(5, () => log.push(`chained@${r.now()}`));
  });
  r.setTimer(12, () => log.push(`b@${r.now()}`));
  r.setTimer(100, () => log.push('late'));
  r.setTimer(1, () => log.push('cancelled')).cancel();
  r.advance(20);
  assert.deepEqual(log, ['a@10', 'b@12', 'chained@15']);
  assert.equal(r.now(), 20);
  assert.equal(r.pendingTimers(), 1);
});

test('manual reactor: watches fire until closed; writable only when asked for', () => {
  const r = new ManualReactor();
  const seen: string[] = [];
  const w = r.watch(7, (ready) => seen.push(`${ready.readable}/${ready.writable}`));
  r.fire(7, { readable: true, writable: true });
  w.setWritable(true);
  r.fire(7, { readable: false, writable: true });
  w.close();
  assert.equal(r.fire(7), 0);
  assert.deepEqual(seen, ['true/false', 'false/true']);
  assert.deepEqual(r.watchedFds(), []);
});
