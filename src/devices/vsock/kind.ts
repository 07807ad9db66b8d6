// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-vsock as a device kind (devices/kind.ts): hybrid vsock to host Unix sockets, and
 * guest-to-guest traffic between the devices of one back-end (a group) where both allow-lists
 * agree. `avp serve vsock --vm ...` serves several VMs from one process (splitPorts). In a
 * platform manifest, peers are named by VM and CIDs must be unique: those cross-VM rules, and the
 * grouping of peers into one back-end, are the platform's (platform/manifest).
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { intField, pathField } from '../options.js';
import { metric } from '../summary.js';
import { vsockConformance } from './conformance.js';
import type { UnixStreamOps } from './host.js';
import { VSOCK_CAPABILITIES, createVsockGroup, splitVsockPorts } from './options.js';
import { VSOCK_DEVICE_ID, VSOCK_MAX_GUEST_CID, VSOCK_MIN_GUEST_CID } from './spec.js';

declare module '../kind.js' {
  interface HostCapabilities {
    /** Non-blocking AF_UNIX stream sockets (vsock's hybrid host side). */
    unixStreams?: UnixStreamOps;
  }
}

const CID_EXPECTED = `expected a context ID from ${VSOCK_MIN_GUEST_CID} to ${VSOCK_MAX_GUEST_CID} (0-2 are reserved: hypervisor, local, host; 0xffffffff is VMADDR_CID_ANY)`;
const cid = (description: string) =>
  z.number({ error: CID_EXPECTED }).int({ error: CID_EXPECTED }).min(VSOCK_MIN_GUEST_CID, { error: CID_EXPECTED }).max(VSOCK_MAX_GUEST_CID, { error: CID_EXPECTED }).meta({ description });

const options = z.object({
  guestCid: cid("the guest's CID, 3 or more (QEMU reads it from the config space; required unless --vm names every VM)").optional(),
  udsPath: pathField('hybrid vsock: host clients connect here and send "CONNECT <port>"; guest connections to host port X go to <path>_X').optional(),
  allowPeer: z.array(cid('a guest CID')).meta({ description: 'another guest of this process this guest may reach (both sides must allow); repeatable, or "4,5"' }).optional(),
  vm: z
    .array(z.string())
    .meta({ description: "serve another VM from this process: 'socket=PATH,cid=N[,uds=PATH][,allow=CID+CID]'; repeatable" })
    .optional(),
  connBuffer: intField(4096, 64 << 20, 'buf_alloc advertised per host connection').default(256 * 1024),
  maxConnections: intField(1, 65536, 'connections per guest, at most').default(1024),
});

export const vsockKind = defineKind({
  name: 'vsock',
  virtioId: VSOCK_DEVICE_ID,
  vhostUserType: 'vsock',
  description: 'virtio-vsock (VIRTIO 1.3 §5.10): guest sockets to host Unix sockets (hybrid vsock) and to other guests of the group',
  capabilities: VSOCK_CAPABILITIES,
  options,
  // Safe: createVsockGroup returns one device per options object.
  create: (o, host) => createVsockGroup([o], host.unixStreams)[0]!,
  createGroup: (os, host) => createVsockGroup(os, host.unixStreams),
  splitPorts: (o) => splitVsockPorts(o),
  conformance: vsockConformance,
  conformanceSetups: [{ label: 'one guest, hybrid vsock to a socket nobody listens on', options: { guestCid: 3, udsPath: '{scratch}/v.sock' }, expected: 'conformance.expected.txt' }],
  frontend: {
    // QEMU 7.2's vhost-user-vsock-pci has no guest-cid property: the guest reads the CID from the
    // config space the back-end serves.
    qemuDevice: 'vhost-user-vsock-pci',
    // QEMU 7.2 talks to a reconnecting chardev before it has connected ("Failed to set msg fds");
    // still so on 10.0.2 (docs/reliability.md, issue #16).
    reconnect: false,
    minQemu: '7.2',
  },
  guestModules: ['vsock', 'vmw_vsock_virtio_transport_common', 'vmw_vsock_virtio_transport'],
  manifest: {
    fields: {
      cid: cid("The guest's context ID, unique on the platform: 3 to 4294967294 (0-2 are reserved: hypervisor, local, host; 0xffffffff is VMADDR_CID_ANY)."),
      socket: pathField('Host-side Unix socket where host programs reach this guest (relative to the run directory); default <runDir>/<vm>/<name>.vsock.').optional(),
      allowedPeers: z
        .array(z.string({ error: 'expected a VM name' }), { error: 'expected a list of VM names' })
        .default([])
        .meta({ description: 'VMs (by name) whose vsock devices this guest may connect to and accept connections from. Default: none (host only).' }),
    },
    // The platform adds `allowPeer` (the peers' CIDs) and groups peers into one back-end.
    plan(e, ctx) {
      const host = typeof e['socket'] === 'string' ? ctx.resolveRunPath(e['socket']) : `${ctx.vmDir}/${ctx.name}.vsock`;
      return { options: { guestCid: e['cid'], udsPath: host }, hostSockets: [host] };
    },
  },
  summarize: (m) => `tx ${metric(m, ['packets', 'tx'])} pkts, rx ${metric(m, ['packets', 'rx'])} pkts`,
  series: (m) => [
    { key: 'open', label: 'open connections', value: metric(m, ['connections', 'open']), type: 'gauge', unit: 'conn' },
    { key: 'connections', label: 'new connections', value: metric(m, ['connections', 'total']), type: 'counter', unit: 'conn' },
    { key: 'packets', label: 'packets', value: metric(m, ['packets', 'tx']) + metric(m, ['packets', 'rx']), type: 'counter', unit: 'pkts' },
  ],
});
