// SPDX-License-Identifier: Apache-2.0
/**
 * Property test of the switch against hostile guests. AVP_PROPERTY_RUNS sets the number of cases.
 *
 * Three ports send random transmit chains (random bytes: headers with any flags and GSO types,
 * frames of any length including too short and too long, any source and destination MACs, split
 * over random buffers) while the receivers offer random receive buffers (some too small for the
 * header), with and without MRG_RXBUF, and the clock moves. Nothing may throw; every transmit
 * chain comes back with used length 0; each port's counters account for every chain it sent;
 * no receive chain reports more bytes than it holds; and no internal error is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { SwitchBed } from './testing.js';
import { VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS } from './spec.js';

const runs = Number(process.env['AVP_PROPERTY_RUNS'] ?? 100);
const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];

/** A transmit chain: the port, raw bytes (header + frame as the guest wrote them), and buffer splits. */
const txArb = fc.record({
  port: fc.integer({ min: 0, max: 2 }),
  // Mostly plausible packets (valid header, a known or broadcast destination), some garbage.
  kind: fc.constantFrom('valid', 'valid', 'garbage'),
  dst: fc.constantFrom(0, 1, 2, 3),
  bytes: fc.uint8Array({ minLength: 0, maxLength: 1600 }),
  splits: fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 3 }),
  rx: fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 3 }),
  advanceMs: fc.constantFrom(0, 0, 1, 700),
});

test('property: hostile traffic never throws, every transmit chain is returned, counters add up', () => {
  fc.assert(
    fc.property(fc.boolean(), fc.array(txArb, { minLength: 1, maxLength: 30 }), (mrg, sends) => {
      const features = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS) | (mrg ? featureMask(VIRTIO_NET_F_MRG_RXBUF) : 0n);
      const t = new SwitchBed(
        MACS.map((mac, i) => ({ mac, ...(i === 2 ? { shaping: { bytesPerSec: 5000, packetsPerSec: 20 } } : {}) })),
        { mtu: 1000, macAgeingMs: 1000 },
        { features, queueSize: 128 },
      );
      const sentBy = [0, 0, 0];
      let tinyRx = false;
      for (const s of sends) {
        const d = t.d(s.port);
        let bytes = s.bytes;
        if (s.kind === 'valid' && bytes.length >= 26) {
          bytes = bytes.slice();
          bytes.fill(0, 0, 12);
          const dst = s.dst === 3 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : [0x52, 0x54, 0, 0, 0, s.dst + 1];
          bytes.set(dst, 12);
          bytes.set([0x52, 0x54, 0, 0, 0, s.port + 1], 18);
        }
        for (const len of s.rx) {
          tinyRx ||= len < 12;
          t.d((s.port + 1) % 3).addRx(1, Math.max(1, len));
        }
        if (d.h.queue(1).numFree < s.splits.length + 1) continue;
        d.sendRaw(bytes.length === 0 ? new Uint8Array(1) : bytes, s.splits);
        sentBy[s.port]! += 1;
        t.reactor.advance(s.advanceMs);
      }
      t.reactor.advance(60_000); // let the shaped port finish
      for (let i = 0; i < 3; i++) {
        const lens = t.d(i).txCompleted();
        assert.ok(lens.every((l) => l === 0), 'transmit chains come back with used length 0');
        assert.equal(lens.length, sentBy[i], `port ${i}: every transmit chain came back`);
        const m = t.m(i);
        assert.equal(m.internalErrors, 0);
        // `malformed` also counts receive chains too small for the header; exact when none was offered.
        const accounted = m.tx.frames + m.drops.oversize + m.drops.linkDown + m.drops.rateLimit;
        assert.ok(accounted <= sentBy[i]! && sentBy[i]! <= accounted + m.drops.malformed, `port ${i}: counters account for every chain`);
        if (!tinyRx) assert.equal(accounted + m.drops.malformed, sentBy[i]);
        const q = t.d(i).h.queue(0);
        for (let u = q.popUsed(); u !== null; u = q.popUsed()) assert.ok(u.len <= 600 + 12, 'used length within the buffer');
      }
    }),
    { numRuns: runs },
  );
});
