// SPDX-License-Identifier: Apache-2.0
/**
 * Property tests of the split virtqueue. AVP_PROPERTY_RUNS sets the number of cases
 * (`npm run test:props` runs 10^5).
 *
 * 1. Random valid chains (direct or indirect, any mix of readable then writable buffers, any
 *    start index so that 16-bit indexes wrap) round-trip driver → device → driver unchanged.
 * 2. Random garbage in the descriptor table and both rings never throws out of the device-side
 *    API, every chain it hands out lies inside guest memory, and bytes outside guest memory
 *    (canaries around the region in the same ArrayBuffer) are never written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GUARDED_GUEST_BASE, GUARDED_NOISE_OFFSET, createGuardedGuest, createQueuePair, seedGarbageDescriptors, serveGarbageQueue } from './testing.js';
import { DeviceQueue } from './split-device.js';
import { resolveRings } from './rings.js';
import { availRingSize, descTableSize, usedRingSize } from '../spec/split-ring.js';

const runs = Number(process.env['AVP_PROPERTY_RUNS'] ?? 200);

const chainArb = fc.record({
  readable: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 4 }),
  writable: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 4 }),
  indirect: fc.boolean(),
  fill: fc.integer({ min: 0, max: 255 }),
});

test('property: valid chains round-trip driver → device → driver unchanged', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(4, 8, 16),
      fc.boolean(),
      fc.integer({ min: 0, max: 0xffff }),
      fc.array(chainArb, { minLength: 1, maxLength: 40 }),
      (size, eventIdx, start, chains) => {
        const p = createQueuePair({ size, eventIdx, indirect: true, startIndex: start, memorySize: 1 << 20 });
        type Buf = { addr: number; len: number };
        const byHead = new Map<number, { token: number; readable: Buf[]; writable: Buf[] }>();
        const byToken = new Map<number, number>();
        /** The device serves everything pending, writing half of each writable part; the driver collects. */
        const drain = () => {
          for (let chain = p.device.pop(); chain !== null; chain = p.device.pop()) {
            const want = byHead.get(chain.head);
            assert.ok(want, `device popped head ${chain.head}, which is not outstanding`);
            assert.deepEqual(chain.readable, want.readable);
            assert.deepEqual(chain.writable, want.writable);
            const n = Math.floor(chain.writableLength / 2);
            chain.writer().write(new Uint8Array(n).fill(0x5a));
            p.device.pushUsed(chain.head, n);
            byHead.delete(chain.head);
          }
          for (let u = p.driver.popUsed(); u !== null; u = p.driver.popUsed()) {
            assert.equal(u.len, byToken.get(u.token), `used length of token ${u.token}`);
            byToken.delete(u.token);
          }
        };
        // Indirect tables live apart from buffers: between two drains at most `size` chains are
        // outstanding with consecutive tokens, so slot `token % size` is never shared.
        const tables = p.alloc.alloc(size * 8 * 16, 16);
        const bufferBase = p.alloc.alloc(0, 4096);
        let token = 0;
        for (const c of chains) {
          const count = c.readable.length + c.writable.length;
          if (count === 0 || (!c.indirect && count > size)) continue;
          if (p.driver.numFree < (c.indirect ? 1 : count)) drain();
          // Fresh buffers per chain from the same window: overlap across chains does not matter to the ring.
          p.alloc.reset();
          p.alloc.alloc(bufferBase);
          const mk = (len: number): Buf => ({ addr: p.alloc.alloc(len, 8) + (c.fill % 8), len });
          const readable = c.readable.map(mk);
          const writable = c.writable.map(mk);
          const opts = c.indirect ? { indirectTable: tables + (token % size) * 8 * 16 } : {};
          const head = p.driver.add([...readable, ...writable.map((b) => ({ ...b, writable: true }))], token, opts);
          byHead.set(head, { token, readable, writable });
          byToken.set(token, Math.floor(writable.reduce((a, b) => a + b.len, 0) / 2));
          token++;
          if (c.fill % 3 === 0) drain();
        }
        drain();
        assert.equal(byToken.size, 0, 'every chain came back');
        assert.equal(p.errors.length, 0, `no valid chain was rejected: ${p.errors.map((e) => e.error.message).join('; ')}`);
      },
    ),
    { numRuns: runs },
  );
});

test('property: garbage rings never throw, never hand out memory outside the guest, never write outside it', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 2, 4, 8, 16),
      fc.boolean(),
      fc.boolean(),
      fc.uint8Array({ minLength: 16 * 16 + 6 + 2 * 16 + 6 + 8 * 16, maxLength: 16 * 16 + 6 + 2 * 16 + 6 + 8 * 16 }),
      fc.uint8Array({ minLength: 0, maxLength: 512 }),
      fc.integer({ min: 0, max: 0xffff }),
      (size, indirect, eventIdx, ringBytes, tableNoise, startAvail) => {
        // Guest memory: 64 KiB at guest-physical 0x10000, inside a bigger buffer with canaries.
        const g = createGuardedGuest();
        const { memory, guest } = g;
        const addrs = { desc: GUARDED_GUEST_BASE, avail: GUARDED_GUEST_BASE + descTableSize(16), used: GUARDED_GUEST_BASE + descTableSize(16) + 512 };
        // Fill descriptor table and rings with garbage; some descriptors point into guest memory
        // so that chains sometimes get deep before failing.
        guest.set(ringBytes.subarray(0, descTableSize(size)), 0);
        guest.set(ringBytes.subarray(256, 256 + availRingSize(size)), descTableSize(16));
        guest.set(ringBytes.subarray(256 + 38, 256 + 38 + usedRingSize(size)), descTableSize(16) + 512);
        guest.set(tableNoise, GUARDED_NOISE_OFFSET);
        seedGarbageDescriptors(g, ringBytes, size);
        const errors: string[] = [];
        const q = new DeviceQueue({
          size,
          rings: resolveRings(memory, size, addrs),
          memory,
          indirect,
          eventIdx,
          nextAvail: startAvail,
          onError: (e) => errors.push(e.code),
        });
        for (const b of serveGarbageQueue(q)) assert.ok(memory.isValidRange(b.addr, b.len));
        assert.deepEqual(g.canariesWritten(), [], 'bytes outside guest memory (offsets from its start) were written');
        for (const code of errors) assert.match(code, /^VIRTQ_/);
      },
    ),
    { numRuns: runs },
  );
});
