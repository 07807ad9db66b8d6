// SPDX-License-Identifier: Apache-2.0
/**
 * CREATE_CRYPTO_SESSION / CLOSE_CRYPTO_SESSION through BackendSession: the protocol feature is
 * offered only to devices with out-of-band sessions (`VirtioDevice.sessions`), the payload reaches
 * the device untouched and its reply goes back as it is, a close of an unknown id is a failure
 * ack, and a device without sessions answers a create with the empty failure reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendSession } from './session.js';
import type { BackendReply, FrontendRequestInit } from './messages.js';
import { sendThroughCodec } from './testing/session-wire.js';
import type { DeviceSessionControl, VirtioDevice } from '../device/contract.js';
import { VHOST_USER_PROTOCOL_F_CRYPTO_SESSION, VHOST_USER_PROTOCOL_F_REPLY_ACK } from './protocol.js';

class SessionDevice implements VirtioDevice, DeviceSessionControl {
  readonly deviceId = 20;
  readonly name = 'sessions';
  readonly queueMaxSizes = [16];
  readonly offeredFeatures = 1n << 32n;
  readonly configSize = 0;
  readonly seen: Uint8Array[] = [];
  readonly open = new Set<bigint>();
  #next = 1n;
  readonly sessions: DeviceSessionControl | undefined;
  constructor(withSessions: boolean) {
    this.sessions = withSessions ? this : undefined;
  }
  createSession(message: Uint8Array): Uint8Array {
    this.seen.push(message.slice());
    const reply = message.slice();
    const id = this.#next++;
    this.open.add(id);
    new DataView(reply.buffer).setBigInt64(reply.length - 8, id, true);
    return reply;
  }
  closeSession(id: bigint): boolean {
    return this.open.delete(id);
  }
  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }
  writeConfig(): void {}
  activate(): void {}
  queueNotify(): void {}
  reset(): void {}
  metrics(): Record<string, unknown> {
    return {};
  }
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function setup(withSessions: boolean) {
  const dev = new SessionDevice(withSessions);
  const warnings: string[] = [];
  const session = new BackendSession({ device: dev, log: { ...silent, warn: (m) => warnings.push(m) } });
  const send = (init: FrontendRequestInit): BackendReply | null => sendThroughCodec(session, init);
  return { dev, session, send, warnings };
}

/** QEMU 8+'s 1072-byte description with a recognisable pattern. */
function description(): Uint8Array {
  return Uint8Array.from({ length: 1072 }, (_, i) => (i * 7) & 0xff);
}

test('sessions: PROTOCOL_F_CRYPTO_SESSION is offered exactly to devices that have sessions', () => {
  const has = (s: BackendSession) => ((s.offeredProtocolFeatures >> BigInt(VHOST_USER_PROTOCOL_F_CRYPTO_SESSION)) & 1n) === 1n;
  assert.equal(has(setup(true).session), true);
  assert.equal(has(setup(false).session), false);
});

test('sessions: the description reaches the device untouched and its reply comes back', () => {
  const s = setup(true);
  const desc = description();
  const reply = s.send({ type: 'CREATE_CRYPTO_SESSION', body: desc, fds: [] });
  assert.equal(reply?.type, 'CREATE_CRYPTO_SESSION');
  assert.deepEqual(s.dev.seen, [desc]);
  const body = (reply as Extract<BackendReply, { type: 'CREATE_CRYPTO_SESSION' }>).body;
  assert.equal(body.length, 1072);
  assert.equal(new DataView(body.buffer, body.byteOffset).getBigInt64(1064, true), 1n);
  assert.deepEqual(body.subarray(0, 1064), desc.subarray(0, 1064));
});

test('sessions: closing an unknown id is a failure ack; a known one succeeds once', () => {
  const s = setup(true);
  s.send({ type: 'SET_PROTOCOL_FEATURES', body: 1n << BigInt(VHOST_USER_PROTOCOL_F_REPLY_ACK) | (1n << BigInt(VHOST_USER_PROTOCOL_F_CRYPTO_SESSION)), fds: [] });
  s.send({ type: 'CREATE_CRYPTO_SESSION', body: description(), fds: [] });
  assert.deepEqual(s.send({ type: 'CLOSE_CRYPTO_SESSION', body: 1n, fds: [], needReply: true }), { type: 'ACK', request: 27, flags: 0x5, body: 0n, fds: [] });
  assert.deepEqual(s.send({ type: 'CLOSE_CRYPTO_SESSION', body: 1n, fds: [], needReply: true }), { type: 'ACK', request: 27, flags: 0x5, body: 1n, fds: [] });
  assert.deepEqual(s.send({ type: 'CLOSE_CRYPTO_SESSION', body: 0xffff_ffff_ffff_ffffn, fds: [], needReply: true })?.body, 1n);
  assert.equal(s.send({ type: 'CLOSE_CRYPTO_SESSION', body: 99n, fds: [] }), null, 'without NEED_REPLY, QEMU waits for nothing');
  assert.ok(s.warnings.some((w) => /no session 99/.test(w)));
});

test('sessions: a device without sessions answers a create with the empty failure reply', () => {
  const s = setup(false);
  const reply = s.send({ type: 'CREATE_CRYPTO_SESSION', body: description(), fds: [] });
  assert.deepEqual(reply, { type: 'CREATE_CRYPTO_SESSION', flags: 0x5, body: new Uint8Array(0), fds: [] });
  assert.ok(s.warnings.some((w) => /not supported/.test(w)));
});
