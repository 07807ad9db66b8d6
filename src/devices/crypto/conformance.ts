// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto's part of the conformance suite (VIRTIO 1.3 §5.9; AVPS crypto acceleration),
 * written against the transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe (a data request for a session that does not exist: the device must answer
 * INVSESS), the wrong-direction request, and the checks. Known answers come from published
 * vectors (NIST SP 800-38A F.2.1 CBC-AES128, FIPS 180-2 SHA-256 "abc", RFC 4231 test case 2),
 * written out here. Sessions are made both ways a front-end can: on the control queue, and out of
 * band as QEMU's virtio-crypto forwards them (`createSession`, QEMU ≥ 8.0's 1072-byte layout;
 * SKIP where the device has none). Hostile inputs: unknown and closed session ids, lengths that
 * do not fit the chain or the cipher, bad session parameters, a session of the wrong service,
 * the session limit, malformed forwarded descriptions.
 * Does not own: running checks or any transport.
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { QEMU_SESSION_SIZE, qemuSessionId, qemuSessionMessage } from './qemu-session.js';
import { CRYPTO_CONFIG_SIZE, CRYPTO_CONTROLQ, CRYPTO_DATAQ, CRYPTO_DEVICE_ID } from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.9.7';
// Wire values written out from the spec (not from spec.ts).
const CIPHER_CREATE = 0x002;
const CIPHER_DESTROY = 0x003;
const HASH_CREATE = 0x102;
const MAC_CREATE = 0x202;
const HASH_DESTROY = 0x103;
const MAC_DESTROY = 0x203;
const ENCRYPT = 0x000;
const DECRYPT = 0x001;
const HASH = 0x100;
const MAC = 0x200;
const AES_CBC = 3;
const SHA_256 = 4;
const HMAC_SHA_256 = 4;
const OP_ENCRYPT = 1;
const OP_DECRYPT = 2;
const SYM_OP_CIPHER = 1;
const OK = 0;
const BADMSG = 2;
const NOTSUPP = 3;
const INVSESS = 4;
const NOSPC = 5;
/** A session id no device hands out in a check's lifetime. */
const NO_SUCH_SESSION = 1n << 62n;

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, blocks 1-2.
const CBC_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c');
const CBC_IV = hex('000102030405060708090a0b0c0d0e0f');
const CBC_PLAIN = hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');
const CBC_CIPHER = '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2';
// FIPS 180-2 SHA-256("abc"); RFC 4231 test case 2 HMAC-SHA-256.
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const HMAC_KEY = new TextEncoder().encode('Jefe');
const HMAC_DATA = new TextEncoder().encode('what do ya want for nothing?');
const HMAC_RESULT = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';

function ctrlHeader(opcode: number, algo: number, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(72);
  const v = new DataView(b.buffer);
  v.setUint32(0, opcode, true);
  v.setUint32(4, algo, true);
  fill(v);
  return b;
}

/** Creates a session on the control queue: its id, or the status. */
function ctrlCreate(d: ConformanceDriver, req: Uint8Array, key: Uint8Array): { status: number; id: bigint } {
  const input = d.in(16, 0xee);
  d.request([d.out(req), ...(key.length > 0 ? [d.out(key)] : []), input], { queue: CRYPTO_CONTROLQ });
  const v = new DataView(d.bytes(input).buffer);
  return { id: v.getBigUint64(0, true), status: v.getUint32(8, true) };
}

function cipherSession(d: ConformanceDriver, key: Uint8Array, op: number, keyLen = key.length, algo = AES_CBC): { status: number; id: bigint } {
  return ctrlCreate(
    d,
    ctrlHeader(CIPHER_CREATE, algo, (v) => {
      v.setUint32(16, algo, true);
      v.setUint32(20, keyLen, true);
      v.setUint32(24, op, true);
      v.setUint32(64, SYM_OP_CIPHER, true);
    }),
    key,
  );
}

function destroy(d: ConformanceDriver, opcode: number, id: bigint): number {
  const st = d.in(1, 0xee);
  d.request([d.out(ctrlHeader(opcode, 0, (v) => v.setBigUint64(16, id, true))), st], { queue: CRYPTO_CONTROLQ });
  return d.bytes(st)[0] ?? -1;
}

/** A data request: its output, status and used length. */
function dataReq(d: ConformanceDriver, opts: { opcode: number; id: bigint; iv?: Uint8Array; src: Uint8Array; dstLen: number; srcLen?: number; dstLenField?: number; ivLen?: number; hash?: boolean }): { status: number; out: Uint8Array; len: number; writable: number } {
  const req = new Uint8Array(72);
  const v = new DataView(req.buffer);
  v.setUint32(0, opts.opcode, true);
  v.setBigUint64(8, opts.id, true);
  if (opts.hash === true) {
    v.setUint32(24, opts.srcLen ?? opts.src.length, true);
    v.setUint32(28, opts.dstLenField ?? opts.dstLen, true);
  } else {
    v.setUint32(24, opts.ivLen ?? opts.iv?.length ?? 0, true);
    v.setUint32(28, opts.srcLen ?? opts.src.length, true);
    v.setUint32(32, opts.dstLenField ?? opts.dstLen, true);
    v.setUint32(64, SYM_OP_CIPHER, true);
  }
  const dst = d.in(Math.max(opts.dstLen, 1), 0xee);
  const st = d.in(1, 0xee);
  const out = [d.out(req), ...(opts.iv !== undefined && opts.iv.length > 0 ? [d.out(opts.iv)] : []), ...(opts.src.length > 0 ? [d.out(opts.src)] : [])];
  const used = d.request([...out, ...(opts.dstLen > 0 ? [dst] : []), st], { queue: CRYPTO_DATAQ });
  return { status: d.bytes(st)[0] ?? -1, out: d.bytes(dst).subarray(0, opts.dstLen), len: used.len, writable: (opts.dstLen > 0 ? opts.dstLen : 0) + 1 };
}

/** Encrypts and decrypts the CBC vector with two sessions; null when both match. */
function cbcRoundTrip(d: ConformanceDriver, enc: bigint, dec: bigint): string | null {
  const e = dataReq(d, { opcode: ENCRYPT, id: enc, iv: CBC_IV, src: CBC_PLAIN, dstLen: 32 });
  if (e.status !== OK) return `encrypt: status ${e.status}`;
  if (toHex(e.out) !== CBC_CIPHER) return `encrypt: ${toHex(e.out)}, expected ${CBC_CIPHER} (NIST SP 800-38A F.2.1)`;
  if (e.len > e.writable) return `encrypt: used length ${e.len} past the ${e.writable} writable bytes`;
  const p = dataReq(d, { opcode: DECRYPT, id: dec, iv: CBC_IV, src: hex(CBC_CIPHER), dstLen: 32 });
  if (p.status !== OK) return `decrypt: status ${p.status}`;
  if (toHex(p.out) !== toHex(CBC_PLAIN)) return `decrypt: ${toHex(p.out)}`;
  return null;
}

function config(d: ConformanceDriver): DataView | null {
  const c = d.readConfig(0, CRYPTO_CONFIG_SIZE);
  return c === null || c.length !== CRYPTO_CONFIG_SIZE ? null : new DataView(c.buffer, c.byteOffset);
}

/** Whether the device's config offers `service` (and `algo` in the mask at `maskOff`). */
function offers(d: ConformanceDriver, service: number, maskOff: number, algo: number): boolean {
  const c = config(d);
  return c !== null && (c.getUint32(8, true) & (1 << service)) !== 0 && (c.getUint32(maskOff, true) & (1 << algo)) !== 0;
}

/** Makes an encrypt and a decrypt AES-128-CBC session out of band, or says why not. */
function forwardedPair(d: ConformanceDriver): { enc: bigint; dec: bigint } | CheckOutcome {
  const make = (direction: number) => d.createSession(qemuSessionMessage({ opCode: CIPHER_CREATE, cipherAlg: AES_CBC, key: CBC_KEY, opType: SYM_OP_CIPHER, direction }));
  const er = make(OP_ENCRYPT);
  if (er === null) return skip('the device has no out-of-band sessions (vhost-user PROTOCOL_F_CRYPTO_SESSION not offered)');
  const dr = make(OP_DECRYPT);
  const enc = qemuSessionId(er);
  const dec = dr === null ? undefined : qemuSessionId(dr);
  if (enc === undefined || dec === undefined) return fail(`the replies are ${er.length} and ${dr?.length ?? 0} bytes, not the ${QEMU_SESSION_SIZE}-byte description`);
  if (enc < 0n || dec < 0n) return fail(`session creation failed: ids ${enc}, ${dec}`);
  return { enc, dec };
}

const checks: DeviceCheck[] = [
  {
    id: 'crypto.config',
    title: 'The config says the device is ready, has a data queue, and offers AES-CBC',
    source: 'VIRTIO 1.3 §5.9.4 (status VIRTIO_CRYPTO_S_HW_READY, max_dataqueues, crypto_services, cipher_algo_l); AVPS crypto: AES-CBC at least',
    level: 'MUST',
    group: 'device',
    devices: ['crypto'],
    run(d) {
      d.start();
      const c = config(d);
      if (c === null) return fail('the 60-byte config could not be read');
      if ((c.getUint32(0, true) & 1) === 0) return fail('VIRTIO_CRYPTO_S_HW_READY is not set');
      if (c.getUint32(4, true) < 1) return fail('max_dataqueues is 0');
      if (!offers(d, 0, 12, AES_CBC)) return fail('the cipher service or AES-CBC is not offered');
      return pass(`services 0x${c.getUint32(8, true).toString(16)}, ciphers 0x${c.getUint32(12, true).toString(16)}, hashes 0x${c.getUint32(20, true).toString(16)}, max key ${c.getUint32(36, true)}`);
    },
  },
  {
    id: 'crypto.aes-cbc',
    title: 'AES-128-CBC sessions made on the control queue encrypt and decrypt the NIST vector',
    source: `${SPEC}.2.1 (symmetric cipher operation); NIST SP 800-38A F.2.1`,
    level: 'MUST',
    group: 'device',
    devices: ['crypto'],
    run(d) {
      d.start({ queueSize: 64 });
      const e = cipherSession(d, CBC_KEY, OP_ENCRYPT);
      const p = cipherSession(d, CBC_KEY, OP_DECRYPT);
      if (e.status !== OK || p.status !== OK) return fail(`CIPHER_CREATE_SESSION: statuses ${e.status}, ${p.status}`);
      if (e.id === p.id) return fail(`both sessions got id ${e.id}`);
      const bad = cbcRoundTrip(d, e.id, p.id);
      if (bad !== null) return fail(bad);
      const closed = [destroy(d, CIPHER_DESTROY, e.id), destroy(d, CIPHER_DESTROY, p.id)];
      if (closed.some((s) => s !== OK)) return fail(`CIPHER_DESTROY_SESSION: statuses ${closed.join(', ')}`);
      return pass(`sessions ${e.id}, ${p.id}: the vector encrypts and decrypts; both destroyed`);
    },
  },
  {
    id: 'crypto.aes-cbc-forwarded',
    title: 'AES-128-CBC sessions made out of band, as QEMU forwards them, encrypt and decrypt the NIST vector; closing works once',
    source: `${SPEC}.2.1; vhost-user.rst CREATE_CRYPTO_SESSION / CLOSE_CRYPTO_SESSION (QEMU's VhostUserCryptoSession)`,
    level: 'MUST',
    group: 'device',
    devices: ['crypto'],
    run(d) {
      d.start({ queueSize: 64 });
      const s = forwardedPair(d);
      if ('verdict' in s) return s;
      const bad = cbcRoundTrip(d, s.enc, s.dec);
      if (bad !== null) return fail(bad);
      if (!d.closeSession(s.enc) || !d.closeSession(s.dec)) return fail('CLOSE_CRYPTO_SESSION of a live session was refused');
      const after = dataReq(d, { opcode: ENCRYPT, id: s.enc, iv: CBC_IV, src: CBC_PLAIN, dstLen: 32 });
      if (after.status !== INVSESS) return fail(`a request on a closed session: status ${after.status}, expected INVSESS`);
      return pass(`sessions ${s.enc}, ${s.dec}: the vector encrypts and decrypts; closed`);
    },
  },
  {
    id: 'crypto.sha256',
    title: 'A SHA-256 hash session hashes "abc" to the FIPS 180-2 value',
    source: `${SPEC}.2.2 (hash operation); FIPS 180-2 appendix B.1`,
    level: 'MUST',
    group: 'device',
    devices: ['crypto'],
    run(d) {
      d.start();
      if (!offers(d, 1, 20, SHA_256)) return skip('SHA-256 is not offered');
      const s = ctrlCreate(d, ctrlHeader(HASH_CREATE, SHA_256, (v) => {
          v.setUint32(16, SHA_256, true);
          v.setUint32(20, 32, true);
        }), new Uint8Array(0));
      if (s.status !== OK) return fail(`HASH_CREATE_SESSION: status ${s.status}`);
      const r = dataReq(d, { opcode: HASH, id: s.id, src: new TextEncoder().encode('abc'), dstLen: 32, hash: true });
      if (r.status !== OK || toHex(r.out) !== SHA256_ABC) return fail(`status ${r.status}, digest ${toHex(r.out)}`);
      return destroy(d, HASH_DESTROY, s.id) === OK ? pass('SHA-256("abc") matches') : fail('HASH_DESTROY_SESSION failed');
    },
  },
  {
    id: 'crypto.hmac-sha256',
    title: 'An HMAC-SHA-256 session gives RFC 4231 test case 2',
    source: `${SPEC}.2.3 (MAC operation); RFC 4231 §4.3`,
    level: 'MUST',
    group: 'device',
    devices: ['crypto'],
    run(d) {
      d.start();
      if (!offers(d, 2, 24, HMAC_SHA_256)) return skip('HMAC-SHA-256 is not offered');
      const s = ctrlCreate(d, ctrlHeader(MAC_CREATE, HMAC_SHA_256, (v) => {
          v.setUint32(16, HMAC_SHA_256, true);
          v.setUint32(20, 32, true);
          v.setUint32(24, HMAC_KEY.length, true);
        }), HMAC_KEY);
      if (s.status !== OK) return fail(`MAC_CREATE_SESSION: status ${s.status}`);
      const r = dataReq(d, { opcode: MAC, id: s.id, src: HMAC_DATA, dstLen: 32, hash: true });
      if (r.status !== OK || toHex(r.out) !== HMAC_RESULT) return fail(`status ${r.status}, MAC ${toHex(r.out)}`);
      return destroy(d, MAC_DESTROY, s.id) === OK ? pass('RFC 4231 test case 2 matches') : fail('MAC_DESTROY_SESSION failed');
    },
  },
  {
    id: 'crypto.invalid-session',
    title: 'Requests for session ids that are not live get INVSESS; destroying one is refused',
    source: `${SPEC} (VIRTIO_CRYPTO_INVSESS: invalid session id)`,
    level: 'MUST',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start();
      for (const id of [0n, NO_SUCH_SESSION, 0xffff_ffff_ffff_ffffn]) {
        const r = dataReq(d, { opcode: ENCRYPT, id, iv: CBC_IV, src: CBC_PLAIN, dstLen: 32 });
        if (r.status !== INVSESS) return fail(`session ${id}: status ${r.status}, expected INVSESS`);
        if (r.out.some((b) => b !== 0xee)) return fail(`session ${id}: the destination buffer was written`);
      }
      const st = destroy(d, CIPHER_DESTROY, NO_SUCH_SESSION);
      if (st === OK) return fail('destroying a session that does not exist answered OK');
      const e = cipherSession(d, CBC_KEY, OP_ENCRYPT);
      if (e.status !== OK) return fail(`CIPHER_CREATE_SESSION: status ${e.status}`);
      const first = destroy(d, CIPHER_DESTROY, e.id);
      const second = destroy(d, CIPHER_DESTROY, e.id);
      if (first !== OK || second === OK) return fail(`destroying a session twice: ${first}, then ${second}`);
      return reject(`unknown ids get INVSESS; destroying one gets ${st}; a double destroy gets ${second}`);
    },
  },
  {
    id: 'crypto.bad-lengths',
    title: 'Lengths that do not fit the chain or the cipher get BADMSG, nothing is read or written past the buffers, and the device goes on',
    source: `${SPEC} (VIRTIO_CRYPTO_BADMSG); VIRTIO 1.3 §2.7.4; AVP: no allocation by a guest-claimed length`,
    level: 'MUST',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start({ queueSize: 64 });
      const e = cipherSession(d, CBC_KEY, OP_ENCRYPT);
      if (e.status !== OK) return fail(`CIPHER_CREATE_SESSION: status ${e.status}`);
      const cases: Array<[string, Parameters<typeof dataReq>[1]]> = [
        ['src_data_len past the readable bytes', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, srcLen: 64, dstLen: 64 }],
        ['src_data_len 0xffffffff', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, srcLen: 0xffff_ffff, dstLen: 32 }],
        ['dst_data_len past the writable bytes', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, dstLen: 32, dstLenField: 4096 }],
        ['dst_data_len shorter than the source', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, dstLen: 16 }],
        ['iv_len 0xffffffff', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, ivLen: 0xffff_ffff, dstLen: 32 }],
        ['CBC over 15 bytes', { opcode: ENCRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN.subarray(0, 15), dstLen: 15 }],
        ['an 8-byte IV for CBC', { opcode: ENCRYPT, id: e.id, iv: CBC_IV.subarray(0, 8), src: CBC_PLAIN, dstLen: 32 }],
        ['DECRYPT on an encrypt session', { opcode: DECRYPT, id: e.id, iv: CBC_IV, src: CBC_PLAIN, dstLen: 32 }],
      ];
      for (const [what, req] of cases) {
        const r = dataReq(d, req);
        if (r.status === OK) return fail(`${what}: status OK`);
        if (r.len > r.writable) return fail(`${what}: used length ${r.len} past the ${r.writable} writable bytes`);
      }
      const bad = cbcRoundTrip(d, e.id, cipherSession(d, CBC_KEY, OP_DECRYPT).id);
      if (bad !== null) return fail(`afterwards: ${bad}`);
      return reject(`${cases.length} bad requests refused; the device still encrypts`);
    },
  },
  {
    id: 'crypto.bad-session-params',
    title: 'Sessions with bad keys, algorithms or lengths are refused, and hostile lengths are not trusted',
    source: `${SPEC}.1 (session operation: "status of the operation"); VIRTIO_CRYPTO_NOTSUPP, VIRTIO_CRYPTO_BADMSG`,
    level: 'MUST',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start();
      const results: Array<[string, number]> = [
        ['a 17-byte AES key', cipherSession(d, new Uint8Array(17), OP_ENCRYPT).status],
        ['algorithm 99', cipherSession(d, CBC_KEY, OP_ENCRYPT, 16, 99).status],
        ['keylen 0xffffffff with 16 key bytes', cipherSession(d, CBC_KEY, OP_ENCRYPT, 0xffff_ffff).status],
        ['keylen 32 with 16 key bytes', cipherSession(d, CBC_KEY, OP_ENCRYPT, 32).status],
        ['direction 7', cipherSession(d, CBC_KEY, 7).status],
      ];
      for (const [what, s] of results) if (s === OK) return fail(`${what}: a session was created`);
      return reject(results.map(([w, s]) => `${w}: ${s}`).join('; '));
    },
  },
  {
    id: 'crypto.wrong-service',
    title: 'A hash request on a cipher session is refused',
    source: `${SPEC} (a data request names a session of its own service)`,
    level: 'MUST',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start();
      const e = cipherSession(d, CBC_KEY, OP_ENCRYPT);
      if (e.status !== OK) return fail(`CIPHER_CREATE_SESSION: status ${e.status}`);
      const r = dataReq(d, { opcode: HASH, id: e.id, src: CBC_PLAIN, dstLen: 32, hash: true });
      return r.status === OK ? fail('a HASH request on a cipher session answered OK') : reject(`status ${r.status}`);
    },
  },
  {
    id: 'crypto.session-limit',
    title: 'Past its session limit the device answers NOSPC, and serves again once sessions are closed',
    source: `${SPEC}.1 (VIRTIO_CRYPTO_NOSPC: no free session id); AVP: caps on every guest-controlled allocation`,
    level: 'SHOULD',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start({ queueSize: 128 });
      const ids: bigint[] = [];
      let refused: number | undefined;
      for (let i = 0; i < 100 && refused === undefined; i++) {
        const s = cipherSession(d, CBC_KEY, OP_ENCRYPT);
        if (s.status === OK) ids.push(s.id);
        else refused = s.status;
      }
      if (refused === undefined) return skip(`no limit within ${ids.length} sessions`);
      if (refused !== NOSPC) return fail(`session ${ids.length + 1} refused with status ${refused}, expected NOSPC`);
      for (const id of ids) destroy(d, CIPHER_DESTROY, id);
      const again = cipherSession(d, CBC_KEY, OP_ENCRYPT);
      return again.status === OK ? reject(`session ${ids.length + 1} refused with NOSPC; served again after closing`) : fail(`after closing every session: status ${again.status}`);
    },
  },
  {
    id: 'crypto.forwarded-hostile',
    title: 'Forwarded session descriptions with bad sizes, lengths or algorithms fail cleanly; closing unknown ids is refused',
    source: 'vhost-user.rst CREATE_CRYPTO_SESSION ("session_id ... -1 on errors"); QEMU VhostUserCryptoSession',
    level: 'MUST',
    group: 'hostile',
    devices: ['crypto'],
    run(d) {
      d.start();
      const probe = d.createSession(qemuSessionMessage({ opCode: HASH_CREATE, hashAlg: SHA_256, hashResultLen: 32 }));
      if (probe === null) return skip('the device has no out-of-band sessions');
      const bad: Array<[string, Uint8Array]> = [
        ['100 bytes', new Uint8Array(100)],
        ['key_len 0xffffffff', qemuSessionMessage({ opCode: CIPHER_CREATE, cipherAlg: AES_CBC, key: CBC_KEY, keyLen: 0xffff_ffff, opType: SYM_OP_CIPHER, direction: OP_ENCRYPT })],
        ['auth_key_len 0xffffffff', qemuSessionMessage({ opCode: MAC_CREATE, hashAlg: HMAC_SHA_256, hashResultLen: 32, authKeyLen: 0xffff_ffff })],
        ['op_code 0x999', qemuSessionMessage({ opCode: 0x999 })],
        ['algorithm chaining', qemuSessionMessage({ opCode: CIPHER_CREATE, cipherAlg: AES_CBC, key: CBC_KEY, opType: 2, direction: OP_ENCRYPT })],
      ];
      for (const [what, m] of bad) {
        const reply = d.createSession(m);
        const id = reply === null ? undefined : qemuSessionId(reply);
        if (id !== undefined && id >= 0n) return fail(`${what}: a session was created (id ${id})`);
      }
      if (d.closeSession(NO_SUCH_SESSION)) return fail('closing a session that does not exist was acknowledged as done');
      const ok = qemuSessionId(probe);
      if (ok === undefined || ok < 0n) return fail(`a valid SHA-256 session failed (${ok})`);
      return reject(`${bad.length} bad descriptions failed; an unknown close was refused`);
    },
  },
];

export const cryptoConformance: DeviceConformance = {
  device: 'crypto',
  deviceId: CRYPTO_DEVICE_ID,
  configSize: CRYPTO_CONFIG_SIZE,
  probeQueue: CRYPTO_DATAQ,
  queues: [CRYPTO_DATAQ, CRYPTO_CONTROLQ],
  probe(d) {
    const req = new Uint8Array(72);
    const v = new DataView(req.buffer);
    v.setUint32(0, ENCRYPT, true);
    v.setBigUint64(8, NO_SUCH_SESSION, true);
    v.setUint32(24, 16, true);
    v.setUint32(28, 16, true);
    v.setUint32(32, 16, true);
    v.setUint32(64, SYM_OP_CIPHER, true);
    const dst = d.in(16, 0xee);
    const st = d.in(1, 0xee);
    return {
      buffers: [d.out(req), d.out(CBC_IV), d.out(CBC_PLAIN.subarray(0, 16)), dst, st],
      verify(used) {
        const s = d.bytes(st)[0];
        if (s !== INVSESS) return `status ${s} for a session that does not exist, expected INVSESS (${INVSESS})`;
        return used.len <= 17 ? null : `used length ${used.len} past the 17 writable bytes`;
      },
    };
  },
  wrongDirection(d) {
    // The request in a device-writable buffer: nothing to read; the status byte is the only answer.
    const buf = d.in(73, 0x5c);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('not returned; the device kept serving');
        const b = d.bytes(buf);
        if (b[72] === BADMSG && used.len === 73) return reject('answered BADMSG in the last byte');
        if (used.len === 0) return pass('returned with used length 0');
        return b[72] === NOTSUPP ? reject('answered NOTSUPP') : fail(`used length ${used.len}, last byte ${b[72]}`);
      },
    };
  },
  checks,
};
