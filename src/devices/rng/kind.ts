// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rng as a device kind (devices/kind.ts): its options, front-end, guest module, manifest
 * entry and status summary. Imports only zod and its own folder (plus the shared kind helpers).
 */
import { defineKind } from '../kind.js';
import { intField } from '../options.js';
import { formatCount, metric } from '../summary.js';
import { z } from 'zod';
import { rngConformance } from './conformance.js';
import { RngDevice } from './model.js';
import { RNG_DEFAULT_MAX_BYTES_PER_REQUEST, RNG_DEVICE_ID } from './spec.js';

const options = z.object({
  maxBytes: intField(1, 2 ** 30, 'cap on random bytes per request').default(RNG_DEFAULT_MAX_BYTES_PER_REQUEST),
});

export const rngKind = defineKind({
  name: 'rng',
  virtioId: RNG_DEVICE_ID,
  vhostUserType: 'rng',
  description: 'virtio-entropy (VIRTIO 1.3 §5.4): random bytes from the host CSPRNG',
  capabilities: ['max-bytes'],
  options,
  create: (o) => new RngDevice({ maxBytesPerRequest: o.maxBytes }),
  conformance: rngConformance,
  conformanceSetups: [{ label: 'default', options: {}, expected: 'conformance.expected.txt' }],
  frontend: {
    qemuDevice: 'vhost-user-rng-pci',
    // QEMU 7.2's vhost-user-rng-pci talks to a reconnecting chardev before it has connected and
    // aborts ("Failed to set msg fds"), measured with a listening back-end; still so on 10.0.2
    // (docs/reliability.md, issue #16).
    reconnect: false,
    minQemu: '7.2',
  },
  guestModules: ['virtio-rng'],
  manifest: {
    fields: { maxBytes: options.shape.maxBytes.unwrap().optional() },
    plan: (e) => ({ options: e['maxBytes'] === undefined ? {} : { maxBytes: e['maxBytes'] } }),
  },
  summarize: (m) => `${metric(m, ['requests'])} req, ${formatCount(metric(m, ['bytes']))}B`,
  series: (m) => [{ key: 'bytes', label: 'entropy', value: metric(m, ['bytes']), type: 'counter', unit: 'B' }],
});
