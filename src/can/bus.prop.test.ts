// SPDX-License-Identifier: Apache-2.0
/**
 * Property test of the bus's arbitration. AVP_PROPERTY_RUNS sets the number of cases.
 *
 * Four open nodes send random frames (standard, extended, remote, FD) at random times while the
 * clock moves in random steps, on time or late (a busy event loop). Checked from what reached the
 * wire: every frame is delivered once; frames never overlap and never start before they arrived;
 * the bus never idles while a frame waits (work conserving); and each frame that went on the wire
 * at time t had the smallest arbitration key among all frames that had arrived before t and were still
 * waiting (lowest identifier first, as CAN arbitration).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CanBus } from './bus.js';
import { type CanFrame, arbitrationKey, canFrame } from './frame.js';
import { ManualClock, RecordingSink } from './testing.js';
import { frameTimeUs } from './timing.js';

const runs = Number(process.env['AVP_PROPERTY_RUNS'] ?? 100);
const EPS = 1e-6;

const frameArb = fc.oneof(
  fc.record({ id: fc.integer({ min: 0, max: 0x7ff }), n: fc.integer({ min: 0, max: 8 }) }).map(({ id, n }) => canFrame({ id, data: new Uint8Array(n).fill(id & 0xff) })),
  fc.record({ id: fc.integer({ min: 0, max: 0x1fffffff }), n: fc.integer({ min: 0, max: 8 }) }).map(({ id, n }) => canFrame({ id, extended: true, data: new Uint8Array(n) })),
  fc.integer({ min: 0, max: 0x7ff }).map((id) => canFrame({ id, rtr: true, rtrLength: 2 })),
  fc.record({ id: fc.integer({ min: 0, max: 0x7ff }), brs: fc.boolean() }).map(({ id, brs }) => canFrame({ id, fd: true, brs, data: new Uint8Array(12) })),
);
const stepArb = fc.record({ node: fc.integer({ min: 0, max: 3 }), frame: frameArb, advance: fc.constantFrom(0, 0, 0, 0.05, 0.2, 1, 3), late: fc.boolean() });

test('property: arbitration order, no overlap, work conserving, every frame delivered once', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
      const clock = new ManualClock();
      const rates = { bitrate: 500_000, dataBitrate: 2_000_000 };
      const wire: Array<{ frame: CanFrame; sender: string; end: number }> = [];
      const bus = new CanBus({ name: 'p', clock, ...rates, onWire: (frame, sender, end) => wire.push({ frame, sender, end }) });
      const nodes = [0, 1, 2, 3].map((i) => bus.addNode({ name: `n${i}`, open: true, queueLimit: 1000 }, new RecordingSink()));
      const sent: Array<{ frame: CanFrame; sender: string; arrival: number }> = [];
      for (const s of steps) {
        // Safe: node index is 0-3.
        assert.equal(nodes[s.node]!.sendFrame(s.frame), 'queued');
        sent.push({ frame: s.frame, sender: `n${s.node}`, arrival: clock.now() });
        if (s.late) clock.jump(s.advance);
        else clock.advance(s.advance);
      }
      clock.advance(0);
      clock.advance(10_000, true);
      assert.equal(wire.length, sent.length, 'every frame delivered once');
      const waiting = [...sent];
      let prevEnd = -Infinity;
      for (const w of wire) {
        const start = w.end - frameTimeUs(w.frame, rates) / 1000;
        const i = waiting.findIndex((x) => x.frame === w.frame);
        assert.ok(i >= 0, 'a frame that was sent');
        // Safe: found above.
        const me = waiting[i]!;
        assert.equal(me.sender, w.sender);
        assert.ok(start >= me.arrival - EPS, 'starts after it arrived');
        assert.ok(start >= prevEnd - EPS, 'no overlap');
        const earliest = Math.min(...waiting.map((x) => x.arrival));
        assert.ok(Math.abs(start - Math.max(prevEnd, earliest)) < EPS, 'the bus does not idle while a frame waits');
        for (const x of waiting) {
          if (x !== me && x.arrival < start - EPS) assert.ok(arbitrationKey(w.frame) <= arbitrationKey(x.frame), `0x${w.frame.id.toString(16)} went before 0x${x.frame.id.toString(16)}, which had arrived`);
        }
        waiting.splice(i, 1);
        prevEnd = w.end;
      }
    }),
    { numRuns: runs },
  );
});
