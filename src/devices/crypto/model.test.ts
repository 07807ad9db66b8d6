// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto through the in-process harness (VIRTIO 1.3 §5.9): control-queue and QEMU-forwarded
 * sessions, AES modes against published vectors, hashes and HMACs, hostile lengths and ids.
 * Expected bytes are published vectors or node:crypto computed here, never the model's own path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { DeviceHarness } from '../../device/harness.js';
import { CryptoDevice } from './model.js';
import { QEMU72_SESSION_SIZE, QEMU_SESSION_SIZE, parseQemuSession, qemuSessionId, qemuSessionMessage } from './qemu-session.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
// Wire values from the spec.
const [ENCRYPT, DECRYPT, HASH, MAC] = [0x000, 0x001, 0x100, 0x200];
const [CIPHER_CREATE, CIPHER_DESTROY, HASH_CREATE, MAC_CREATE] = [0x002, 0x003, 0x102, 0x202];
const [ECB, CBC, CTR] = [2, 3, 4];
const [OK, BADMSG, NOTSUPP, INVSESS, NOSPC] = [0, 2, 3, 4, 5];

class Driver {
  readonly h: DeviceHarness<CryptoDevice>;
  constructor(dev = new CryptoDevice()) {
    this.h = new DeviceHarness(dev);
  }

  #put(bytes: Uint8Array): { addr: number; len: number } {
    const addr = this.h.alloc.alloc(Math.max(bytes.length, 1));
    this.h.memory.write(addr, bytes);
    return { addr, len: bytes.length };
  }

  #in(len: number): { addr: number; len: number; writable: true } {
    const addr = this.h.alloc.alloc(Math.max(len, 1));
    this.h.memory.fill(addr, len, 0xee);
    return { addr, len, writable: true };
  }

  ctrl(fill: (v: DataView) => void, key: Uint8Array = new Uint8Array(0)): { id: bigint; status: number; len: number } {
    const req = new Uint8Array(72);
    fill(new DataView(req.buffer));
    const input = this.#in(16);
    const used = this.h.request(1, [this.#put(req), ...(key.length > 0 ? [this.#put(key)] : []), input]);
    const v = new DataView(this.h.memory.read(input.addr, 16).buffer);
    return { id: v.getBigUint64(0, true), status: v.getUint32(8, true), len: used.len };
  }

  cipher(algo: number, key: Uint8Array, op: number, keyLen = key.length): { id: bigint; status: number } {
    return this.ctrl((v) => {
      v.setUint32(0, CIPHER_CREATE, true);
      v.setUint32(16, algo, true);
      v.setUint32(20, keyLen, true);
      v.setUint32(24, op, true);
      v.setUint32(64, 1, true);
    }, key);
  }

  destroy(id: bigint, opcode = CIPHER_DESTROY): number {
    const req = new Uint8Array(72);
    const v = new DataView(req.buffer);
    v.setUint32(0, opcode, true);
    v.setBigUint64(16, id, true);
    const st = this.#in(1);
    this.h.request(1, [this.#put(req), st]);
    return this.h.memory.read(st.addr, 1)[0] ?? -1;
  }

  data(opcode: number, id: bigint, iv: Uint8Array, src: Uint8Array, dstLen: number, fields: { iv?: number; src?: number; dst?: number; digest?: boolean } = {}): { status: number; out: Uint8Array; len: number } {
    const req = new Uint8Array(72);
    const v = new DataView(req.buffer);
    v.setUint32(0, opcode, true);
    v.setBigUint64(8, id, true);
    if (fields.digest === true) {
      v.setUint32(24, fields.src ?? src.length, true);
      v.setUint32(28, fields.dst ?? dstLen, true);
    } else {
      v.setUint32(24, fields.iv ?? iv.length, true);
      v.setUint32(28, fields.src ?? src.length, true);
      v.setUint32(32, fields.dst ?? dstLen, true);
      v.setUint32(64, 1, true);
    }
    const dst = this.#in(dstLen);
    const st = this.#in(1);
    const used = this.h.request(0, [this.#put(req), ...(iv.length > 0 ? [this.#put(iv)] : []), ...(src.length > 0 ? [this.#put(src)] : []), ...(dstLen > 0 ? [dst] : []), st]);
    return { status: this.h.memory.read(st.addr, 1)[0] ?? -1, out: this.h.memory.read(dst.addr, dstLen), len: used.len };
  }
}

// NIST SP 800-38A: F.2.1 (CBC-AES128), F.1.5 (ECB-AES256), F.5.1 (CTR-AES128), first block(s).
const KEY128 = hex('2b7e151628aed2a6abf7158809cf4f3c');
const IV = hex('000102030405060708090a0b0c0d0e0f');
const PLAIN = hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');

test('crypto: AES-128-CBC through control-queue sessions gives NIST SP 800-38A F.2.1, both ways', () => {
  const d = new Driver();
  const e = d.cipher(CBC, KEY128, 1);
  const p = d.cipher(CBC, KEY128, 2);
  assert.deepEqual([e.status, p.status], [OK, OK]);
  assert.notEqual(e.id, p.id);
  const c = d.data(ENCRYPT, e.id, IV, PLAIN, 32);
  assert.equal(c.status, OK);
  assert.equal(toHex(c.out), '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2');
  assert.equal(c.len, 33, 'the whole device-writable part, as QEMU reports it');
  assert.deepEqual(d.data(DECRYPT, p.id, IV, c.out, 32).out, PLAIN);
  assert.equal(d.destroy(e.id), OK);
  assert.equal(d.destroy(e.id), INVSESS);
  assert.equal(d.data(ENCRYPT, e.id, IV, PLAIN, 32).status, INVSESS);
  assert.deepEqual(d.h.device.metrics().sessions, 1);
});

test('crypto: AES-256-ECB (F.1.5) and AES-128-CTR (F.5.1) with a partial block', () => {
  const d = new Driver();
  const key256 = hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
  const ecb = d.cipher(ECB, key256, 1);
  assert.equal(toHex(d.data(ENCRYPT, ecb.id, new Uint8Array(0), PLAIN.subarray(0, 16), 16).out), 'f3eed1bdb5d2a03c064b5a7e3db181f8');
  const ctrIv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
  const ctr = d.cipher(CTR, KEY128, 1);
  const r = d.data(ENCRYPT, ctr.id, ctrIv, PLAIN.subarray(0, 20), 20);
  assert.equal(toHex(r.out).slice(0, 32), '874d6191b620e3261bef6864990db6ce', 'NIST F.5.1 block 1');
  const want = createCipheriv('aes-128-ctr', KEY128, ctrIv).update(PLAIN.subarray(0, 20));
  assert.equal(toHex(r.out), toHex(want), 'CTR takes a partial block');
});

test('crypto: SHA-256 and HMAC-SHA-256 sessions; results truncated to the session\'s length', () => {
  const d = new Driver();
  const h = d.ctrl((v) => {
    v.setUint32(0, HASH_CREATE, true);
    v.setUint32(16, 4, true);
    v.setUint32(20, 32, true);
  });
  assert.equal(h.status, OK);
  const abc = new TextEncoder().encode('abc');
  assert.equal(toHex(d.data(HASH, h.id, new Uint8Array(0), abc, 32, { digest: true }).out), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const short = d.ctrl((v) => {
    v.setUint32(0, HASH_CREATE, true);
    v.setUint32(16, 2, true);
    v.setUint32(20, 12, true);
  });
  assert.equal(toHex(d.data(HASH, short.id, new Uint8Array(0), abc, 12, { digest: true }).out), createHash('sha1').update(abc).digest('hex').slice(0, 24));
  const key = new TextEncoder().encode('Jefe');
  const m = d.ctrl((v) => {
    v.setUint32(0, MAC_CREATE, true);
    v.setUint32(16, 4, true);
    v.setUint32(20, 32, true);
    v.setUint32(24, key.length, true);
  }, key);
  const out = d.data(MAC, m.id, new Uint8Array(0), new TextEncoder().encode('what do ya want for nothing?'), 32, { digest: true });
  assert.equal(toHex(out.out), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'RFC 4231 test case 2');
  assert.equal(d.data(HASH, m.id, new Uint8Array(0), abc, 32, { digest: true }).status, INVSESS, 'a HASH request on a MAC session');
});

test('crypto: hostile data requests get BADMSG/INVSESS/NOTSUPP, write nothing but the status, and the device goes on', () => {
  const d = new Driver(new CryptoDevice({ maxRequestBytes: 4096 }));
  const e = d.cipher(CBC, KEY128, 1);
  const cases: Array<[string, ReturnType<Driver['data']>, number]> = [
    ['src past the readable bytes', d.data(ENCRYPT, e.id, IV, PLAIN, 64, { src: 64 }), BADMSG],
    ['src 0xffffffff', d.data(ENCRYPT, e.id, IV, PLAIN, 32, { src: 0xffff_ffff }), BADMSG],
    ['src over the cap', d.data(ENCRYPT, e.id, IV, new Uint8Array(8192), 8192), BADMSG],
    ['dst past the writable bytes', d.data(ENCRYPT, e.id, IV, PLAIN, 32, { dst: 33 }), BADMSG],
    ['dst shorter than src', d.data(ENCRYPT, e.id, IV, PLAIN, 16), BADMSG],
    ['iv 0xffffffff', d.data(ENCRYPT, e.id, IV, PLAIN, 32, { iv: 0xffff_ffff }), BADMSG],
    ['CBC over 15 bytes', d.data(ENCRYPT, e.id, IV, PLAIN.subarray(0, 15), 15), BADMSG],
    ['an 8-byte CBC IV', d.data(ENCRYPT, e.id, IV.subarray(0, 8), PLAIN, 32), BADMSG],
    ['DECRYPT on an encrypt session', d.data(DECRYPT, e.id, IV, PLAIN, 32), BADMSG],
    ['opcode 0x777', d.data(0x777, e.id, IV, PLAIN, 32), NOTSUPP],
    ['session 2^64-1', d.data(ENCRYPT, 0xffff_ffff_ffff_ffffn, IV, PLAIN, 32), INVSESS],
  ];
  for (const [what, r, status] of cases) {
    assert.equal(r.status, status, what);
    assert.ok(r.out.every((b) => b === 0xee), `${what}: the destination is untouched`);
  }
  // A request shorter than its header; a chain with no writable byte.
  const req = d.h.alloc.alloc(8);
  const st = d.h.alloc.alloc(1);
  assert.equal(d.h.request(0, [{ addr: req, len: 8 }, { addr: st, len: 1, writable: true }]).len, 1);
  assert.equal(d.h.memory.read(st, 1)[0], BADMSG);
  assert.equal(d.h.request(0, [{ addr: req, len: 8 }]).len, 0);
  assert.equal(toHex(d.data(ENCRYPT, e.id, IV, PLAIN, 32).out).slice(0, 8), '7649abac', 'still encrypts');
});

test('crypto: bad session parameters, unsupported services and the session limit', () => {
  const d = new Driver(new CryptoDevice({ maxSessions: 3 }));
  assert.equal(d.cipher(CBC, new Uint8Array(17), 1).status, BADMSG, '17-byte key');
  assert.equal(d.cipher(99, KEY128, 1).status, NOTSUPP);
  assert.equal(d.cipher(CBC, KEY128, 1, 0xffff_ffff).status, BADMSG, 'a key length past the key bytes');
  assert.equal(d.cipher(CBC, KEY128, 3).status, BADMSG, 'direction 3');
  assert.equal(d.ctrl((v) => v.setUint32(0, 0x302, true)).status, NOTSUPP, 'AEAD');
  assert.equal(d.ctrl((v) => v.setUint32(0, 0x404, true)).status, NOTSUPP, 'akcipher');
  assert.equal(d.ctrl((v) => {
    v.setUint32(0, HASH_CREATE, true);
    v.setUint32(16, 4, true);
    v.setUint32(20, 33, true);
  }).status, BADMSG, 'a SHA-256 result of 33 bytes');
  const ids = [1, 2, 3].map(() => d.cipher(CBC, KEY128, 1));
  assert.ok(ids.every((s) => s.status === OK));
  assert.equal(d.cipher(CBC, KEY128, 1).status, NOSPC);
  assert.equal(d.destroy(ids[0]!.id), OK);
  assert.equal(d.cipher(CBC, KEY128, 1).status, OK, 'room again after a close');
  assert.equal(d.h.device.metrics().refusedSessions, 8);
});

test('crypto: QEMU-forwarded sessions (1072-byte layout) share the table with the data queue', () => {
  const d = new Driver();
  const s = d.h.device.sessions;
  const enc = s.createSession(qemuSessionMessage({ opCode: CIPHER_CREATE, cipherAlg: CBC, key: KEY128, opType: 1, direction: 1 }));
  const id = qemuSessionId(enc);
  assert.equal(enc.length, QEMU_SESSION_SIZE);
  assert.ok(id !== undefined && id > 0n);
  assert.equal(toHex(d.data(ENCRYPT, id, IV, PLAIN, 32).out).slice(0, 32), '7649abac8119b246cee98e9b12e9197d');
  assert.equal(s.closeSession(id), true);
  assert.equal(s.closeSession(id), false);
  assert.equal(d.data(ENCRYPT, id, IV, PLAIN, 32).status, INVSESS);
  const bad = s.createSession(qemuSessionMessage({ opCode: CIPHER_CREATE, cipherAlg: CBC, key: KEY128, keyLen: 0xffff_ffff, opType: 1, direction: 1 }));
  assert.equal(qemuSessionId(bad), -BigInt(BADMSG), 'a failure is minus the status');
  assert.equal(qemuSessionId(s.createSession(qemuSessionMessage({ opCode: 0x404 }))), -BigInt(NOTSUPP));
  assert.deepEqual(s.createSession(new Uint8Array(100)), new Uint8Array(0), 'an unknown layout gets the empty reply');
});

test('crypto: the QEMU 7.2 layout (632 bytes, session id first, op_type 1 = cipher)', () => {
  const m = new Uint8Array(QEMU72_SESSION_SIZE);
  const v = new DataView(m.buffer);
  v.setUint32(8, CBC, true);
  v.setUint32(12, 16, true);
  v.setUint8(32, 1);
  v.setUint8(33, 2);
  m.set(KEY128, 56);
  assert.deepEqual(parseQemuSession(m)?.opCode, CIPHER_CREATE);
  const d = new Driver();
  const reply = d.h.device.sessions.createSession(m);
  assert.equal(new DataView(reply.buffer).getBigInt64(0, true), qemuSessionId(reply));
  const id = qemuSessionId(reply)!;
  assert.ok(id > 0n);
  assert.deepEqual(d.data(DECRYPT, id, IV, hex('7649abac8119b246cee98e9b12e9197d'), 16).out, PLAIN.subarray(0, 16));
});

test('crypto: a device reset drops the sessions', () => {
  const d = new Driver();
  const e = d.cipher(CBC, KEY128, 1);
  d.h.runner.reset();
  const d2 = new Driver(d.h.device);
  assert.equal(d2.data(ENCRYPT, e.id, IV, PLAIN, 32).status, INVSESS);
});
