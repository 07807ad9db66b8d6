// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can as a device kind (devices/kind.ts): one CAN controller, classic and CAN FD frames,
 * remote frames, on an AVP CAN bus (`--bus-socket`: a node socket of `avp canbus`; in a manifest,
 * `bus: <name>` and the platform wires the socket) or on a bus of its own (acknowledges and drops,
 * or echoes with `--loopback`). `--bus-off-after N` is a fault for tests of bus-off handling.
 *
 * No QEMU has a vhost-user front-end for virtio-can and Linux 6.12 has no driver
 * (device-wave-2.md §10), so `avp run` refuses it (minQemu null) while `avp serve can` and
 * `avp conformance --device can` work.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { boolField, intField, pathField, stringField } from '../options.js';
import { metric } from '../summary.js';
import { BusSocketLink } from './bus-link.js';
import { canConformance } from './conformance.js';
import { CanConfigError } from './errors.js';
import { StandaloneLink } from './host.js';
import { CanDevice } from './model.js';
import { CAN_DEVICE_ID } from './spec.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

const options = z.object({
  busSocket: pathField('join an AVP CAN bus through this node socket (avp canbus --node socket=PATH); default: a bus of its own').optional(),
  loopback: boolField('without --bus-socket: frames sent come back on the receive queue (a controller loopback mode)').default(false),
  fd: boolField('offer CAN FD frames (VIRTIO_CAN_F_CAN_FD)').default(true),
  rtr: boolField('offer remote frames (VIRTIO_CAN_F_RTR_FRAMES)').default(true),
  busOffAfter: intField(1, 1_000_000, 'fault for tests: the N-th frame after each START drives the controller bus-off (own bus only)').optional(),
});

export const canKind = defineKind({
  name: 'can',
  virtioId: CAN_DEVICE_ID,
  vhostUserType: 'can',
  description: 'virtio-can (VIRTIO 1.4): a CAN controller with classic, FD and remote frames on an AVP CAN bus',
  capabilities: ['bus-socket', 'loopback', 'fd', 'rtr', 'bus-off-after'],
  options,
  create: (o, host) => {
    if (o.busSocket !== undefined) {
      if (o.loopback || o.busOffAfter !== undefined) throw new CanConfigError('CAN_DEVICE_BAD_OPTION', '--loopback and --bus-off-after are for a bus of its own; they do not go with --bus-socket');
      if (host.unixStreams === undefined) throw new CanConfigError('CAN_DEVICE_BAD_OPTION', '--bus-socket needs Unix sockets, which this host does not provide');
      return new CanDevice({ link: new BusSocketLink(o.busSocket, host.unixStreams), fd: o.fd, rtr: o.rtr });
    }
    return new CanDevice({ link: new StandaloneLink({ loopback: o.loopback, ...(o.busOffAfter === undefined ? {} : { busOffAfter: o.busOffAfter }) }), fd: o.fd, rtr: o.rtr });
  },
  conformance: canConformance,
  conformanceSetups: [
    { label: 'loopback', options: { loopback: true }, expected: 'conformance.expected.txt' },
    { label: 'bus-off after 3 frames', options: { loopback: true, busOffAfter: 3 }, expected: 'conformance.bus-off.expected.txt' },
  ],
  frontend: {
    // No QEMU has a vhost-user front-end for virtio-can (upstream's generic
    // vhost-user-test-device-pci came after 10.0). The impossible version makes avp validate/run
    // refuse it with a clear message; guests join the AVP CAN bus over slcan instead (vms[].can).
    qemuDevice: 'vhost-user-can-pci',
    reconnect: false,
    minQemu: null,
  },
  // No mainline Linux driver before 7.x (drivers/net/can/virtio_can.c).
  guestModules: [],
  manifest: {
    fields: {
      bus: stringField(NAME_RE, 'expected a bus name (under buses:)', 'The CAN bus (a name under buses:) the controller joins.').optional(),
      fd: options.shape.fd.unwrap().optional(),
      rtr: options.shape.rtr.unwrap().optional(),
    },
    plan: (e) => ({ options: { ...(typeof e['fd'] === 'boolean' ? { fd: e['fd'] } : {}), ...(typeof e['rtr'] === 'boolean' ? { rtr: e['rtr'] } : {}) } }),
  },
  summarize: (m) => `${metric(m, ['txOk'])} tx, ${metric(m, ['rxFrames'])} rx, ${m['busOff'] === true ? 'bus-off' : m['started'] === true ? 'started' : 'stopped'}`,
});
