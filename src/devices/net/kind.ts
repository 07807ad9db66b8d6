// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-net as a device kind (devices/kind.ts): a port of a learning Ethernet switch. One options
 * object per port; ports with the same `switch` share one switch, and switch-wide options (`mtu`,
 * `macAgeing`, `budget`, `uplinkTap`) may be given on any port, where they must agree (group.ts
 * builds them). In a platform manifest a port names a switch of `switches:`, whose back-end serves
 * it: the switch and its ports are the platform's cross-VM part (platform/manifest).
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { enumField, intField, stringField } from '../options.js';
import { metric, metricSum } from '../summary.js';
import { netConformance } from './conformance.js';
import type { OpenUplink } from './host.js';
import { NET_CAPABILITIES, createNetGroup } from './options.js';
import { NET_DEVICE_ID } from './spec.js';

declare module '../kind.js' {
  interface HostCapabilities {
    /** Opens a host TAP device (sys/tap.ts), for a switch's uplink. */
    openTap?: OpenUplink;
  }
}

export const MAC_RE = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;
const MAC_EXPECTED = 'expected a MAC address such as 52:54:00:12:34:56';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_/.+-]{0,63}$/;
/** `BYTES[:PACKETS]` per second, each with an optional k/M/G (×1000) suffix; `-` for no limit. */
const RATE_RE = /^(?:-|\d+(?:\.\d+)?[kKmMgG]?)(?::(?:-|\d+(?:\.\d+)?[kKmMgG]?))?$/;

export const netOptions = z.object({
  switch: stringField(NAME_RE, 'expected a switch name', 'ports with the same switch name share one switch').default('default').meta({ cli: false }),
  name: stringField(NAME_RE, 'expected a port name', 'the port name in logs and metrics').optional(),
  mac: stringField(MAC_RE, MAC_EXPECTED, "the VM's MAC address, served in config space (default 02:00:00:00:00:01)").optional(),
  mtu: intField(68, 65535, 'MTU of the switch; give QEMU host_mtu=N too').optional(),
  rate: stringField(RATE_RE, 'expected BYTES[:PACKETS] per second, such as 125k or 1M:1000', 'ingress limit in bytes/s and optionally frames/s, k/M/G suffixes allowed (default none)').optional(),
  burst: stringField(RATE_RE, 'expected BYTES[:PACKETS], such as 64k:100', 'token bucket sizes (default 10 ms of the rate, at least one frame)').optional(),
  ratePolicy: enumField(['backpressure', 'drop'], "'backpressure' (frames wait in the guest's ring, default) or 'drop'").optional(),
  priority: intField(0, 7, 'forwarding priority of this port, 0 (lowest) to 7, as IEEE 802.1p classes').optional(),
  link: enumField(['up', 'down'], "admin link state, 'up' (default) or 'down'").optional(),
  macAgeing: z.number({ error: 'expected seconds (a positive number)' }).positive({ error: 'expected seconds (a positive number)' }).meta({ description: 'seconds before a learned MAC is forgotten (default 300)' }).optional(),
  budget: intField(1, 65536, 'frames per port per turn (default 64)').optional(),
  uplinkTap: stringField(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name of 1-15 letters, digits, _ . or -', 'bridge to this host TAP interface (created if missing, which needs CAP_NET_ADMIN; bring it up with ip link set NAME up)').optional(),
});

const rateLimit = z
  .strictObject(
    {
      bytesPerSecond: intField(1, Number.MAX_SAFE_INTEGER, 'Largest sustained rate this port may send, in bytes per second.').optional(),
      packetsPerSecond: intField(1, Number.MAX_SAFE_INTEGER, 'Largest sustained rate this port may send, in packets per second.').optional(),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? 'expected one of: bytesPerSecond, packetsPerSecond' : iss.code === 'invalid_type' ? 'expected a rate limit (a mapping)' : undefined) },
  )
  .meta({ description: 'Traffic the switch accepts from this port; excess frames wait (back-pressure).' });

export const netKind = defineKind({
  name: 'net',
  virtioId: NET_DEVICE_ID,
  vhostUserType: 'net',
  description: 'virtio-net (VIRTIO 1.3 §5.1): a port of a learning Ethernet switch with MTU, rate limits, priorities and an optional TAP uplink',
  capabilities: NET_CAPABILITIES,
  options: netOptions,
  // Safe: createNetGroup returns one port per options object.
  create: (o, host) => createNetGroup([o], host)[0]!,
  createGroup: (os, host) => createNetGroup(os, host),
  conformance: netConformance,
  conformanceSetups: [{ label: 'default', options: { mac: '52:54:00:00:00:01', mtu: 9000 }, expected: 'conformance.expected.txt' }],
  frontend: {
    qemuDevice: 'virtio-net-pci',
    netdev: true,
    // The guest's MAC and MTU come from QEMU's mac= and host_mtu= (QEMU emulates the virtio-net
    // config space for vhost-user); romfile= skips the iPXE ROM.
    props: (o) => ({ ...(o.mac === undefined ? {} : { mac: o.mac.toLowerCase() }), ...(o.mtu === undefined ? {} : { host_mtu: o.mtu }), romfile: '' }),
    quirks: [{ below: '8.0', props: { vectors: 0 }, why: 'QEMU 7.2 segfaults in msix_set_vector_notifiers for vhost-user virtio-net under TCG' }],
    reconnect: true,
    minQemu: '7.2',
  },
  guestModules: ['virtio_net'],
  manifest: {
    ownBackend: false,
    fields: {
      switch: z.string({ error: 'expected a switch name' }).meta({ description: 'The switch (under `switches:`) this port is on.' }),
      mac: stringField(MAC_RE, MAC_EXPECTED, 'Unicast MAC address; default: a locally administered address derived from the platform, VM and device names.').optional(),
      mtu: intField(68, 65535, "MTU offered to the guest (VIRTIO_NET_F_MTU); default: the switch's MTU.").optional(),
      rateLimit: rateLimit.optional(),
      priority: intField(0, 7, 'Forwarding priority of this port at the switch: 0 (default, lowest) to 7 (highest), as IEEE 802.1p classes.').default(0),
    },
    check(e, add) {
      const mac = e['mac'];
      if (typeof mac === 'string' && (parseInt(mac.slice(0, 2), 16) & 1) !== 0) {
        add(['mac'], `${mac} is a multicast address (low bit of the first octet set); expected a unicast MAC such as 52:54:00:12:34:56`);
      }
      const rl = e['rateLimit'] as { bytesPerSecond?: number; packetsPerSecond?: number } | undefined; // shape checked by the schema
      if (rl !== undefined && rl.bytesPerSecond === undefined && rl.packetsPerSecond === undefined) add(['rateLimit'], 'expected bytesPerSecond, packetsPerSecond, or both');
    },
    // The platform completes a port's options from its switch (mtu, uplink; platform/manifest/plan.ts).
    plan(e, ctx) {
      const rl = e['rateLimit'] as { bytesPerSecond?: number; packetsPerSecond?: number } | undefined; // shape checked by the schema
      const rate = rl === undefined ? undefined : `${rl.bytesPerSecond ?? '-'}${rl.packetsPerSecond === undefined ? '' : `:${rl.packetsPerSecond}`}`;
      return { options: { switch: e['switch'], name: `${ctx.vm}/${ctx.name}`, mac: e['mac'], priority: e['priority'], ...(rate === undefined ? {} : { rate }) } };
    },
  },
  summarize: (m) => `tx ${metric(m, ['tx', 'frames'])} fr, rx ${metric(m, ['rx', 'frames'])} fr, ${metricSum(m, ['drops'])} dropped`,
  series: (m) => [
    { key: 'txFrames', label: 'tx frames', value: metric(m, ['tx', 'frames']), type: 'counter', unit: 'frames' },
    { key: 'rxFrames', label: 'rx frames', value: metric(m, ['rx', 'frames']), type: 'counter', unit: 'frames' },
    { key: 'drops', label: 'drops', value: metricSum(m, ['drops']), type: 'counter', unit: 'frames' },
  ],
});
