// SPDX-License-Identifier: Apache-2.0
/** The switch's MAC table: learning, ageing, moves, the size cap, forgetting a port. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MacTable, isMulticast, macKey, macString, parseMac } from './mac-table.js';

const K1 = 0x5254_0000_0001;
const K2 = 0x5254_0000_0002;

test('mac: keys are the 48-bit big-endian value of the 6 octets', () => {
  const b = Uint8Array.of(0, 0xff, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54);
  assert.equal(macKey(b, 2), 0xfedc_ba98_7654);
  assert.equal(macString(0xfedc_ba98_7654), 'fe:dc:ba:98:76:54');
  assert.equal(macString(1), '00:00:00:00:00:01');
  assert.deepEqual(parseMac('52:54:00:AB:cd:01'), Uint8Array.of(0x52, 0x54, 0, 0xab, 0xcd, 1));
  assert.equal(parseMac('52:54:00:ab:cd'), undefined);
  assert.equal(parseMac('52-54-00-ab-cd-01'), undefined);
  assert.equal(isMulticast(Uint8Array.of(0x01), 0), true);
  assert.equal(isMulticast(Uint8Array.of(0x33), 0), true);
  assert.equal(isMulticast(Uint8Array.of(0x52), 0), false);
});

test('mac table: learns, looks up, ages out after exactly the ageing time', () => {
  const t = new MacTable(1000, 16);
  t.learn(K1, 3, 0);
  assert.equal(t.lookup(K1, 1000), 3);
  assert.equal(t.lookup(K1, 1001), undefined);
  assert.equal(t.lookup(K1, 0), undefined, 'forgotten once expired');
  assert.deepEqual(t.stats(), { entries: 0, learned: 1, moves: 0, aged: 1, full: 0 });
});

test('mac table: re-learning refreshes the entry; a move is counted', () => {
  const t = new MacTable(1000, 16);
  t.learn(K1, 1, 0);
  t.learn(K1, 1, 900);
  assert.equal(t.lookup(K1, 1800), 1);
  t.learn(K1, 2, 1800);
  assert.equal(t.lookup(K1, 1800), 2);
  assert.equal(t.stats().moves, 1);
});

test('mac table: a full table purges expired entries, else refuses new addresses', () => {
  const t = new MacTable(1000, 2);
  t.learn(K1, 1, 0);
  t.learn(K2, 1, 500);
  t.learn(0x02, 1, 900);
  assert.equal(t.lookup(0x02, 900), undefined, 'full, nothing expired: not learned');
  assert.equal(t.stats().full, 1);
  t.learn(0x02, 1, 1200);
  assert.equal(t.lookup(0x02, 1200), 1, 'K1 had expired and was purged');
  assert.equal(t.stats().entries, 2);
});

test('mac table: forgetting a port drops only its entries', () => {
  const t = new MacTable(1000, 16);
  t.learn(K1, 1, 0);
  t.learn(K2, 2, 0);
  t.forgetPort(1);
  assert.equal(t.lookup(K1, 0), undefined);
  assert.equal(t.lookup(K2, 0), 2);
  assert.deepEqual(t.dump(10), [{ mac: '52:54:00:00:00:02', port: 2, ageMs: 10 }]);
});
