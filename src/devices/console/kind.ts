// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-console as a device kind (devices/kind.ts): multiport with named ports, port 0 the
 * console, each port bound to a host log file (its output appended) or to a host Unix socket (a
 * host program is the port's other end, both ways). No QEMU has a vhost-user front-end for
 * virtio-console (device-wave-2.md §8b), so `avp validate`/`avp run` refuse it while `avp serve
 * console` and `avp conformance --device console` work.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { pathField } from '../options.js';
import { metric } from '../summary.js';
import { consoleConformance } from './conformance.js';
import { ConsoleConfigError } from './errors.js';
import { DiscardPortHost, LogFilePortHost, type PortHost } from './host.js';
import { ConsoleDevice, type ConsolePort } from './model.js';
import { SocketPortHost } from './socket-host.js';
import type { UnixStreamOps } from '../vsock/host.js';
import { CONSOLE_DEVICE_ID, CONSOLE_MAX_PORTS } from './spec.js';

const PORT_RE = /^([A-Za-z0-9._-]{1,64})=(.+)$/;

/** A port's host end written as `socket:PATH` is a Unix socket; anything else is a log file. */
const SOCKET_PREFIX = 'socket:';

const options = z.object({
  log: pathField('file the console (port 0, hvc0) output is appended to; default: discarded').optional(),
  socket: pathField('Unix socket the console (port 0) is bound to instead: one host program at a time reads and writes it').optional(),
  port: z
    .array(z.string())
    .meta({ description: `a named port 1, 2, ... as NAME=LOGFILE or NAME=socket:PATH (the guest's /sys/class/virtio-ports/*/name); repeatable, at most ${CONSOLE_MAX_PORTS - 1}` })
    .optional(),
});

/** @throws ConsoleConfigError CONSOLE_BAD_OPTION naming the bad option */
function ports(o: { log?: string | undefined; socket?: string | undefined; port?: string[] | undefined }, streams: UnixStreamOps | undefined): ConsolePort[] {
  const socketHost = (path: string, flag: string): PortHost => {
    if (streams === undefined) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', `${flag}: a port on a Unix socket needs Unix sockets, which this host does not provide`);
    return new SocketPortHost(path, streams);
  };
  if (o.log !== undefined && o.socket !== undefined) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', '--log and --socket both bind the console (port 0); give one');
  const extra = (o.port ?? []).map((s): ConsolePort => {
    const m = PORT_RE.exec(s);
    if (m === null) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', `--port: expected NAME=LOGFILE or NAME=socket:PATH (name of letters, digits, '.', '_', '-'), got '${s}'`);
    // Safe: both groups take part in every match.
    const [name, target] = [m[1]!, m[2]!];
    if (!target.startsWith(SOCKET_PREFIX)) return { name, host: new LogFilePortHost(target) };
    if (target.length === SOCKET_PREFIX.length) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', `--port '${s}': socket: needs a path`);
    return { name, host: socketHost(target.slice(SOCKET_PREFIX.length), `--port '${s}'`) };
  });
  let console0: PortHost;
  if (o.socket !== undefined) console0 = socketHost(o.socket, '--socket');
  else console0 = o.log === undefined ? new DiscardPortHost() : new LogFilePortHost(o.log);
  return [{ name: 'console', host: console0 }, ...extra];
}

export const consoleKind = defineKind({
  name: 'console',
  virtioId: CONSOLE_DEVICE_ID,
  vhostUserType: 'console',
  description: 'virtio-console (VIRTIO 1.3 §5.3): multiport with named ports and emergency write, each port to a host log file or Unix socket',
  capabilities: ['log', 'socket', 'port'],
  options,
  create: (o, host) => new ConsoleDevice({ ports: ports(o, host.unixStreams) }),
  conformance: consoleConformance,
  conformanceSetups: [
    { label: 'console to a log file', options: { log: '{scratch}/console.log' }, expected: 'conformance.expected.txt' },
    { label: 'console and a named port on Unix sockets', options: { socket: '{scratch}/console.sock', port: ['org.avp.data=socket:{scratch}/data.sock'] }, expected: 'conformance.expected.txt' },
  ],
  frontend: {
    // No QEMU has a vhost-user front-end for virtio-console (QEMU 10.0 has none; upstream's
    // generic vhost-user-test-device-pci is not in 10.0). minQemu null makes avp validate/run
    // refuse the device with a clear message; avp serve and avp conformance work.
    qemuDevice: 'vhost-user-console-pci',
    reconnect: false,
    minQemu: null,
  },
  guestModules: ['virtio_console'],
  manifest: {
    fields: { log: pathField('Console output file (relative to the run directory).').optional() },
    plan: (e, ctx) => ({ options: typeof e['log'] === 'string' ? { log: ctx.resolveRunPath(e['log']) } : {} }),
  },
  summarize: (m) => `${metric(m, ['control', 'in'])} ctl in, ${metric(m, ['control', 'out'])} out, ${metric(m, ['emergencyBytes'])} emerg`,
});
