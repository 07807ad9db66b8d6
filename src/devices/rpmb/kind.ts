// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-rpmb as a device kind (devices/kind.ts). RPMB has no QEMU front-end (7.2, 10.0 or
 * upstream: the 2020 vhost-user-rpmb RFC was never merged) and no mainline Linux driver, so it is
 * served (`avp serve rpmb`) and judged by conformance only. `frontend` names the device a QEMU
 * front-end would most likely have, with a minimum version no QEMU has, so `avp validate`/`avp run`
 * refuse it with the version message instead of QEMU failing on an unknown device.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { intField, pathField } from '../options.js';
import { metric } from '../summary.js';
import { rpmbConformance } from './conformance.js';
import { FileRpmbStore } from './host.js';
import { RpmbDevice } from './model.js';
import { RPMB_DEVICE_ID, RPMB_MAX_CAPACITY } from './spec.js';

const options = z.object({
  stateFile: pathField('file holding the key, the write counter and the data (created when missing)'),
  capacity: intField(1, RPMB_MAX_CAPACITY, 'partition size in 128 KiB units').default(1),
  maxWrite: intField(1, 255, 'max_wr_cnt: blocks per authenticated write').default(2),
  maxRead: intField(1, 255, 'max_rd_cnt: blocks per authenticated read').default(16),
});

export const rpmbKind = defineKind({
  name: 'rpmb',
  virtioId: RPMB_DEVICE_ID,
  vhostUserType: 'rpmb',
  description: 'virtio-rpmb (VIRTIO 1.3 §5.19): replay-protected memory block with HMAC-SHA256, state in a file',
  capabilities: ['state-file', 'capacity'],
  options,
  create: (o) => new RpmbDevice({ store: new FileRpmbStore(o.stateFile, o.capacity), capacity: o.capacity, maxWrite: o.maxWrite, maxRead: o.maxRead }),
  conformance: rpmbConformance,
  conformanceSetups: [{ label: 'default', options: { stateFile: '{scratch}/rpmb.state' }, expected: 'conformance.expected.txt' }],
  frontend: {
    // No QEMU has this device: the name is what one would be called, the version is none's.
    qemuDevice: 'vhost-user-rpmb-pci',
    reconnect: false,
    minQemu: null,
  },
  guestModules: [],
  manifest: {
    fields: { stateFile: options.shape.stateFile, capacity: options.shape.capacity.unwrap().optional() },
    plan: (e, ctx) => ({
      options: {
        stateFile: ctx.resolveManifestPath(String(e['stateFile'])),
        ...(e['capacity'] === undefined ? {} : { capacity: e['capacity'] }),
      },
    }),
  },
  summarize: (m) => `${metric(m, ['writes'])} wr, ${metric(m, ['reads'])} rd, ${metric(m, ['authFailures']) + metric(m, ['counterFailures'])} refused`,
});
