// SPDX-License-Identifier: Apache-2.0
/**
 * Property test: RegionGuestMemory against a byte-map model. For random region layouts (with gaps
 * and adjacent regions) and random accesses, an access either succeeds and matches the model, or
 * throws GuestMemoryError exactly when the model says a byte is outside guest memory; a failed
 * access never changes memory. AVP_PROPERTY_RUNS sets the number of cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuestMemoryError, RegionGuestMemory } from './index.js';

const runs = Number(process.env['AVP_PROPERTY_RUNS'] ?? 300);

const layout = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3 }), size: fc.integer({ min: 1, max: 64 }) }), { minLength: 1, maxLength: 5 });
const op = fc.record({
  kind: fc.constantFrom('read', 'write', 'u16', 'u32', 'u64'),
  addr: fc.integer({ min: 0, max: 400 }),
  len: fc.integer({ min: 0, max: 80 }),
  seed: fc.integer({ min: 0, max: 255 }),
});

test('property: region memory matches a byte-map model', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50 }), layout, fc.array(op, { maxLength: 20 }), (start, parts, ops) => {
      const model = new Map<number, number>();
      const regions = [];
      let at = start;
      for (const p of parts) {
        at += p.gap * 16;
        regions.push({ guestBase: at, bytes: new Uint8Array(p.size) });
        for (let i = 0; i < p.size; i++) model.set(at + i, 0);
        at += p.size;
      }
      const mem = new RegionGuestMemory(regions);
      const inside = (a: number, n: number) => {
        for (let i = 0; i < n; i++) if (!model.has(a + i)) return false;
        return true;
      };
      for (const o of ops) {
        const n = o.kind === 'u16' ? 2 : o.kind === 'u32' ? 4 : o.kind === 'u64' ? 8 : o.len;
        const ok = inside(o.addr, n) && (n > 0 || model.has(o.addr) || model.has(o.addr - 1));
        const before = [...model.entries()];
        try {
          if (o.kind === 'write') {
            const src = Uint8Array.from({ length: n }, (_, i) => (o.seed + i) & 0xff);
            mem.write(o.addr, src);
            src.forEach((v, i) => model.set(o.addr + i, v));
          } else if (o.kind === 'read') {
            const got = mem.read(o.addr, n);
            assert.deepEqual([...got], Array.from({ length: n }, (_, i) => model.get(o.addr + i)));
          } else {
            const got = o.kind === 'u16' ? mem.readU16(o.addr) : o.kind === 'u32' ? mem.readU32(o.addr) : mem.readU64(o.addr);
            let expect = 0n;
            for (let i = n - 1; i >= 0; i--) expect = expect * 256n + BigInt(model.get(o.addr + i) ?? 0);
            // The documented contract of readU64: exact below 2^53; at or above it, a value that is
            // not a safe integer (so it can never pass as an address), never a wrapped small one.
            if (expect < 2n ** 53n) assert.equal(got, Number(expect));
            else assert.ok(!Number.isSafeInteger(got) && got >= 2 ** 53, `u64 ${expect} read as ${got}`);
          }
          assert.ok(ok, `access [${o.addr}, +${n}) should have failed`);
        } catch (e: unknown) {
          if (!(e instanceof GuestMemoryError)) throw e;
          assert.ok(!ok || n === 0, `access [${o.addr}, +${n}) should have succeeded: ${e.message}`);
          for (const [a, v] of before) assert.equal(mem.readU8(a), v, 'a failed access changed memory');
        }
      }
    }),
    { numRuns: runs },
  );
});
