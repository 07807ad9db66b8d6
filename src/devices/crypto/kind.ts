// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-crypto as a device kind (devices/kind.ts): AES ciphers, hashes and HMACs on node:crypto.
 * QEMU attaches it as `-object cryptodev-vhost-user,chardev=...` plus `-device
 * virtio-crypto-pci,cryptodev=...`; QEMU keeps the control queue and forwards sessions out of
 * band (CREATE/CLOSE_CRYPTO_SESSION), so the back-end serves the data queue and the sessions. The
 * guest's virtio_crypto driver registers `cbc(aes)` and the kernel's self-tests run through it.
 * The device needs no host resource and has no set-up errors beyond its options' bounds.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { intField } from '../options.js';
import { metric } from '../summary.js';
import { cryptoConformance } from './conformance.js';
import { CryptoDevice } from './model.js';
import { CRYPTO_DEVICE_ID } from './spec.js';

const options = z.object({
  maxSessions: intField(1, 65536, 'live sessions at most; more are refused with NOSPC').default(1024),
  maxRequest: intField(4096, 64 << 20, 'largest source of one request in bytes; larger ones are refused with BADMSG').default(1 << 20),
});

export const cryptoKind = defineKind({
  name: 'crypto',
  virtioId: CRYPTO_DEVICE_ID,
  vhostUserType: 'crypto',
  description: 'virtio-crypto (VIRTIO 1.3 §5.9): AES-CBC/ECB/CTR, SHA and HMAC sessions on node:crypto, sessions from the control queue or forwarded by QEMU',
  capabilities: ['max-sessions', 'max-request'],
  options,
  create: (o) => new CryptoDevice({ maxSessions: o.maxSessions, maxRequestBytes: o.maxRequest }),
  conformance: cryptoConformance,
  conformanceSetups: [{ label: 'default', options: { maxSessions: 8 }, expected: 'conformance.expected.txt' }],
  frontend: {
    qemuDevice: 'virtio-crypto-pci',
    object: { type: 'cryptodev-vhost-user', deviceProp: 'cryptodev' },
    // QEMU exits when the cryptodev-vhost-user chardev cannot connect (device-wave-2.md §5b).
    reconnect: false,
    minQemu: '7.2',
    // Seen: QEMU 7.2 segfaults at start for virtio-crypto-pci with cryptodev-vhost-user under TCG
    // unless MSI-X is off, as it does for vhost-user virtio-net; 10.0 does not.
    quirks: [{ below: '8.0', props: { vectors: 0 }, why: 'QEMU 7.2 segfaults for virtio-crypto-pci with cryptodev-vhost-user under TCG without vectors=0' }],
  },
  guestModules: ['virtio_crypto'],
  manifest: {
    fields: { maxSessions: options.shape.maxSessions.unwrap().optional(), maxRequest: options.shape.maxRequest.unwrap().optional() },
    plan: (e) => ({
      options: {
        ...(e['maxSessions'] === undefined ? {} : { maxSessions: e['maxSessions'] }),
        ...(e['maxRequest'] === undefined ? {} : { maxRequest: e['maxRequest'] }),
      },
    }),
  },
  summarize: (m) => `${metric(m, ['encrypted']) + metric(m, ['decrypted'])} cipher, ${metric(m, ['sessions'])} sess, ${metric(m, ['badMessages']) + metric(m, ['invalidSession'])} bad`,
});
