// SPDX-License-Identifier: Apache-2.0
/**
 * Protocol checks: the vhost-user message layer, device-agnostic (QEMU docs/interop/vhost-user.rst;
 * shared/reference/vhost-user-protocol.md §7.4 "rules worth checking", §9 what QEMU 7.2 sends).
 *
 * Owns: handshake and negotiation, REPLY_ACK, GET_QUEUE_NUM, memory-table styles, config access,
 * an unknown request, ring start/stop/restart and the next-avail index GET_VRING_BASE reports,
 * rings enabled without protocol features, kick before enable, RESET_DEVICE, a firmware-to-kernel
 * feature change, and reconnecting.
 * Does not own: the data path beyond one probe request per step (queue.ts), hostile rings
 * (hostile.ts).
 */
import { fail, pass, reject } from '../../device/conformance.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, hasFeature } from '../../spec/virtio.js';
import { encodeFrame } from '../../vhost-user/messages.js';
import { VhostUserFrontendError } from '../../vhost-user/frontend-errors.js';
import {
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_PROTOCOL_F_CONFIG,
  VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
  VHOST_USER_PROTOCOL_F_MQ,
  VHOST_USER_PROTOCOL_F_REPLY_ACK,
  VHOST_USER_PROTOCOL_F_RESET_DEVICE,
  VHOST_USER_VERSION,
} from '../../vhost-user/protocol.js';
import { NO_PROTOCOL_FEATURES, type Check, type CheckContext, errorText, genericChecks, hex, offersProtocol, passUnless, probeOnce, probes } from '../check.js';
import type { VhostUserDriver } from '../driver.js';

const DOC = 'vhost-user.rst';

const protocol = genericChecks('protocol');

/** `needs`: the back-end offers VHOST_USER_F_PROTOCOL_FEATURES (bit 30). */
const needsProtocolFeatures = (d: VhostUserDriver): string | null => (d.offeredProtocol === null ? NO_PROTOCOL_FEATURES : null);

/** `needs`: the device has a config space and the back-end offers protocol feature CONFIG. */
function needsConfig(d: VhostUserDriver, ctx: CheckContext): string | null {
  if (ctx.device.configSize === 0) return `${ctx.device.device} has no device configuration space`;
  return offersProtocol(VHOST_USER_PROTOCOL_F_CONFIG, 'CONFIG')(d);
}

/** A request code no version of the protocol assigns. */
const UNKNOWN_REQUEST = 0x5a5a;

/** What a firmware driver takes: SeaBIOS accepts neither EVENT_IDX nor INDIRECT_DESC (Linux takes both). */
const NOT_IN_FIRMWARE = featureBit(VIRTIO_F_EVENT_IDX) | featureBit(VIRTIO_F_INDIRECT_DESC);

export const PROTOCOL_CHECKS: readonly Check[] = [
  protocol({
    id: 'proto.handshake',
    title: 'The handshake QEMU 7.2 performs is answered and a first request completes',
    source: `${DOC} "Communication", "Front-end message types"; QEMU 7.2 sequence (vhost-user-protocol.md §9)`,
    level: 'MUST',
    run(d) {
      const bad = probeOnce(d);
      if (bad !== null) return fail(bad);
      const proto = d.offeredProtocol === null ? 'no protocol features' : `protocol features ${hex(d.offeredProtocol)}, negotiated ${hex(d.protocol)}`;
      return pass(`features ${hex(d.offered)}; ${proto}`);
    },
  }),
  protocol({
    id: 'proto.handshake.version1',
    title: 'VIRTIO_F_VERSION_1 is offered',
    source: 'VIRTIO 1.3 §6 Reserved Feature Bits (device requirements: "A device MUST offer VIRTIO_F_VERSION_1")',
    level: 'MUST',
    setup: 'connected',
    run: (d) => (hasFeature(d.offered, VIRTIO_F_VERSION_1) ? pass(`features ${hex(d.offered)}`) : fail(`features ${hex(d.offered)} lack bit 32 (VERSION_1)`)),
  }),
  protocol({
    id: 'proto.handshake.protocol-features',
    title: 'VHOST_USER_F_PROTOCOL_FEATURES (bit 30) is offered',
    source: `${DOC} "Communication" (protocol extensions are gated by bit 30); QEMU 7.2 vhost-user-rng aborts without it (vhost-user-protocol.md §9.1)`,
    level: 'SHOULD',
    setup: 'connected',
    run: (d) => (d.offeredProtocol !== null ? pass(`protocol features ${hex(d.offeredProtocol)}`) : fail('bit 30 is not offered: no protocol extension (REPLY_ACK, MQ, CONFIG, ...) can be negotiated')),
  }),
  protocol({
    id: 'proto.handshake.protocol-before-features',
    title: 'GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES work before SET_FEATURES',
    source: `${DOC} VHOST_USER_GET/SET_PROTOCOL_FEATURES note ("must support this message even before VHOST_USER_SET_FEATURES")`,
    level: 'MUST',
    needs: needsProtocolFeatures,
    setup: 'connected',
    run(d) {
      // connect() asked GET_PROTOCOL_FEATURES before anything else. Now negotiate REPLY_ACK alone
      // (when offered) and see it take effect before SET_FEATURES: SET_OWNER must then be acked.
      if (!d.offersProtocol(VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
        d.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: 0n, fds: [] });
        d.fe.getU64('GET_FEATURES');
        return pass('GET_PROTOCOL_FEATURES answered and SET_PROTOCOL_FEATURES accepted before SET_FEATURES (REPLY_ACK not offered, so its effect cannot be seen)');
      }
      d.fe.request({ type: 'SET_PROTOCOL_FEATURES', body: featureBit(VHOST_USER_PROTOCOL_F_REPLY_ACK), fds: [] });
      d.fe.requestAcked({ type: 'SET_OWNER', body: null, fds: [] });
      return pass('REPLY_ACK negotiated before SET_FEATURES took effect: SET_OWNER was acked');
    },
  }),
  protocol({
    id: 'proto.reply-ack',
    title: 'With REPLY_ACK, every message of the set-up sequence that asks for an ack gets a success ack',
    source: `${DOC} "VHOST_USER_PROTOCOL_F_REPLY_ACK" ("the back-end MUST respond with a Payload VhostUserMsg indicating success or failure")`,
    level: 'MUST',
    needs: offersProtocol(VHOST_USER_PROTOCOL_F_REPLY_ACK, 'REPLY_ACK'),
    // The start is the check: a nack or a missing ack during it is the failure.
    setup: 'connected',
    run(d) {
      try {
        d.start({ ackAll: true });
      } catch (e: unknown) {
        if (e instanceof VhostUserFrontendError && (e.code === 'VHOST_USER_FRONTEND_NACK' || e.code === 'VHOST_USER_FRONTEND_TIMEOUT')) return fail(e.message);
        throw e;
      }
      return passUnless(probeOnce(d), 'SET_OWNER, SET_FEATURES, memory and every ring message were acked with 0');
    },
  }),
  protocol({
    id: 'proto.queue-num',
    title: 'Protocol feature MQ is offered and GET_QUEUE_NUM reports at least one queue',
    source: `${DOC} "Multiple queue support" ("Back-ends should always implement the VHOST_USER_PROTOCOL_F_MQ protocol feature")`,
    level: 'SHOULD',
    needs: needsProtocolFeatures,
    setup: 'connected',
    run(d) {
      if (!d.offersProtocol(VHOST_USER_PROTOCOL_F_MQ)) return fail('protocol feature MQ is not offered');
      d.handshake();
      const n = d.fe.getU64('GET_QUEUE_NUM');
      return n >= 1n ? pass(`${n} queue(s)`) : fail(`GET_QUEUE_NUM answered ${n}`);
    },
  }),
  protocol({
    id: 'proto.mem.max-mem-slots',
    title: 'With CONFIGURE_MEM_SLOTS, GET_MAX_MEM_SLOTS reports at least one slot',
    source: `${DOC} VHOST_USER_GET_MAX_MEM_SLOTS`,
    level: 'MUST',
    needs: offersProtocol(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, 'CONFIGURE_MEM_SLOTS'),
    setup: 'handshaken',
    run(d) {
      const n = d.fe.getU64('GET_MAX_MEM_SLOTS');
      return n >= 1n ? pass(`${n} memory slots`) : fail(`GET_MAX_MEM_SLOTS answered ${n}`);
    },
  }),
  protocol({
    id: 'proto.mem.set-mem-table',
    title: 'Guest memory given with SET_MEM_TABLE (guest and user addresses differ, above 4 GiB) is used',
    source: `${DOC} VHOST_USER_SET_MEM_TABLE, "Memory access" (ring addresses are user addresses, buffers guest addresses)`,
    level: 'MUST',
    start: () => ({ memTable: 'set' }),
    run: (d) => passUnless(probes(d, 2)),
  }),
  protocol({
    id: 'proto.mem.add-mem-reg',
    title: 'With CONFIGURE_MEM_SLOTS, guest memory given with ADD_MEM_REG (what QEMU 7.2 sends) is used',
    source: `${DOC} VHOST_USER_ADD_MEM_REG`,
    level: 'MUST',
    needs: offersProtocol(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, 'CONFIGURE_MEM_SLOTS'),
    start: () => ({ memTable: 'add' }),
    run: (d) => passUnless(probes(d, 2)),
  }),
  protocol({
    id: 'proto.config.size-echo',
    title: 'GET_CONFIG answers with exactly the size asked for (whole config space, and 8 bytes)',
    source: `${DOC} VHOST_USER_GET_CONFIG ("vhost-user back-end's payload size MUST match the front-end's request")`,
    level: 'MUST',
    needs: needsConfig,
    setup: 'handshaken',
    run(d, ctx) {
      // 8 bytes, or the whole space where it is smaller (rpmb's has 3 bytes).
      for (const size of [ctx.device.configSize, Math.min(8, ctx.device.configSize)]) {
        const r = d.fe.getConfig(0, size);
        if (r === null || r.payload.length !== size) return fail(`GET_CONFIG of ${size} bytes answered ${r === null ? 'with the error form (size 0)' : `${r.payload.length} bytes`}`);
      }
      return pass(`${ctx.device.configSize} and ${Math.min(8, ctx.device.configSize)} bytes echoed`);
    },
  }),
  protocol({
    id: 'proto.config.offset',
    title: 'GET_CONFIG at a non-zero offset returns the bytes at that offset',
    source: `${DOC} "Virtio device config space" (offset: "offset of virtio device's configuration space")`,
    level: 'MUST',
    needs: needsConfig,
    setup: 'handshaken',
    run(d, ctx) {
      const size = ctx.device.configSize;
      // 4 bytes at offset 8, or less where the config space is smaller (vsock's has 8 bytes,
      // rpmb's 3: then the last 2 bytes at offset 1).
      const n = Math.min(4, size - 1);
      const at = Math.max(1, Math.min(8, size - n));
      const all = d.fe.getConfig(0, size);
      const part = d.fe.getConfig(at, n);
      if (all === null || all.payload.length !== size) return fail('GET_CONFIG of the whole config space failed');
      if (part === null || part.payload.length !== n) return fail(`GET_CONFIG of ${n} bytes at offset ${at} failed`);
      const want = [...all.payload.subarray(at, at + n)];
      const got = [...part.payload];
      return want.every((b, i) => b === got[i]) ? pass() : fail(`${n} bytes at offset ${at} read as [${got.join(',')}], but the whole config space has [${want.join(',')}] there (the offset was ignored?)`);
    },
  }),
  protocol({
    id: 'proto.config.out-of-range',
    title: 'GET_CONFIG beyond the config space (size 256, offset 256, offset 2^32-16) answers the error form',
    source: `${DOC} VHOST_USER_GET_CONFIG ("uses zero length of payload to indicate an error"); vhost-user-protocol.md §7.4`,
    level: 'SHOULD',
    needs: needsConfig,
    setup: 'handshaken',
    run(d) {
      const asks: Array<[number, number]> = [
        [0, 256],
        [256, 4],
        [0xffff_fff0, 16],
      ];
      const answered: string[] = [];
      for (const [offset, size] of asks) {
        let r;
        try {
          r = d.fe.getConfig(offset, size);
        } catch (e: unknown) {
          if (e instanceof VhostUserFrontendError && e.code === 'VHOST_USER_FRONTEND_DISCONNECTED') return reject(`the back-end closed the connection on GET_CONFIG offset ${offset} size ${size}`);
          throw e;
        }
        if (r !== null && r.payload.length > 0) answered.push(`offset ${offset} size ${size} → ${r.payload.length} bytes`);
      }
      return answered.length === 0 ? pass('every out-of-range read answered with size 0') : fail(`config bytes that do not exist were returned: ${answered.join('; ')}`);
    },
  }),
  protocol({
    id: 'proto.unknown-message',
    title: 'An unknown request with NEED_REPLY gets a failure ack, and the connection keeps working',
    source: `${DOC} "VHOST_USER_PROTOCOL_F_REPLY_ACK" (need_reply on "any command": "MUST respond ... non-zero on failure"); "Communication" (the back-end may close the connection in exceptional circumstances)`,
    level: 'MUST',
    setup: 'handshaken',
    run(d, ctx) {
      const ack = hasFeature(d.protocol, VHOST_USER_PROTOCOL_F_REPLY_ACK);
      const flags = VHOST_USER_VERSION | (ack ? VHOST_USER_NEED_REPLY_MASK : 0);
      const msg = encodeFrame(UNKNOWN_REQUEST, flags, new Uint8Array(8));
      d.fe.sendRaw(msg.bytes);
      const got = d.fe.readAnyReply(ack ? ctx.timeoutMs : 0);
      if (got.kind === 'closed') return reject(`the back-end closed the connection on request ${UNKNOWN_REQUEST}`);
      let note: string;
      if (got.kind === 'timeout') {
        if (ack) return fail(`no reply to request ${UNKNOWN_REQUEST} sent with NEED_REPLY`);
        note = 'no reply (REPLY_ACK not offered, none expected)';
      } else if (got.reply.type !== 'ACK') {
        return fail(`answered with a ${got.reply.type} reply`);
      } else if (got.reply.body === 0n) {
        return fail(`acknowledged request ${UNKNOWN_REQUEST}, which it cannot have carried out, as a success (ack 0)`);
      } else {
        note = `failure ack ${got.reply.body}`;
      }
      try {
        d.fe.getU64('GET_FEATURES');
      } catch (e: unknown) {
        return fail(`${note}, but the connection stopped answering afterwards: ${errorText(e)}`);
      }
      return pass(`${note}; GET_FEATURES still answered`);
    },
  }),
  protocol({
    id: 'proto.ring.start-stop-restart',
    title: 'GET_VRING_BASE stops a ring and returns the true next avail index; the ring resumes from it',
    source: `${DOC} "Ring states" (stop on VHOST_USER_GET_VRING_BASE), VHOST_USER_GET/SET_VRING_BASE; vhost-user-protocol.md §7.1`,
    level: 'MUST',
    run(d, ctx) {
      const index = ctx.device.probeQueue;
      let bad = probes(d, 3);
      if (bad !== null) return fail(bad);
      const base = d.stopRing(index);
      if (base !== 3) return fail(`GET_VRING_BASE returned ${base} after 3 requests; the next avail index is 3`);
      d.startRing(index, base);
      bad = probes(d, 2);
      if (bad !== null) return fail(`after the restart at ${base}: ${bad}`);
      const base2 = d.stopRing(index);
      return base2 === 5 ? pass('GET_VRING_BASE returned 3, then 5 after resuming') : fail(`after resuming at 3 and 2 more requests GET_VRING_BASE returned ${base2}, expected 5`);
    },
  }),
  protocol({
    id: 'proto.ring.stopped-quiet',
    title: 'A stopped ring is not processed; the buffers are used once the ring is started again',
    source: `${DOC} "Ring states" ("stopped: the back-end must not process the ring at all")`,
    level: 'MUST',
    run(d, ctx) {
      const index = ctx.device.probeQueue;
      const bad = probeOnce(d);
      if (bad !== null) return fail(bad);
      const base = d.stopRing(index);
      const p = ctx.device.probe(d);
      const token = d.submit(p.buffers);
      d.kick(index);
      // A control round trip: a back-end serving messages and rings in order has seen the kick.
      d.fe.getU64('GET_FEATURES');
      if (d.queue(index).dq.usedPending() > 0) return fail('a buffer made available while the ring was stopped was used before the ring was started again');
      // The ring starts on the first kick after it is set up again (vhost-user.rst "Ring states").
      d.startRing(index, base);
      d.kick(index);
      const wrong = p.verify(d.waitFor(token, index));
      return wrong === null ? pass() : fail(`after the restart: ${wrong}`);
    },
  }),
  protocol({
    id: 'proto.ring.kick-before-enable',
    title: 'A buffer kicked before SET_VRING_ENABLE 1 is used once the ring is enabled',
    source: `${DOC} "Ring states" (started but disabled rings are processed; enable by VHOST_USER_SET_VRING_ENABLE); rust-vmm/vhost#247`,
    level: 'SHOULD',
    needs: (d) => (d.offeredProtocol === null ? `${NO_PROTOCOL_FEATURES}: rings start enabled` : null),
    start: () => ({ enable: false }),
    run(d, ctx) {
      const index = ctx.device.probeQueue;
      const p = ctx.device.probe(d);
      const token = d.submit(p.buffers);
      d.kick(index);
      d.fe.request({ type: 'SET_VRING_ENABLE', body: { index, num: 1 }, fds: [] });
      return passUnless(p.verify(d.waitFor(token, index)));
    },
  }),
  protocol({
    id: 'proto.ring.enabled-without-protocol-features',
    title: 'Without VHOST_USER_F_PROTOCOL_FEATURES negotiated, rings start enabled (no SET_VRING_ENABLE)',
    source: `${DOC} "Ring states" ("If VHOST_USER_F_PROTOCOL_FEATURES has not been negotiated, the ring starts directly in the enabled state")`,
    level: 'MUST',
    start: () => ({ noProtocolFeatures: true }),
    run: (d) => passUnless(probes(d, 2), 'SET_FEATURES without bit 30, SET_MEM_TABLE, rings without SET_VRING_ENABLE: served'),
  }),
  protocol({
    id: 'proto.features.renegotiate',
    title: 'A device restarted with other features (firmware driver, then kernel driver) serves with the new ones',
    source: `${DOC} VHOST_USER_SET_FEATURES; QEMU 7.2 sends SET_FEATURES per start, twice, with different values (vhost-user-protocol.md §9.2, §9.4)`,
    level: 'SHOULD',
    start: (d) => ({ features: d.offeredFeatures & ~NOT_IN_FIRMWARE }),
    run(d) {
      let bad = probeOnce(d);
      if (bad !== null) return fail(`with the first features: ${bad}`);
      d.restartDevice({ features: d.offeredFeatures, twice: true });
      bad = probes(d, 2);
      if (bad !== null) return fail(`after SET_FEATURES ${hex(d.features)}: ${bad}`);
      return pass(`served with ${hex(d.offeredFeatures & ~NOT_IN_FIRMWARE)}, then with ${hex(d.features)}`);
    },
  }),
  protocol({
    id: 'proto.reset-device',
    title: 'After RESET_DEVICE the device can be set up again and serves',
    source: `${DOC} VHOST_USER_RESET_DEVICE ("reset all internal device state to the initial state, ready to be reinitialized")`,
    level: 'MUST',
    needs: offersProtocol(VHOST_USER_PROTOCOL_F_RESET_DEVICE, 'RESET_DEVICE'),
    run(d) {
      const bad = probeOnce(d);
      if (bad !== null) return fail(bad);
      d.resetDevice();
      const again = probes(d, 2);
      return again === null ? pass() : fail(`after RESET_DEVICE: ${again}`);
    },
  }),
  protocol({
    id: 'proto.reconnect',
    title: 'After a front-end disappears with a request in flight, a new connection is served',
    source: `${DOC} "Communication" ("An optional reconnection mechanism can be implemented"); vhost-user-protocol.md §8.1`,
    level: 'SHOULD',
    run(first, ctx) {
      const bad = probeOnce(first);
      if (bad !== null) return fail(bad);
      // Leave one request in flight and vanish, as a killed VMM does.
      first.submit(ctx.device.probe(first).buffers);
      first.kick();
      first.close();
      const second = ctx.connect();
      second.start();
      const again = probes(second, 2);
      return again === null ? pass() : fail(`on the new connection: ${again}`);
    },
  }),
];
