// SPDX-License-Identifier: Apache-2.0
/**
 * Protocol checks against a hostile front-end (AVP issue #18, docs/reliability.md): the ways a
 * front-end can crash, wedge or leak a back-end through the vhost-user control channel and the
 * resources it hands over, rather than through the rings (hostile.ts). A back-end must survive any
 * front-end; in a car the front-end may be another vendor's VMM.
 *
 * Every check is black-box, so any back-end can be judged: SIGBUS shows as a back-end that no
 * longer accepts connections (CRASH); a stalled loop as a missing completion or reply; a leaked fd
 * as a socket-pair end that never sees its peer hang up (the back-end holds the copy it received);
 * a leaked mapping in the back-end's /proc/<pid>/maps, found through SO_PEERCRED (SKIP when that
 * file cannot be read).
 * Verdicts follow hostile.ts where a chain is involved (`judge`, `recover`): PASS the back-end
 * refused or survived and kept serving; REJECT it closed the connection and a new one is served;
 * FAIL a leak, a stall, or a wrong answer; WEDGED / CRASH as there.
 * Not covered here: SIGTERM while a front-end holds half a message (#18 case 5) needs the back-end's
 * process, which a socket-only front-end does not have; AVP's own regression test covers it.
 * Does not own: ring-level abuse (hostile.ts), the ordinary protocol (protocol.ts).
 */
import { fstatSync, readFileSync } from 'node:fs';
import { fail, pass, reject, skip, type CheckOutcome } from '../../device/conformance.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_SIZE } from '../../spec/split-ring.js';
import { VIRTIO_F_INDIRECT_DESC, hasFeature } from '../../spec/virtio.js';
import { POLLHUP, POLLIN, closeQuiet, eventfdCreate, eventfdRead, eventfdSaturate, eventfdWrite, ftruncate, memfdCreate, peerCredentials, poll, socketPair, SysError } from '../../sys/index.js';
import { encodeFrame, type FrontendRequestInit, type MemoryRegion } from '../../vhost-user/messages.js';
import {
  FRONTEND_REQUEST_CODES,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
  VHOST_USER_PROTOCOL_F_REPLY_ACK,
  VHOST_USER_VERSION,
} from '../../vhost-user/protocol.js';
import { type Check, type CheckContext, errorText, isBackendSilence, isConnectRefused, probeOnce } from '../check.js';
import { GUEST_BASE, USER_BASE, type VhostUserDriver } from '../driver.js';
import { addChain, writableLength } from './chains.js';
import { firstWritable, judge, probeDescs, recover } from './hostile.js';

const DOC = 'vhost-user.rst';
const KIB = 1024;
/** Where the extra region of the memory checks lives: 1 GiB above the driver's memory. */
const EXTRA_GPA = GUEST_BASE + 0x4000_0000;
const EXTRA_UVA = USER_BASE + 0x4000_0000;
/** A ring index no device has. */
const NO_SUCH_RING = 200;
const EVENTFD_MAX = 0xffff_ffff_ffff_fffen;

/** Sleeps without spinning (the checks are synchronous). */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A socket pair: `sent` goes to the back-end; `closedByPeer` sees whether every other copy was closed. */
function leakProbe(): { sent: number; closedByPeer: (ms: number) => boolean; dispose: () => void } {
  const [sent, watch] = socketPair();
  let open = true;
  const dropOurs = () => {
    if (open) closeQuiet(sent);
    open = false;
  };
  return {
    sent,
    closedByPeer(ms) {
      dropOurs();
      return ((poll([{ fd: watch, events: POLLIN }], ms)[0] ?? 0) & POLLHUP) !== 0;
    },
    dispose() {
      dropOurs();
      closeQuiet(watch);
    },
  };
}

/**
 * Adds a second memory region backed by `fd` (ADD_MEM_REG when CONFIGURE_MEM_SLOTS is negotiated,
 * else a SET_MEM_TABLE with both regions). Returns the ack (0 = accepted), or null without REPLY_ACK.
 */
function addRegion(d: VhostUserDriver, fd: number, size: number): bigint | null {
  const region: MemoryRegion = { guestAddr: EXTRA_GPA, size, userAddr: EXTRA_UVA, mmapOffset: 0 };
  const ack = hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK);
  const init: FrontendRequestInit = hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
    ? { type: 'ADD_MEM_REG', body: region, fds: [fd], needReply: ack }
    : { type: 'SET_MEM_TABLE', body: { regions: [d.memory.region, region] }, fds: [d.memory.fd, fd], needReply: ack };
  const reply = d.fe.request(init);
  return reply?.type === 'ACK' ? reply.body : null;
}

/**
 * A chain that makes the device touch guest memory at `gpa` (in the extra region). `exists` says
 * whether those bytes really exist. When they do not and VIRTIO_F_INDIRECT_DESC is negotiated, the
 * chain is one indirect descriptor whose table lies there: every back-end reads a descriptor table
 * itself, whereas a data buffer may only be handed to a syscall (which fails with EFAULT instead of
 * faulting). Otherwise the probe's device-writable buffer is moved there.
 */
function chainAt(ctx: CheckContext, d: VhostUserDriver, gpa: number, exists: boolean): { token: number; writable: number; how: string } {
  if (!exists && hasFeature(d.features, VIRTIO_F_INDIRECT_DESC)) {
    return { token: addChain(d, [{ addr: BigInt(gpa), len: 4 * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT }]).token, writable: 0, how: 'an indirect table' };
  }
  const descs = probeDescs(ctx, d);
  const w = firstWritable(descs);
  // Safe: firstWritable returns an index of descs.
  const moved = descs[w]!;
  moved.addr = BigInt(gpa);
  return { token: addChain(d, descs).token, writable: writableLength(descs) - (exists ? 0 : moved.len), how: 'a data buffer' };
}

/** One memory-abuse scenario: a memfd handed over as an extra region, then mistreated. */
interface MemorySpec {
  readonly id: string;
  readonly title: string;
  readonly source: string;
  /** Creates the memfd, hands it over, mistreats it; returns what the hostile chain may get, or an outcome. */
  abuse(ctx: CheckContext, d: VhostUserDriver): { token: number; writable: number; note: string } | CheckOutcome;
}

function memoryCheck(spec: MemorySpec): Check {
  return {
    id: spec.id,
    title: spec.title,
    source: spec.source,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const d = ctx.connect();
      d.start();
      const bad = probeOnce(d);
      if (bad !== null) return fail(`before the abuse: ${bad}`);
      let inj;
      try {
        inj = spec.abuse(ctx, d);
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        return recover(ctx, d, `the back-end stopped answering the memory message (${errorText(e)})`);
      }
      if ('verdict' in inj) return inj;
      d.kick();
      const out = judge(ctx, d, { token: inj.token, writable: inj.writable });
      return { verdict: out.verdict, details: `${inj.note}; ${out.details}` };
    },
  };
}

/** Creates a memfd the check owns for the duration of the check (the runner closes connections, not fds). */
function memfd(size: number, sealable: boolean, cleanup: number[]): number {
  const fd = memfdCreate('avp-conformance-extra', size, { allowSealing: sealable });
  cleanup.push(fd);
  return fd;
}

/** Runs `fn` and closes the fds it registered afterwards. */
function withFds<T>(fn: (owned: number[]) => T): T {
  const owned: number[] = [];
  try {
    return fn(owned);
  } finally {
    for (const fd of owned) closeQuiet(fd);
  }
}

/** Shrinks the extra region's memfd from `size` to 16 KiB and aims a chain at 128 KiB. */
function shrinkAbuse(sealable: boolean) {
  return (ctx: CheckContext, d: VhostUserDriver) =>
    withFds((owned) => {
      const size = 256 * KIB;
      const fd = memfd(size, sealable, owned);
      const ack = addRegion(d, fd, size);
      if (ack !== null && ack !== 0n) return reject(`the region was refused (ack ${ack}) before it could be shrunk`);
      try {
        ftruncate(fd, 16 * KIB);
      } catch (e: unknown) {
        if (!(e instanceof SysError && e.errnoName === 'EPERM')) throw e;
        // The back-end sealed the file against shrinking (F_SEAL_SHRINK): the memory stays valid.
        const c = chainAt(ctx, d, EXTRA_GPA + 128 * KIB, true);
        return { ...c, note: 'the back-end sealed the memfd against shrinking (F_SEAL_SHRINK), so the shrink failed' };
      }
      const c = chainAt(ctx, d, EXTRA_GPA + 128 * KIB, false);
      return { ...c, note: `the memfd was shrunk to 16 KiB under the mapping; ${c.how} was placed past the new end` };
    });
}

const MEMORY_CHECKS: readonly Check[] = [
  memoryCheck({
    id: 'proto.abuse.mem-beyond-fd',
    title: 'A memory region whose mmap_offset + size lies beyond the end of its memfd is refused, and does not crash the back-end',
    source: `${DOC} VHOST_USER_SET_MEM_TABLE / VHOST_USER_ADD_MEM_REG (the region is "mmap_offset" bytes into the fd, "size" bytes long); mmap(2) SIGBUS past the end of the file`,
    abuse: (ctx, d) =>
      withFds((owned) => {
        const fd = memfd(64 * KIB, false, owned);
        const ack = addRegion(d, fd, 1024 * KIB);
        const note = ack === null ? 'a 1 MiB region over a 64 KiB memfd was sent (no REPLY_ACK to see its fate)' : ack === 0n ? 'a 1 MiB region over a 64 KiB memfd was accepted (ack 0)' : `a 1 MiB region over a 64 KiB memfd was refused (ack ${ack})`;
        // Past the end of the file: no byte of it exists.
        const c = chainAt(ctx, d, EXTRA_GPA + 512 * KIB, false);
        return { ...c, note: `${note}; ${c.how} was placed past the memfd's end` };
      }),
  }),
  memoryCheck({
    id: 'proto.abuse.mem-shrunk-sealable',
    title: 'A sealable memfd (as QEMU memory-backend-memfd makes) shrunk after the memory table does not crash the back-end',
    source: `${DOC} "Memory access"; memfd_create(2) "File sealing" (F_SEAL_SHRINK); ftruncate(2) makes later accesses past the end fault (SIGBUS)`,
    abuse: shrinkAbuse(true),
  }),
  memoryCheck({
    id: 'proto.abuse.mem-shrunk-unsealed',
    title: 'An unsealable memfd (as memory-backend-file makes) shrunk after the memory table does not crash the back-end',
    source: `${DOC} "Memory access"; ftruncate(2) makes later accesses past the end fault (SIGBUS)`,
    abuse: shrinkAbuse(false),
  }),
];

/** Sends `n` bytes of a GET_FEATURES header now, the rest on `finish`. */
function splitHeader(n: number): { head: Uint8Array; rest: Uint8Array } {
  const bytes = encodeFrame(FRONTEND_REQUEST_CODES.GET_FEATURES, VHOST_USER_VERSION, new Uint8Array(0)).bytes;
  return { head: bytes.subarray(0, n), rest: bytes.subarray(n) };
}

/** A message header of request `code` with a u64 payload, cut after `keep` bytes. */
function cutMessage(code: number, keep: number): Uint8Array {
  return encodeFrame(code, VHOST_USER_VERSION, new Uint8Array(8)).bytes.subarray(0, keep);
}

const CHANNEL_CHECKS: readonly Check[] = [
  {
    id: 'proto.abuse.partial-header',
    title: 'Half a message header on the control socket does not stall the rings; the message is answered once complete',
    source: `${DOC} "Communication" (the front-end may send a message in several writes: the socket is a byte stream); AVP #18 case 3`,
    level: 'SHOULD',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const d = ctx.connect();
      d.start();
      const { head, rest } = splitHeader(6);
      d.fe.sendRaw(head);
      // Let the back-end read the fragment before the request below is made available.
      sleep(100);
      let stalled: string | null = null;
      try {
        const bad = probeOnce(d);
        if (bad !== null) return fail(`with half a header pending, a request got a wrong answer: ${bad}`);
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        stalled = errorText(e);
      }
      try {
        d.fe.sendRaw(rest);
        d.fe.readReply('GET_FEATURES');
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        return recover(ctx, d, `the completed GET_FEATURES was not answered (${errorText(e)})${stalled === null ? '' : `, and the ring stalled while it was half sent (${stalled})`}`);
      }
      if (stalled !== null) return fail(`while 6 of 12 header bytes were pending, the ring was not served (${stalled}); the back-end waits for the rest of a message instead of serving its rings`);
      return pass('the ring was served while 6 header bytes were pending; GET_FEATURES was answered once complete');
    },
  },
  {
    id: 'proto.abuse.fds-with-truncated-message',
    title: 'fds sent with a message cut short (half a header, or a header and half its payload) are closed when the front-end disconnects',
    source: `${DOC} "Communication" (fds travel as ancillary data with a message); unix(7) SCM_RIGHTS (the receiver owns the fds it receives); AVP #18 case 6`,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const leaked: string[] = [];
      const cuts: Array<[string, Uint8Array]> = [
        ['half a header', cutMessage(FRONTEND_REQUEST_CODES.SET_VRING_CALL, 6)],
        ['a header and half its payload', cutMessage(FRONTEND_REQUEST_CODES.SET_VRING_CALL, 16)],
      ];
      for (const [what, bytes] of cuts) {
        const d = ctx.connect();
        const probe = leakProbe();
        try {
          d.fe.sendRaw(bytes, [probe.sent]);
          // Give the back-end time to read the fragment (and its fd) before the hang-up.
          sleep(50);
          d.close();
          if (!probe.closedByPeer(ctx.timeoutMs)) leaked.push(what);
        } finally {
          probe.dispose();
        }
      }
      const d = ctx.connect();
      d.start();
      const bad = probeOnce(d);
      if (bad !== null) return fail(`afterwards a new connection got a wrong answer: ${bad}`);
      if (leaked.length > 0) return fail(`the fd sent with ${leaked.join(' and with ')} was still open in the back-end ${ctx.timeoutMs} ms after the front-end disconnected (a leak that grows per session)`);
      return pass('both fds were closed after the disconnect; a new connection is served');
    },
  },
  {
    id: 'proto.abuse.bad-vring-index-fd',
    title: 'SET_VRING_KICK / CALL / ERR naming a ring that does not exist close the fd they carry',
    source: `${DOC} VHOST_USER_SET_VRING_KICK / CALL / ERR ("Bits (0-7) of the payload contain the vring index"); AVP #18 case 7 (repeated, a kept fd exhausts the fd table)`,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const notes: string[] = [];
      const problems: string[] = [];
      let dropped = false;
      for (const type of ['SET_VRING_KICK', 'SET_VRING_CALL', 'SET_VRING_ERR'] as const) {
        const d = ctx.connect();
        d.handshake();
        const probe = leakProbe();
        try {
          const payload = new Uint8Array(8);
          payload[0] = NO_SUCH_RING;
          const ack = hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK);
          d.fe.sendRaw(encodeFrame(FRONTEND_REQUEST_CODES[type], VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_MASK : 0), payload).bytes, [probe.sent]);
          let open = true;
          try {
            if (ack) d.fe.readAnyReply(ctx.timeoutMs);
            d.fe.getU64('GET_FEATURES');
          } catch (e: unknown) {
            if (!isBackendSilence(e)) throw e;
            open = false;
          }
          if (open && probe.closedByPeer(Math.min(1000, ctx.timeoutMs))) {
            notes.push(`${type}: closed at once`);
            continue;
          }
          if (!open || d.fe.peerClosed()) {
            dropped = true;
            if (probe.closedByPeer(ctx.timeoutMs)) notes.push(`${type}: the back-end dropped the connection, and the fd with it`);
            else problems.push(`${type}: the back-end dropped the connection but the fd stayed open`);
            continue;
          }
          d.close();
          problems.push(probe.closedByPeer(ctx.timeoutMs) ? `${type}: the fd was held until the connection ended (a front-end repeating this exhausts the back-end's fd table)` : `${type}: the fd was never closed, not even after the disconnect`);
        } finally {
          probe.dispose();
          d.close();
        }
      }
      if (problems.length > 0) return fail(problems.join('; '));
      if (!dropped) return pass(notes.join('; '));
      const d = ctx.connect();
      d.start();
      const bad = probeOnce(d);
      if (bad !== null) return fail(`${notes.join('; ')}; a new connection then got a wrong answer: ${bad}`);
      return reject(`${notes.join('; ')}; a new connection is served`);
    },
  },
];

/** Lines of /proc/<pid>/maps that map the file with inode `ino`, or null when the file cannot be read. */
function mappingsOfInode(pid: number, ino: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return null;
  }
  return text.split('\n').filter((l) => l.split(/\s+/)[4] === String(ino)).length;
}

/**
 * The used element of `token`, looked for every 10 ms for up to `ms` without reading the call
 * eventfd (the saturation checks need its counter left alone); undefined when it did not come
 * or the connection ended.
 */
function usedWithin(d: VhostUserDriver, token: number, ms: number): ReturnType<VhostUserDriver['usedOf']> {
  const end = Date.now() + ms;
  for (;;) {
    if (d.fe.closed || d.fe.peerClosed()) return undefined;
    const u = d.usedOf(token);
    if (u !== undefined || Date.now() >= end) return u;
    sleep(10);
  }
}

/** Waits up to `ms` for `count()` to be 0; returns the last value. */
function untilZero(count: () => number | null, ms: number): number | null {
  const end = Date.now() + ms;
  let n = count();
  while (n !== null && n > 0 && Date.now() < end) {
    sleep(20);
    n = count();
  }
  return n;
}

const SIGNAL_CHECKS: readonly Check[] = [
  {
    id: 'proto.abuse.call-saturated',
    title: 'A used buffer is returned although the call eventfd counter is at its maximum; the connection stays',
    source: `${DOC} VHOST_USER_SET_VRING_CALL; eventfd(2) ("a write that would overflow the counter ... fails with EAGAIN" on a non-blocking eventfd); AVP #18 case 4`,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const d = ctx.connect();
      d.start();
      const q = d.queue();
      if (!eventfdSaturate(q.fds.call)) return fail('the back-end kept signalling the call eventfd of an idle ring: it could not be brought to its maximum in 100 tries');
      const p = ctx.device.probe(d);
      const token = d.submit(p.buffers);
      d.kick();
      // Wait without reading the call eventfd (a read would reset the counter).
      let used = usedWithin(d, token, d.timeoutMs);
      let problem: string | null = null;
      try {
        d.fe.getU64('GET_FEATURES');
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        problem = `with the call counter saturated the back-end stopped answering (${errorText(e)})`;
      }
      used ??= d.usedOf(token);
      eventfdRead(q.fds.call);
      if (problem !== null) return recover(ctx, d, problem);
      if (used === undefined) return fail('the request was not completed while the call counter was saturated (a signal that cannot be added is not a reason to stop: the counter already wakes the front-end)');
      const wrong = p.verify(used);
      if (wrong !== null) return fail(wrong);
      let again: string | null;
      try {
        again = probeOnce(d);
      } catch (e: unknown) {
        if (!isBackendSilence(e)) throw e;
        return recover(ctx, d, `the request was completed, but then the back-end dropped the connection (${errorText(e)}): a saturated call counter ended it`);
      }
      return again === null ? pass('completed with the counter saturated; the next request was served as usual') : fail(`after the counter was drained: ${again}`);
    },
  },
  {
    id: 'proto.abuse.call-saturated-blocking',
    title: 'A blocking call eventfd at its maximum count does not block the back-end',
    source: `${DOC} VHOST_USER_SET_VRING_CALL (the front-end creates the eventfd and may leave it blocking); eventfd(2) (a write that would overflow a blocking counter blocks); AVP #18 case 4`,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const d = ctx.connect();
      d.start();
      const index = ctx.device.probeQueue;
      // eventfd flags 0: blocking. Owned here; drained before it is closed, which unblocks a writer.
      const call = eventfdCreate(0);
      try {
        eventfdWrite(call, EVENTFD_MAX);
        d.fe.request({ type: 'SET_VRING_CALL', body: { index, noFd: false }, fds: [call] });
        const p = ctx.device.probe(d);
        let token: number | undefined;
        let used: ReturnType<VhostUserDriver['usedOf']>;
        let blocked: string | null = null;
        try {
          // A round trip: the new call fd is in place before the request below completes.
          d.fe.getU64('GET_FEATURES');
          token = d.submit(p.buffers);
          d.kick();
          // Bounded by the check's limit: a back-end blocked in write(2) never completes it.
          used = usedWithin(d, token, d.timeoutMs);
          d.fe.getU64('GET_FEATURES');
        } catch (e: unknown) {
          if (!isBackendSilence(e)) throw e;
          blocked = errorText(e);
        }
        if (used === undefined && token !== undefined && !d.fe.closed && !d.fe.peerClosed()) used = d.usedOf(token);
        eventfdRead(call);
        if (blocked !== null) {
          if (d.fe.peerClosed()) return recover(ctx, d, `with the blocking call counter saturated the back-end closed the connection (${blocked})`);
          // Drained now: a back-end blocked in write(2) is free again; does it answer?
          let after = 'and still does not answer after the front-end drained the counter';
          d.close();
          try {
            const fresh = ctx.connect();
            fresh.close();
            after = 'and answers new connections once the front-end drained the counter (it was blocked in write(2) on the eventfd)';
          } catch (e: unknown) {
            if (!isBackendSilence(e) && !isConnectRefused(e)) throw e;
          }
          return fail(`with the blocking call counter saturated the back-end stopped answering properly (${blocked}), ${after}`);
        }
        if (used === undefined) return fail('the request was not completed while the blocking call counter was saturated');
        const wrong = p.verify(used);
        return wrong === null ? pass('completed without blocking; the connection kept answering') : fail(wrong);
      } finally {
        closeQuiet(call);
      }
    },
  },
  {
    id: 'proto.abuse.mem-removed-unmapped',
    title: 'Memory removed under a live ring (REM_MEM_REG, or a smaller SET_MEM_TABLE) is unmapped once the front-end has left',
    source: `${DOC} VHOST_USER_REM_MEM_REG / VHOST_USER_SET_MEM_TABLE ("unmap" the regions no longer in the table); AVP #18 case 8 (a mapping kept per session grows without bound)`,
    level: 'MUST',
    group: 'protocol',
    devices: 'all',
    run(ctx) {
      const d = ctx.connect();
      d.start();
      let pid: number;
      try {
        pid = peerCredentials(d.fe.fd).pid;
      } catch (e: unknown) {
        return skip(`SO_PEERCRED failed: ${errorText(e)}`);
      }
      const ino = fstatSync(d.memory.fd).ino;
      const before = mappingsOfInode(pid, ino);
      if (before === null) return skip(`/proc/${pid}/maps of the back-end cannot be read (another user?)`);
      if (before === 0) return skip(`the back-end (pid ${pid}) does not map guest memory as a file mapping this check can find`);
      const how = hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) ? 'REM_MEM_REG' : 'a smaller SET_MEM_TABLE';
      withFds((owned) => {
        try {
          if (how === 'REM_MEM_REG') d.fe.request({ type: 'REM_MEM_REG', body: d.memory.region, fds: [], needReply: hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK) });
          else d.fe.request({ type: 'SET_MEM_TABLE', body: { regions: [{ guestAddr: EXTRA_GPA, size: 64 * KIB, userAddr: EXTRA_UVA, mmapOffset: 0 }] }, fds: [memfd(64 * KIB, false, owned)] });
          d.fe.getU64('GET_FEATURES');
        } catch (e: unknown) {
          if (!isBackendSilence(e)) throw e;
        }
      });
      d.close();
      const left = untilZero(() => mappingsOfInode(pid, ino), ctx.timeoutMs);
      let fresh;
      try {
        fresh = ctx.connect();
      } catch (e: unknown) {
        if (isConnectRefused(e)) return { verdict: 'CRASH', details: `after ${how} under a live ring the back-end no longer accepts connections` };
        throw e;
      }
      fresh.start();
      const bad = probeOnce(fresh);
      if (left !== null && left > 0) return fail(`after ${how} under a live ring and the disconnect, the back-end still maps the removed memory (${left} mapping(s) in /proc/${pid}/maps)`);
      if (bad !== null) return fail(`after ${how} under a live ring a new connection got a wrong answer: ${bad}`);
      return pass(`${how} under a live ring: nothing of the removed memory stays mapped after the disconnect; a new connection is served`);
    },
  },
];

export const FRONTEND_ABUSE_CHECKS: readonly Check[] = [...MEMORY_CHECKS, ...CHANNEL_CHECKS, ...SIGNAL_CHECKS];
