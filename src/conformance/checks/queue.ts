// SPDX-License-Identifier: Apache-2.0
/**
 * Queue checks: split-virtqueue mechanics any device must get right, driven by a well-behaved
 * driver (VIRTIO 1.3 §2.7 "Split Virtqueues").
 *
 * Owns: used lengths, used-buffer notifications with and without VIRTIO_F_EVENT_IDX (flags 0 must
 * notify, VIRTQ_AVAIL_F_NO_INTERRUPT and `used_event` suppress), `avail_event` publishing, used
 * ring flags, indirect descriptors (also after direct ones, and with the WRITE flag the device must
 * ignore), IN_ORDER, 16-bit index wrap-around, batches, spurious notifications.
 * Does not own: rule-breaking drivers (hostile.ts).
 *
 * Notification counts are exact because eventfd counters add up: every notification the device
 * sends between two reads is counted. A control-channel round trip (GET_FEATURES) is the
 * synchronisation point before counting: a back-end that serves its socket and rings in order
 * has sent any notification for earlier work by then.
 */
import { fail, pass, skip, type CheckOutcome } from '../../device/conformance.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE } from '../../spec/split-ring.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_IN_ORDER, featureBit } from '../../spec/virtio.js';
import { type Check, type CheckContext, type GenericCheckSpec, genericChecks, isBackendSilence, offersFeature, passUnless, probeOnce, probes } from '../check.js';
import type { VhostUserDriver, VhostUserStartOptions } from '../driver.js';
import { ConformanceError } from '../errors.js';
import { addChain, atLeastTwo, descsOf, writeTable } from './chains.js';

const RING = 'VIRTIO 1.3 §2.7';
const EVENT_IDX = featureBit(VIRTIO_F_EVENT_IDX);

const queue = genericChecks('queue');
const needsEventIdx = offersFeature(VIRTIO_F_EVENT_IDX, 'VIRTIO_F_EVENT_IDX');
const needsIndirect = offersFeature(VIRTIO_F_INDIRECT_DESC, 'VIRTIO_F_INDIRECT_DESC');
/** Start options of the checks of flag-based suppression: every offered feature but EVENT_IDX. */
const withoutEventIdx = (d: VhostUserDriver): VhostUserStartOptions => ({ features: d.offeredFeatures & ~EVENT_IDX });

/** Submits `n` probe requests one after the other without waiting for notifications (the used ring is polled); returns the first problem. */
function quietProbes(ctx: CheckContext, d: VhostUserDriver, n = 1): string | null {
  for (let i = 0; i < n; i++) {
    const p = ctx.device.probe(d);
    const token = d.submit(p.buffers);
    d.kick();
    const wrong = p.verify(d.waitFor(token));
    if (wrong !== null) return wrong;
  }
  return null;
}

/**
 * Notifications counted so far, after a control round trip: what `start` may have caused (a
 * back-end may signal the call eventfd when it receives it, libvhost-user does "in case of I/O hang
 * after reconnecting"; drivers MUST handle such spurious notifications) is excluded from the
 * counts that follow.
 */
function baseline(d: VhostUserDriver): bigint {
  d.fe.getU64('GET_FEATURES');
  return d.drainInterrupts();
}

/** Waits for a notification if none came since `base`, syncs, and returns how many came since `base`. */
function settleInterrupts(ctx: CheckContext, d: VhostUserDriver, base: bigint): bigint {
  if (d.drainInterrupts() === base) d.waitInterrupt(ctx.device.probeQueue, ctx.timeoutMs);
  d.fe.getU64('GET_FEATURES');
  return d.drainInterrupts() - base;
}

/** A used_event check: used_event fixed at `at` (the driver stops moving it), `requests` probes, then the notifications they caused are judged. */
interface UsedEventSpec extends Omit<GenericCheckSpec, 'needs' | 'start' | 'run'> {
  readonly at: number;
  readonly requests: number;
  judge(notifications: bigint): CheckOutcome;
}

function usedEvent({ at, requests, judge, ...spec }: UsedEventSpec): Check {
  return queue({
    ...spec,
    needs: needsEventIdx,
    run(d, ctx) {
      const q = d.queue();
      q.dq.setAutoUsedEvent(false);
      q.dq.setUsedEvent(at);
      const base = baseline(d);
      const wrong = quietProbes(ctx, d, requests);
      return wrong === null ? judge(settleInterrupts(ctx, d, base)) : fail(wrong);
    },
  });
}

export const QUEUE_CHECKS: readonly Check[] = [
  queue({
    id: 'queue.used-len',
    title: 'The used length is at most the chain\'s device-writable length, and the answer is right',
    source: `${RING}.8 The Virtqueue Used Ring (len: "the total of bytes written into the buffer"; device requirements)`,
    level: 'MUST',
    run(d, ctx) {
      const p = ctx.device.probe(d);
      const writable = p.buffers.reduce((n, b) => n + (b.writable === true ? b.len : 0), 0);
      const used = d.request(p.buffers);
      if (used.len > writable) return fail(`used length ${used.len} exceeds the ${writable} device-writable bytes`);
      return passUnless(p.verify(used), `used length ${used.len} of ${writable} writable bytes`);
    },
  }),
  queue({
    id: 'queue.notify.interrupt',
    title: 'Without EVENT_IDX and with avail flags 0, the device notifies after using a buffer',
    source: `${RING}.7 Used Buffer Notification Suppression (device requirements: "If flags is 0, the device MUST send a notification")`,
    level: 'MUST',
    start: withoutEventIdx,
    run(d, ctx) {
      const base = baseline(d);
      const wrong = quietProbes(ctx, d);
      if (wrong !== null) return fail(wrong);
      const n = settleInterrupts(ctx, d, base);
      return n >= 1n ? pass(`${n} notification(s)`) : fail('no used-buffer notification within the deadline');
    },
  }),
  queue({
    id: 'queue.notify.no-interrupt',
    title: 'Without EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses the notification',
    source: `${RING}.7 Used Buffer Notification Suppression (device requirements: "If flags is 1, the device SHOULD NOT send a notification")`,
    level: 'SHOULD',
    start: withoutEventIdx,
    run(d, ctx) {
      const q = d.queue();
      const base = baseline(d);
      q.dq.suppressInterrupts(true);
      let wrong = quietProbes(ctx, d);
      if (wrong !== null) return fail(wrong);
      q.dq.suppressInterrupts(false);
      wrong = quietProbes(ctx, d);
      if (wrong !== null) return fail(wrong);
      const n = settleInterrupts(ctx, d, base);
      if (n === 0n) return fail('no notification at all, not even for the buffer used with flags 0');
      return n === 1n ? pass('one notification for two buffers: the one used under NO_INTERRUPT was suppressed') : fail(`${n} notifications for two buffers; the one used while VIRTQ_AVAIL_F_NO_INTERRUPT was set was not suppressed`);
    },
  }),
  usedEvent({
    id: 'queue.event-idx.used-event',
    title: 'With EVENT_IDX, the device notifies when it writes the used entry whose index is used_event',
    source: `${RING}.7 Used Buffer Notification Suppression (device requirements: "...was equal to used_event, the device MUST send a notification")`,
    level: 'MUST',
    at: 1,
    requests: 2,
    judge: (n) => (n >= 1n ? pass(`notified after the entry at used_event = 1 (${n} notification(s) in all)`) : fail('no notification although the device wrote the used entry at index used_event = 1')),
  }),
  usedEvent({
    id: 'queue.event-idx.suppress',
    title: 'With EVENT_IDX, the device does not notify for used entries before used_event',
    source: `${RING}.7 Used Buffer Notification Suppression (device requirements: "Otherwise the device SHOULD NOT send a notification")`,
    level: 'SHOULD',
    at: 2,
    requests: 3,
    judge(n) {
      if (n === 0n) return fail('no notification at all, not even at used_event');
      return n === 1n ? pass('one notification for three buffers, at used_event = 2') : fail(`${n} notifications for three buffers with used_event = 2; only the third needed one`);
    },
  }),
  queue({
    id: 'queue.event-idx.avail-event',
    title: 'With EVENT_IDX, a driver that notifies only as avail_event asks is never left hanging',
    source: `${RING}.10 Available Buffer Notification Suppression (the device "MAY use avail_event"; a driver SHOULD NOT notify otherwise)`,
    level: 'SHOULD',
    needs: needsEventIdx,
    run(d, ctx) {
      const q = d.queue();
      let kicks = 0;
      for (let i = 0; i < 8; i++) {
        const p = ctx.device.probe(d);
        const token = d.submit(p.buffers);
        if (q.dq.needsKick()) {
          d.kick();
          kicks++;
        }
        try {
          const wrong = p.verify(d.waitFor(token));
          if (wrong !== null) return fail(wrong);
        } catch (e: unknown) {
          if (e instanceof ConformanceError && e.code === 'CONFORMANCE_NO_COMPLETION') {
            return fail(`request ${i + 1} was not served: avail_event is ${d.availEvent()}, so the driver did not notify for avail index ${q.dq.availIdx - 1}`);
          }
          throw e;
        }
      }
      return pass(`8 requests with ${kicks} notification(s), as avail_event asked`);
    },
  }),
  queue({
    id: 'queue.event-idx.used-flags',
    title: 'With EVENT_IDX, the used ring flags stay 0',
    source: `${RING}.10 Available Buffer Notification Suppression (device requirements: with EVENT_IDX "The device MUST set flags to 0")`,
    level: 'MUST',
    needs: needsEventIdx,
    run(d) {
      const wrong = probes(d, 2);
      if (wrong !== null) return fail(wrong);
      const flags = d.usedFlags();
      return flags === 0 ? pass() : fail(`used ring flags are ${flags}`);
    },
  }),
  queue({
    id: 'queue.indirect',
    title: 'A request in an indirect descriptor table is served',
    source: `${RING}.5.3 Indirect Descriptors`,
    level: 'MUST',
    needs: needsIndirect,
    run(d, ctx) {
      const p = ctx.device.probe(d);
      return passUnless(p.verify(d.request(p.buffers, { indirect: true })));
    },
  }),
  queue({
    id: 'queue.indirect.write-flag',
    title: 'The WRITE flag on a descriptor that refers to an indirect table is ignored',
    source: `${RING}.5.3.2 Device Requirements: Indirect Descriptors ("The device MUST ignore the write-only flag (flags&VIRTQ_DESC_F_WRITE) in the descriptor that refers to an indirect table")`,
    level: 'MUST',
    needs: needsIndirect,
    run(d, ctx) {
      const p = ctx.device.probe(d);
      const descs = descsOf(p.buffers);
      const table = writeTable(d, descs);
      const { token } = addChain(d, [{ addr: BigInt(table), len: descs.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE }]);
      d.kick();
      return passUnless(p.verify(d.waitFor(token)));
    },
  }),
  queue({
    id: 'queue.indirect.after-direct',
    title: 'A chain of direct descriptors ending in an indirect one is served',
    source: `${RING}.5.3.2 Device Requirements: Indirect Descriptors ("The device MUST handle the case of zero or more normal chained descriptors followed by a single descriptor with flags&VIRTQ_DESC_F_INDIRECT")`,
    level: 'MUST',
    needs: needsIndirect,
    run(d, ctx) {
      const p = ctx.device.probe(d);
      const [first, ...rest] = descsOf(atLeastTwo(p.buffers));
      if (first === undefined) return skip('the probe request has no buffer');
      const restDescs = rest.map((x, i) => ({ ...x, flags: i < rest.length - 1 ? x.flags | VIRTQ_DESC_F_NEXT : x.flags & ~VIRTQ_DESC_F_NEXT, next: i + 1 }));
      const table = writeTable(d, restDescs);
      const { token } = addChain(d, [
        { ...first, flags: (first.flags & VIRTQ_DESC_F_WRITE) | VIRTQ_DESC_F_NEXT, next: 1 },
        { addr: BigInt(table), len: restDescs.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT },
      ]);
      d.kick();
      try {
        return passUnless(p.verify(d.waitFor(token)), '1 direct descriptor, then an indirect table of ' + restDescs.length);
      } catch (e: unknown) {
        if (e instanceof ConformanceError && e.code === 'CONFORMANCE_NO_COMPLETION') return fail('the chain was not completed');
        throw e;
      }
    },
  }),
  queue({
    id: 'queue.in-order',
    title: 'With IN_ORDER, buffers are used in the order they were made available',
    source: `${RING}.9 In-order use of descriptors ("the device MUST use buffers in the same order in which they have been available")`,
    level: 'MUST',
    needs: offersFeature(VIRTIO_F_IN_ORDER, 'VIRTIO_F_IN_ORDER'),
    start: (d) => ({ features: d.offeredFeatures }),
    run(d, ctx) {
      const tokens = [0, 1, 2, 3].map(() => d.submit(ctx.device.probe(d).buffers));
      d.kick();
      for (const t of tokens) d.waitFor(t);
      const order = d.usedLog.filter((t) => tokens.includes(t));
      return order.every((t, i) => t === tokens[i]) ? pass('4 chains used in the order they were made available') : fail(`used in the order ${order.map((t) => tokens.indexOf(t) + 1).join(', ')}`);
    },
  }),
  queue({
    id: 'queue.wrap',
    title: 'Ring indexes wrap at 65536: a ring started at 0xfffe keeps working across the wrap',
    source: `${RING}.13.3 Updating idx ("idx always increments, and wraps naturally at 65536")`,
    level: 'MUST',
    start: () => ({ startIndex: 0xfffe }),
    run(d) {
      const wrong = probes(d, 4);
      if (wrong !== null) return fail(wrong);
      const base = d.stopRing();
      return base === 2 ? pass('4 requests from 0xfffe; GET_VRING_BASE then reported 2') : fail(`after 4 requests from 0xfffe GET_VRING_BASE reported ${base}, expected 2`);
    },
  }),
  queue({
    id: 'queue.batch',
    title: 'Several chains made available with one notification are all used',
    source: `${RING}.13 Supplying Buffers to The Device (steps "MAY be performed repeatedly if batching is possible")`,
    level: 'MUST',
    start: () => ({ queueSize: 64 }),
    run(d, ctx) {
      const batch = Array.from({ length: 12 }, () => ctx.device.probe(d));
      const tokens = batch.map((p) => d.submit(p.buffers));
      d.kick();
      for (const [i, t] of tokens.entries()) {
        // Safe: batch and tokens have the same length.
        const wrong = batch[i]!.verify(d.waitFor(t));
        if (wrong !== null) return fail(`chain ${i + 1}: ${wrong}`);
      }
      return pass('12 chains, one notification');
    },
  }),
  queue({
    id: 'queue.spurious-kick',
    title: 'Notifications with nothing available are harmless',
    source: `${RING}.10 Available Buffer Notification Suppression (device requirements: "The device MUST handle spurious notifications from the driver")`,
    level: 'MUST',
    run(d) {
      for (let i = 0; i < 3; i++) d.kick();
      d.fe.getU64('GET_FEATURES');
      if (d.queue().dq.usedPending() > 0) return fail('the device used buffers although none was available');
      try {
        return passUnless(probeOnce(d));
      } catch (e: unknown) {
        if (isBackendSilence(e)) return fail(`after 3 spurious notifications: ${e.message}`);
        throw e;
      }
    },
  }),
];
