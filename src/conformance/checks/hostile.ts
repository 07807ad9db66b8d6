// SPDX-License-Identifier: Apache-2.0
/**
 * Hostile-driver checks: a driver that breaks the split-ring rules on purpose, after
 * virtio-villain's T category (shared/reference/peers.md §4.4, §5 item 4), injected straight into
 * shared memory. The rules broken are driver MUSTs of VIRTIO 1.3 §2.7; what the device must do is
 * survive, never touch memory outside what the driver handed it (§2.7.5.1 "A device MUST NOT write
 * to a device-readable buffer"; the canaries of driver.ts catch any stray write), and keep serving.
 *
 * How each check is judged, after the hostile chain and then a valid request (the device's probe)
 * on the same ring:
 * - PASS: the probe is served on the same ring; the hostile chain came back in the used ring with
 *   a length no larger than its device-writable part (typically 0: refused) or not at all where the
 *   ring itself was corrupt (the device skipped the entry).
 * - REJECT: the hostile chain never came back but the probe is served; or the device stopped the
 *   ring (error eventfd, silence) or closed the connection, and served again after a recovery a VMM
 *   performs: a device restart as on guest reset (stop rings, SET_FEATURES, fresh rings),
 *   RESET_DEVICE, or a new connection after the back-end closed the old one.
 * - FAIL: a stray write, a wrong answer to the probe, a used length beyond the chain's writable
 *   bytes, or a used id that was never made available.
 * - WEDGED: nothing recovers it, or only a new connection does although the back-end kept the old
 *   one open (a VMM has no reason to reconnect then).
 * - CRASH: the back-end process died (decided by the runner, which sees the process).
 * Does not own: the requests' meaning (device probes).
 */
import { fail, pass, reject, type CheckOutcome, type Verdict } from '../../device/conformance.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE } from '../../spec/split-ring.js';
import { VIRTIO_F_INDIRECT_DESC, featureBit, hasFeature } from '../../spec/virtio.js';
import { VhostUserFrontendError } from '../../vhost-user/frontend-errors.js';
import { VHOST_USER_PROTOCOL_F_RESET_DEVICE } from '../../vhost-user/protocol.js';
import { type Check, type CheckContext, type GenericCheckSpec, errorText, genericChecks, isBackendSilence, isBadUsed, isConnectRefused, offersFeature, probeOnce } from '../check.js';
import type { VhostUserDriver } from '../driver.js';
import { ConformanceError } from '../errors.js';
import { addChain, descsOf, type RawDesc, writableLength, writeTable } from './chains.js';

const RING = 'VIRTIO 1.3 §2.7';
const INDIRECT = featureBit(VIRTIO_F_INDIRECT_DESC);
const MIB = 1 << 20;

/** What an injection left on the ring. */
export interface Injection {
  /** Token of the hostile chain when it has a valid head the device could return. */
  readonly token?: number;
  /** Device-writable bytes the hostile chain really has (a loop counts each descriptor once). */
  readonly writable: number;
  /** The device may return ids the driver never made available (phantom ring entries). */
  readonly phantoms?: boolean;
  /** Judges the hostile chain's used element instead of the default rule. */
  readonly judge?: (used: { len: number } | null) => CheckOutcome;
}

/** A hostile check: the generic spec minus its body, which is always inject, kick, judge. */
interface HostileSpec extends Omit<GenericCheckSpec, 'level' | 'setup' | 'run'> {
  inject(ctx: CheckContext, d: VhostUserDriver): Injection;
}

const outcome = (verdict: Verdict, details: string): CheckOutcome => ({ verdict, details });

const needsIndirect = offersFeature(VIRTIO_F_INDIRECT_DESC, 'VIRTIO_F_INDIRECT_DESC');

/** The probe's descriptors, to be bent by an injection. */
export function probeDescs(ctx: CheckContext, d: VhostUserDriver): RawDesc[] {
  return descsOf(ctx.device.probe(d).buffers);
}

/** Index of the first device-writable descriptor (the first descriptor when there is none). */
export function firstWritable(descs: readonly RawDesc[]): number {
  const i = descs.findIndex((x) => (x.flags & VIRTQ_DESC_F_WRITE) !== 0);
  return i < 0 ? 0 : i;
}

/** Adds `descs` on the probe queue and reports the injection. */
function chain(d: VhostUserDriver, descs: RawDesc[], writable = writableLength(descs)): Injection {
  return { token: addChain(d, descs).token, writable };
}

/** An indirect descriptor (ring side) for a table holding `entries`. */
function indirectTo(d: VhostUserDriver, entries: readonly RawDesc[], extra: Partial<RawDesc> = {}): RawDesc {
  const table = writeTable(d, entries.map((x, i) => ({ ...x, next: i + 1 })));
  return { addr: BigInt(table), len: entries.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, ...extra };
}

/** Ways the driver can try to get the device serving again, in the order a VMM would. */
export function recover(ctx: CheckContext, d: VhostUserDriver, problem: string): CheckOutcome {
  const attempt = (how: string, step: () => void): CheckOutcome | null => {
    if (d.fe.closed || d.fe.peerClosed()) return null;
    try {
      step();
      const bad = probeOnce(d);
      if (bad === null) return reject(`${problem}; served again after ${how}`);
      return fail(`${problem}; after ${how} a valid request got a wrong answer: ${bad}`);
    } catch (e: unknown) {
      if (isBackendSilence(e) || isBadUsed(e)) return null;
      throw e;
    }
  };
  const restarted = attempt('a device restart as on guest reset (stop rings, SET_FEATURES, fresh rings)', () => d.restartDevice());
  if (restarted !== null) return restarted;
  if (hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_RESET_DEVICE)) {
    const reset = attempt('RESET_DEVICE', () => d.resetDevice());
    if (reset !== null) return reset;
  }
  const closedByBackend = d.fe.peerClosed();
  d.close();
  try {
    const fresh = ctx.connect();
    fresh.start();
    const bad = probeOnce(fresh);
    if (bad !== null) return fail(`${problem}; on a new connection a valid request got a wrong answer: ${bad}`);
    if (closedByBackend) return reject(`${problem}; a new connection is served`);
    return outcome('WEDGED', `${problem}; the connection stayed open but stopped serving, even after a device restart (only a new connection is served, and a VMM does not reconnect to a back-end that keeps its socket open)`);
  } catch (e: unknown) {
    if (isConnectRefused(e)) return outcome('CRASH', `${problem}; the back-end no longer accepts connections (${errorText(e)})`);
    if (isBackendSilence(e) || isBadUsed(e)) return outcome('WEDGED', `${problem}; a new connection is not served either: ${errorText(e)}`);
    throw e;
  }
}

/** What a silent back-end did, in a few words. */
function silence(e: unknown): string {
  if (e instanceof VhostUserFrontendError && e.code === 'VHOST_USER_FRONTEND_DISCONNECTED') return 'the back-end closed the connection';
  if (e instanceof ConformanceError && e.code === 'CONFORMANCE_RING_ERROR') return 'the back-end stopped the ring and signalled its error eventfd (SET_VRING_ERR)';
  if (e instanceof ConformanceError && e.code === 'CONFORMANCE_NO_COMPLETION') return 'the ring stopped: the next valid request was not completed';
  return `the ring stopped (${errorText(e)})`;
}

/**
 * How long a hostile chain may still take to come back after the probe did. Back-ends that
 * complete requests from a thread pool (qemu-storage-daemon) use chains out of order, so "not
 * returned yet" is only a verdict once this grace has passed; without it the verdict depended on
 * machine load (regression: hostile.indirect-with-next flipped between PASS and REJECT in CI).
 */
const LATE_COMPLETION_MS = 2_000;

/** The hostile chain's used element if it arrives within the grace period, else undefined. */
function lateUsed(d: VhostUserDriver, token: number): ReturnType<VhostUserDriver['usedOf']> {
  try {
    return d.waitFor(token, undefined, LATE_COMPLETION_MS);
  } catch (e: unknown) {
    if (isBackendSilence(e)) return undefined;
    throw e;
  }
}

/** Sends the probe on the same ring and judges the hostile chain; recovers when the ring is stuck. */
export function judge(ctx: CheckContext, d: VhostUserDriver, inj: Injection): CheckOutcome {
  let problem: string;
  try {
    const bad = probeOnce(d);
    if (bad !== null) return fail(`after the hostile chain, a valid request got a wrong answer: ${bad}`);
    const used = inj.token === undefined ? undefined : (d.usedOf(inj.token) ?? lateUsed(d, inj.token));
    if (inj.judge !== undefined) return inj.judge(used ?? null);
    if (inj.token === undefined) return pass('the bad ring entry was skipped; the next request on the same ring was served');
    if (used === undefined) return reject('the hostile chain was not returned; the next request on the same ring was served');
    if (used.len > inj.writable) return fail(`the hostile chain came back with used length ${used.len}, more than its ${inj.writable} device-writable bytes`);
    return pass(used.len === 0 ? 'returned with used length 0; the next request on the same ring was served' : `processed without harm (used length ${used.len}); the next request on the same ring was served`);
  } catch (e: unknown) {
    if (isBadUsed(e)) {
      if (!inj.phantoms) return fail(e.message);
      problem = `the device used ring entries the jump exposed (${e.message})`;
    } else if (isBackendSilence(e)) {
      problem = silence(e);
    } else {
      throw e;
    }
  }
  return recover(ctx, d, problem);
}

const hostileCheck = genericChecks('hostile');

/** Every hostile check breaks a driver MUST, and is judged the same way (see the file comment). */
function hostile({ inject, ...spec }: HostileSpec): Check {
  return hostileCheck({
    ...spec,
    level: 'MUST',
    run(d, ctx) {
      const inj = inject(ctx, d);
      d.kick();
      return judge(ctx, d, inj);
    },
  });
}

export const HOSTILE_CHECKS: readonly Check[] = [
  hostile({
    id: 'hostile.desc-loop',
    title: 'A descriptor chain that loops back to its head',
    source: `${RING}.5.2 Driver Requirements: The Virtqueue Descriptor Table ("Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total; this implies that loops in the descriptor chain are forbidden")`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const last = descs[descs.length - 1]!;
      last.flags |= VIRTQ_DESC_F_NEXT;
      last.next = 0;
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.next-out-of-range',
    title: 'A descriptor whose next is beyond the queue size',
    source: `${RING}.5 The Virtqueue Descriptor Table (next names a descriptor of the table, whose size is the queue size)`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const last = descs[descs.length - 1]!;
      last.flags |= VIRTQ_DESC_F_NEXT;
      last.nextIndex = d.queue().size + 3;
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.head-out-of-range',
    title: 'An available ring entry naming a descriptor beyond the queue size',
    source: `${RING}.6 The Virtqueue Available Ring (ring entries are heads of descriptor chains)`,
    inject(_ctx, d) {
      const q = d.queue();
      q.dq.publish(q.size + 1);
      return { writable: 0 };
    },
  }),
  hostile({
    id: 'hostile.avail-idx-jump',
    title: 'avail.idx moved more than the queue size ahead',
    source: `${RING}.13 Supplying Buffers to The Device ("this is not possible since the ring buffer is the same size as the descriptor table"); §2.7.6 "A driver MUST NOT decrement the available idx"`,
    inject(_ctx, d) {
      const q = d.queue();
      // Every slot names an out-of-range head, so phantom entries are not chains of ours.
      for (let i = 0; i < q.size; i++) q.dq.publish(0xffff);
      q.dq.setAvailIdx(q.dq.availIdx + 1);
      return { writable: 0, phantoms: true };
    },
  }),
  hostile({
    id: 'hostile.readable-after-writable',
    title: 'A device-readable descriptor after a device-writable one',
    source: `${RING}.4.2 Driver Requirements: Message Framing / §2.7.13.1 ("The driver MUST place any device-writable descriptor elements after any device-readable descriptor elements")`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const extra = d.out(new Uint8Array(16).fill(0x77));
      descs[descs.length - 1]!.flags |= VIRTQ_DESC_F_NEXT;
      descs.push({ addr: BigInt(extra.addr), len: extra.len, flags: 0 });
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.addr-outside-memory',
    title: 'A buffer address beyond the end of guest memory',
    source: `${RING}.5 The Virtqueue Descriptor Table (addr is a guest-physical address); vhost-user.rst "Memory access"`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      descs[firstWritable(descs)]!.addr = BigInt(d.memoryEnd + 0x10000);
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.addr-below-memory',
    title: 'A buffer at guest address 0, below the only memory region',
    source: `${RING}.5 The Virtqueue Descriptor Table; vhost-user.rst "Memory access" (guest addresses map to the region containing them)`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      descs[firstWritable(descs)]!.addr = 0n;
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.addr-straddle',
    title: 'A buffer that starts inside guest memory and ends outside it',
    source: `${RING}.5 The Virtqueue Descriptor Table; vhost-user.rst "Memory access"`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const w = descs[firstWritable(descs)]!;
      const inside = Math.max(1, Math.floor(w.len / 2));
      const addr = d.memoryEnd - inside;
      // The part inside memory is the (bogus) buffer: the device may write it.
      d.expectWritable(addr, inside);
      w.addr = BigInt(addr);
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.addr-wrap',
    title: 'A buffer whose address plus length overflows 64 bits',
    source: `${RING}.5 The Virtqueue Descriptor Table (le64 addr, le32 len)`,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const w = descs[firstWritable(descs)]!;
      w.addr = (1n << 64n) - BigInt(Math.max(1, Math.floor(w.len / 2)));
      return chain(d, descs);
    },
  }),
  hostile({
    id: 'hostile.huge-length',
    title: 'A chain longer than 2^32 bytes in total (4097 descriptors of 1 MiB in an indirect table)',
    source: `${RING}.5.2 Driver Requirements: The Virtqueue Descriptor Table ("Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total")`,
    needs: needsIndirect,
    start: () => ({ memorySize: 4 * MIB }),
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const w = firstWritable(descs);
      const big = d.in(MIB, 0x55);
      const many: RawDesc[] = Array.from({ length: 4097 }, () => ({ addr: BigInt(big.addr), len: MIB, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT }));
      const entries = [...descs.slice(0, w), ...many, ...descs.slice(w + 1)].map((x, i, all) => ({ ...x, flags: i < all.length - 1 ? x.flags | VIRTQ_DESC_F_NEXT : x.flags & ~VIRTQ_DESC_F_NEXT }));
      // The writable bytes that exist: one 1 MiB buffer, plus the probe's other writable buffers.
      return chain(d, [indirectTo(d, entries)], MIB + writableLength(descs) - (descs[w]?.len ?? 0));
    },
  }),
  hostile({
    id: 'hostile.indirect-not-negotiated',
    title: 'An indirect descriptor although VIRTIO_F_INDIRECT_DESC was not negotiated',
    source: `${RING}.5.3.1 Driver Requirements: Indirect Descriptors ("The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag unless the VIRTIO_F_INDIRECT_DESC feature was negotiated")`,
    start: (d) => ({ features: d.offeredFeatures & ~INDIRECT }),
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      return chain(d, [indirectTo(d, descs)], writableLength(descs));
    },
  }),
  hostile({
    id: 'hostile.indirect-nested',
    title: 'An indirect table that contains an indirect descriptor',
    source: `${RING}.5.3.1 Driver Requirements: Indirect Descriptors ("A driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT in flags"; "only one table per descriptor")`,
    needs: needsIndirect,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const inner = indirectTo(d, descs);
      return chain(d, [indirectTo(d, [inner])], writableLength(descs));
    },
  }),
  hostile({
    id: 'hostile.indirect-len-zero',
    title: 'An indirect descriptor whose table length is 0',
    source: `${RING}.5.3 Indirect Descriptors (the table holds len / 16 descriptors)`,
    needs: needsIndirect,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      return chain(d, [indirectTo(d, descs, { len: 0 })], 0);
    },
  }),
  hostile({
    id: 'hostile.indirect-len-unaligned',
    title: 'An indirect descriptor whose table length is not a multiple of 16',
    source: `${RING}.5.3 Indirect Descriptors (a table of struct virtq_desc, 16 bytes each)`,
    needs: needsIndirect,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      return chain(d, [indirectTo(d, descs, { len: descs.length * VIRTQ_DESC_SIZE - 8 })], writableLength(descs));
    },
  }),
  hostile({
    id: 'hostile.indirect-with-next',
    title: 'A descriptor with both INDIRECT and NEXT set',
    source: `${RING}.5.3.1 Driver Requirements: Indirect Descriptors ("A driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT in flags")`,
    needs: needsIndirect,
    inject(ctx, d) {
      const descs = probeDescs(ctx, d);
      const extra = d.in(16, 0x11);
      return chain(d, [indirectTo(d, descs, { flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 }), { addr: BigInt(extra.addr), len: extra.len, flags: VIRTQ_DESC_F_WRITE }], writableLength(descs) + extra.len);
    },
  }),
  hostile({
    id: 'hostile.indirect-outside-memory',
    title: 'An indirect table address beyond the end of guest memory',
    source: `${RING}.5.3 Indirect Descriptors; vhost-user.rst "Memory access"`,
    needs: needsIndirect,
    inject(_ctx, d) {
      return chain(d, [{ addr: BigInt(d.memoryEnd + 0x1000), len: 4 * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT }], 0);
    },
  }),
  hostile({
    id: 'hostile.wrong-direction',
    title: 'Buffers in the wrong direction for the device (e.g. data the device must write offered device-readable)',
    source: `${RING}.5.1 Device Requirements: The Virtqueue Descriptor Table ("A device MUST NOT write to a device-readable buffer")`,
    inject(ctx, d) {
      const w = ctx.device.wrongDirection(d);
      const token = d.submit(w.buffers);
      return { token, writable: w.buffers.reduce((n, b) => n + (b.writable === true ? b.len : 0), 0), judge: (used) => w.judge(used) };
    },
  }),
];
