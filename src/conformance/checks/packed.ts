// SPDX-License-Identifier: Apache-2.0
/**
 * Packed-ring checks (VIRTIO 1.3 §2.8, VIRTIO_F_RING_PACKED): for a device that offers the bit,
 * the driver negotiates it, runs the device's probe over a packed ring across several wraps of the
 * ring (with and without an indirect table), checks that vhost-user GET_VRING_BASE reports the
 * packed position with its wrap counters, and then breaks the packed-ring driver rules on purpose.
 * Hostile lists are judged as in hostile.ts (`judge`): PASS when the list comes back with a
 * harmless length and the next request on the same ring is served; REJECT when the device stops
 * the ring (NEEDS_RESET, error eventfd) and serves again after the recovery a VMM performs;
 * FAIL, WEDGED or CRASH otherwise.
 * Does not own: the packed ring itself (queue/packed-*.ts) or what the probe means (devices).
 */
import { DEFAULT_DRIVER_FEATURES, fail, pass, type CheckOutcome } from '../../device/conformance.js';
import { type PvirtqDesc, VIRTQ_DESC_F_AVAIL } from '../../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../spec/split-ring.js';
import { VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, featureBit, hasFeature } from '../../spec/virtio.js';
import { type Check, type CheckContext, genericChecks, isBackendSilence, offersFeature, probeOnce, probes } from '../check.js';
import type { VhostUserDriver, VhostUserStartOptions } from '../driver.js';
import { type Injection, judge, recover } from './hostile.js';

const PACKED = 'VIRTIO 1.3 §2.8';
/** Small rings so that a few requests wrap them several times. */
const QUEUE_SIZE = 16;
const needsPacked = offersFeature(VIRTIO_F_RING_PACKED, 'VIRTIO_F_RING_PACKED');

/** Start options: the default driver features plus RING_PACKED, small rings. */
function packedStart(): (d: VhostUserDriver) => VhostUserStartOptions {
  return () => ({ features: DEFAULT_DRIVER_FEATURES | featureBit(VIRTIO_F_RING_PACKED), queueSize: QUEUE_SIZE, ringPacked: true });
}

/** The probe as packed descriptors (NEXT on all but the last, WRITE on device-writable ones). */
function probeList(ctx: CheckContext, d: VhostUserDriver): PvirtqDesc[] {
  const bufs = ctx.device.probe(d).buffers;
  return bufs.map((b, i) => ({ addr: b.addr, len: b.len, id: 0, flags: (b.writable === true ? VIRTQ_DESC_F_WRITE : 0) | (i < bufs.length - 1 ? VIRTQ_DESC_F_NEXT : 0) }));
}

function writable(descs: readonly PvirtqDesc[]): number {
  return descs.reduce((n, x) => n + (x.flags & VIRTQ_DESC_F_WRITE ? x.len : 0), 0);
}

/** The probe queue's packed driver ring (the check started with RING_PACKED). */
function ring(d: VhostUserDriver): NonNullable<ReturnType<VhostUserDriver['queue']>['packed']> {
  const r = d.queue().packed;
  if (r === undefined) throw new Error('packed check on a split ring (a check bug)');
  return r;
}

/** Adds a raw list on the probe queue; the injection the judge needs. */
function list(d: VhostUserDriver, descs: readonly PvirtqDesc[], opts: { id?: number; rawFlags?: boolean } = {}, writableBytes = writable(descs)): Injection {
  const token = d.nextToken();
  ring(d).addRaw(descs, token, opts);
  return { token, writable: writableBytes };
}

/** An indirect table (packed entries: only WRITE is meaningful) for `entries`; returns its address. */
function table(d: VhostUserDriver, entries: readonly PvirtqDesc[]): number {
  const t = d.allocDriver(16 * Math.max(1, entries.length), 16);
  entries.forEach((e, i) => d.writeDescRaw(t, i, BigInt(e.addr), e.len, e.flags, 0));
  // writeDescRaw writes split layout (flags at 12, next at 14); packed keeps id at 12, flags at 14.
  entries.forEach((e, i) => {
    d.memory.memory.writeU16(t + 16 * i + 12, 0);
    d.memory.memory.writeU16(t + 16 * i + 14, e.flags);
  });
  return t;
}

const queueCheck = genericChecks('queue');
const hostileCheck = genericChecks('hostile');

interface PackedHostileSpec {
  id: string;
  title: string;
  source: string;
  needsIndirect?: boolean;
  inject(ctx: CheckContext, d: VhostUserDriver): Injection;
}

function hostile(spec: PackedHostileSpec): Check {
  return hostileCheck({
    id: spec.id,
    title: spec.title,
    source: spec.source,
    level: 'MUST',
    needs: (d) => needsPacked(d) ?? (spec.needsIndirect === true && !hasFeature(d.offeredFeatures, VIRTIO_F_INDIRECT_DESC) ? 'VIRTIO_F_INDIRECT_DESC is not offered' : null),
    start: packedStart(),
    run(d, ctx): CheckOutcome {
      const inj = spec.inject(ctx, d);
      d.kick();
      return judge(ctx, d, inj);
    },
  });
}

export const PACKED_CHECKS: readonly Check[] = [
  queueCheck({
    id: 'queue.packed-io',
    title: 'Requests over a packed ring, across several wraps, direct and indirect; GET_VRING_BASE carries the wrap counters',
    source: `${PACKED} Packed Virtqueues; vhost-user SET/GET_VRING_BASE (packed: index | wrap counter << 15)`,
    level: 'MUST',
    needs: needsPacked,
    start: packedStart(),
    run(d): CheckOutcome {
      // 3 × ring size requests: the ring wraps at least twice (wrap counter 1 → 0 → 1).
      const bad = probes(d, 3 * QUEUE_SIZE + 1);
      if (bad !== null) return fail(`over a packed ring: ${bad}`);
      if (hasFeature(d.features, VIRTIO_F_INDIRECT_DESC)) {
        for (let i = 0; i < QUEUE_SIZE + 1; i++) {
          const p = d.device.probe(d);
          const why = p.verify(d.request(p.buffers, { indirect: true }));
          if (why !== null) return fail(`indirect request ${i + 1} over a packed ring: ${why}`);
        }
      }
      const want = ring(d).base;
      const got = d.stopRing();
      if (got >>> 0 !== want >>> 0) {
        return fail(`GET_VRING_BASE answered 0x${(got >>> 0).toString(16)}; the ring stands at 0x${(want >>> 0).toString(16)} (avail index | wrap << 15, used index | wrap << 15 in the high half)`);
      }
      d.startRing(d.device.probeQueue, got);
      const after = probes(d, 2);
      if (after !== null) return fail(`after GET/SET_VRING_BASE 0x${got.toString(16)}: ${after}`);
      return pass(`served over a packed ring of ${QUEUE_SIZE} across wraps; GET_VRING_BASE 0x${(got >>> 0).toString(16)} resumed correctly`);
    },
  }),
  hostileCheck({
    id: 'hostile.packed-unterminated',
    title: 'A packed list with NEXT on every descriptor of the ring (no end)',
    source: `${PACKED}.17 Driver Requirements: Scatter-Gather Support ("A driver MUST NOT create a descriptor list longer than the Queue Size")`,
    level: 'MUST',
    needs: needsPacked,
    start: packedStart(),
    run(d, ctx): CheckOutcome {
      // The list fills the ring, so no probe fits beside it: wait for it, else recover.
      const p = probeList(ctx, d)[0]!;
      const inj = list(d, Array.from({ length: QUEUE_SIZE }, () => ({ ...p, flags: p.flags | VIRTQ_DESC_F_NEXT })));
      d.kick();
      let problem: string;
      try {
        // Safe: list() always sets a token.
        const used = d.waitFor(inj.token!, d.device.probeQueue, 2_000);
        if (used.len > inj.writable) return fail(`the endless list came back with used length ${used.len}, more than its ${inj.writable} device-writable bytes`);
        const bad = probeOnce(d);
        if (bad !== null) return fail(`after the endless list, a valid request got a wrong answer: ${bad}`);
        return pass(`returned with used length ${used.len}; the next request on the same ring was served`);
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        problem = 'the device stopped the ring on a list without an end';
      }
      return recover(ctx, d, problem);
    },
  }),
  hostile({
    id: 'hostile.packed-torn-list',
    title: 'A packed list whose head is available before the rest of the list',
    source: `${PACKED}.17 Driver Requirements: Scatter-Gather Support ("A driver MUST NOT make the first descriptor in the list available before all subsequent descriptors")`,
    inject(ctx, d) {
      const descs = probeList(ctx, d);
      if (descs.length < 2) descs.push({ addr: descs[0]!.addr, len: 0, id: 0, flags: descs[0]!.flags });
      descs.forEach((x, i) => (x.flags |= i < descs.length - 1 ? VIRTQ_DESC_F_NEXT : 0));
      // Head with the right AVAIL/USED bits for wrap counter 1 (a fresh ring); the rest never made available.
      const raw = descs.map((x, i) => ({ ...x, flags: i === 0 ? x.flags | VIRTQ_DESC_F_AVAIL : x.flags }));
      return list(d, raw, { rawFlags: true });
    },
  }),
  hostile({
    id: 'hostile.packed-id-out-of-range',
    title: 'A packed list whose buffer id is not below the queue size',
    source: `${PACKED}.21 Supplying Buffers to The Device (the buffer id names the driver's per-buffer state; the example asserts id < size)`,
    inject(ctx, d) {
      return list(d, probeList(ctx, d), { id: 0xfff0 });
    },
  }),
  hostile({
    id: 'hostile.packed-readable-after-writable',
    title: 'A packed list with a device-readable descriptor after a device-writable one',
    source: `${PACKED}.17 Driver Requirements: Scatter-Gather Support ("The driver MUST place any device-writable descriptor elements after any device-readable descriptor elements")`,
    inject(ctx, d) {
      const descs = probeList(ctx, d);
      const last = descs[descs.length - 1]!;
      last.flags |= VIRTQ_DESC_F_NEXT;
      descs.push({ addr: d.allocDriver(16), len: 16, id: 0, flags: 0 });
      if (!descs.some((x) => x.flags & VIRTQ_DESC_F_WRITE)) descs.unshift({ addr: d.allocDriver(16), len: 16, id: 0, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT });
      return list(d, descs);
    },
  }),
  hostile({
    id: 'hostile.packed-buffer-outside-memory',
    title: 'A packed list whose buffer lies beyond the end of guest memory',
    source: `${PACKED}.4 Element Address and Length (addr is a guest physical address)`,
    inject(ctx, d) {
      const descs = probeList(ctx, d);
      descs[0]!.addr = d.memoryEnd + 0x10000;
      return list(d, descs);
    },
  }),
  hostile({
    id: 'hostile.packed-indirect-with-next',
    title: 'A packed INDIRECT descriptor inside a list linked by NEXT',
    source: `${PACKED}.19 Driver Requirements: Indirect Descriptors ("A driver MUST NOT write direct descriptors with DESC_F_INDIRECT set in a scatter-gather list linked by VIRTQ_DESC_F_NEXT")`,
    needsIndirect: true,
    inject(ctx, d) {
      const descs = probeList(ctx, d);
      const t = table(d, descs);
      return list(d, [{ addr: d.allocDriver(16), len: 16, id: 0, flags: VIRTQ_DESC_F_NEXT }, { addr: t, len: 16 * descs.length, id: 0, flags: VIRTQ_DESC_F_INDIRECT }], {}, writable(descs));
    },
  }),
  hostile({
    id: 'hostile.packed-nested-indirect',
    title: 'A packed indirect table that holds an INDIRECT descriptor',
    source: `${PACKED}.19 Driver Requirements: Indirect Descriptors ("The driver MUST NOT set any flags except DESC_F_WRITE within an indirect descriptor")`,
    needsIndirect: true,
    inject(ctx, d) {
      const descs = probeList(ctx, d).map((x) => ({ ...x, flags: x.flags & VIRTQ_DESC_F_WRITE }));
      const inner = table(d, descs);
      const outer = table(d, [{ addr: inner, len: 16 * descs.length, id: 0, flags: VIRTQ_DESC_F_INDIRECT }]);
      return list(d, [{ addr: outer, len: 16, id: 0, flags: VIRTQ_DESC_F_INDIRECT }], {}, writable(descs));
    },
  }),
  hostile({
    id: 'hostile.packed-indirect-bad-length',
    title: 'A packed indirect table whose length is not a multiple of 16',
    source: `${PACKED}.7 Indirect Flag: Scatter-Gather Support (the table holds whole pvirtq_desc entries)`,
    needsIndirect: true,
    inject(ctx, d) {
      const descs = probeList(ctx, d).map((x) => ({ ...x, flags: x.flags & VIRTQ_DESC_F_WRITE }));
      const t = table(d, descs);
      return list(d, [{ addr: t, len: 16 * descs.length - 3, id: 0, flags: VIRTQ_DESC_F_INDIRECT }], {}, writable(descs));
    },
  }),
];
