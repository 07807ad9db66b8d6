// SPDX-License-Identifier: Apache-2.0
/** Token-bucket arithmetic of the port shaper on a fake clock (milliseconds). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Shaper, TokenBucket, defaultBurstBytes, defaultBurstPackets } from './shaper.js';

test('token bucket: starts full, refills at rate·Δt up to the burst, may go negative', () => {
  const b = new TokenBucket(1000, 1500, 0);
  assert.equal(b.tokens(0), 1500);
  b.take(2000, 0);
  assert.equal(b.tokens(0), -500);
  assert.equal(b.tokens(250), -250);
  assert.equal(b.tokens(10_000), 1500, 'capped at the burst');
  assert.equal(b.tokens(5_000), 1500, 'a clock step back adds nothing');
});

test('token bucket: waits are exact: strictly above a level (+1 ms), at least a level (ceil)', () => {
  const b = new TokenBucket(1000, 1500, 0);
  b.take(1560, 0); // -60
  assert.equal(b.msUntilAbove(0, 0), 61);
  assert.equal(b.msUntilAbove(0, 60), 1);
  assert.equal(b.msUntilAbove(0, 61), 0);
  const p = new TokenBucket(10, 2, 0);
  p.take(2, 0);
  assert.equal(p.msUntilAtLeast(1, 0), 100);
  assert.equal(p.msUntilAtLeast(1, 30), 70);
  assert.equal(p.msUntilAtLeast(1, 100), 0);
  const f = new TokenBucket(3, 1, 0);
  f.take(1, 0);
  assert.equal(f.msUntilAtLeast(1, 0), 334, '1/3 s rounds up to a whole ms');
});

test('shaper: back-pressure admits while the byte bucket is positive and a packet token is there', () => {
  const s = new Shaper({ bytesPerSec: 1000, burstBytes: 1000, packetsPerSec: 100, burstPackets: 1 }, 1514, 0);
  assert.equal(s.mayPop(0), true);
  s.charge(600, 0);
  assert.equal(s.mayPop(0), false, 'packet bucket empty');
  assert.equal(s.msUntilAdmit(0), 10);
  assert.equal(s.mayPop(10), true);
  s.charge(600, 10); // 400 + 10 - 600 = -190
  assert.equal(s.msUntilAdmit(10), 191, 'bytes decide now');
});

test('shaper: drop policy charges only frames both buckets can pay for in full', () => {
  const s = new Shaper({ bytesPerSec: 1000, burstBytes: 1000, policy: 'drop' }, 1514, 0);
  assert.equal(s.tryCharge(700, 0), true);
  assert.equal(s.tryCharge(700, 0), false);
  assert.equal(s.bytes?.tokens(0), 300, 'a refused frame costs nothing');
  assert.equal(s.tryCharge(700, 400), true);
});

test('shaper: default bursts are 10 ms of the rate, at least one frame / one packet', () => {
  assert.equal(defaultBurstBytes(125_000, 1514), 1514);
  assert.equal(defaultBurstBytes(10_000_000, 1514), 100_000);
  assert.equal(defaultBurstPackets(50), 1);
  assert.equal(defaultBurstPackets(10_000), 100);
  assert.throws(() => new TokenBucket(0, 1, 0), { code: 'NET_BAD_OPTION' });
  assert.throws(() => new TokenBucket(1, -1, 0), { code: 'NET_BAD_OPTION' });
});
