// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAN_EFF_FLAG, filterMatches, formatCanFilter, parseCanFilter, passes } from './filter.js';
import { canFrame } from './frame.js';

test('filters: <id>:<mask> as SocketCAN matches (flags only when the mask has them)', () => {
  const f = parseCanFilter('123:7FF');
  assert.deepEqual(f, { id: 0x123, mask: 0x7ff, invert: false });
  assert.ok(filterMatches(f, canFrame({ id: 0x123 })));
  assert.ok(filterMatches(f, canFrame({ id: 0x123, extended: true })), 'no EFF bit in the mask: extended 0x123 matches too');
  assert.ok(!filterMatches(f, canFrame({ id: 0x124 })));
  const strict = parseCanFilter('123:C00007FF');
  assert.ok(filterMatches(strict, canFrame({ id: 0x123 })));
  assert.ok(!filterMatches(strict, canFrame({ id: 0x123, rtr: true })));
  assert.ok(!filterMatches(strict, canFrame({ id: 0x123, extended: true })));
});

test('filters: 8 hex digits mean an extended id; ~ inverts; a range by mask', () => {
  const ext = parseCanFilter('12345678:1FFFFFFF');
  assert.equal(ext.id, (0x12345678 | CAN_EFF_FLAG) >>> 0);
  assert.ok(filterMatches(ext, canFrame({ id: 0x12345678, extended: true })));
  const notEngine = parseCanFilter('100~700');
  assert.ok(!filterMatches(notEngine, canFrame({ id: 0x1ff })));
  assert.ok(filterMatches(notEngine, canFrame({ id: 0x200 })));
  assert.ok(passes([], canFrame({ id: 1 })));
  assert.ok(passes([parseCanFilter('1:7FF'), parseCanFilter('2:7FF')], canFrame({ id: 2 })));
  assert.ok(!passes([parseCanFilter('1:7FF'), parseCanFilter('2:7FF')], canFrame({ id: 3 })));
});

test('filters: text round trip and precise errors', () => {
  for (const t of ['123:7FF', '00000123~1FFFFFFF', '000:0']) assert.equal(formatCanFilter(parseCanFilter(t)), t.toUpperCase().replace(/^000:0$/, '000:0'));
  for (const bad of ['123', '123:', 'xyz:7FF', '123/7FF', '123456789:1']) assert.throws(() => parseCanFilter(bad), { code: 'CAN_BAD_FILTER' });
});
