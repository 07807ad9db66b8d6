// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-console as a device kind (devices/kind.ts): multiport with named ports, port 0 the
 * console, each port's output appended to a host log file. No QEMU has a vhost-user front-end for
 * virtio-console (device-wave-2.md §8b), so `avp validate`/`avp run` refuse it while `avp serve
 * console` and `avp conformance --device console` work.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { pathField } from '../options.js';
import { metric } from '../summary.js';
import { consoleConformance } from './conformance.js';
import { ConsoleConfigError } from './errors.js';
import { DiscardPortHost, LogFilePortHost } from './host.js';
import { ConsoleDevice, type ConsolePort } from './model.js';
import { CONSOLE_DEVICE_ID, CONSOLE_MAX_PORTS } from './spec.js';

const PORT_RE = /^([A-Za-z0-9._-]{1,64})=(.+)$/;

const options = z.object({
  log: pathField('file the console (port 0, hvc0) output is appended to; default: discarded').optional(),
  port: z
    .array(z.string())
    .meta({ description: `a named port 1, 2, ... as NAME=LOGFILE (the guest's /sys/class/virtio-ports/*/name); repeatable, at most ${CONSOLE_MAX_PORTS - 1}` })
    .optional(),
});

/** @throws ConsoleConfigError CONSOLE_BAD_OPTION naming the bad --port */
function ports(o: { log?: string | undefined; port?: string[] | undefined }): ConsolePort[] {
  const extra = (o.port ?? []).map((s): ConsolePort => {
    const m = PORT_RE.exec(s);
    if (m === null) throw new ConsoleConfigError('CONSOLE_BAD_OPTION', `--port: expected NAME=LOGFILE (name of letters, digits, '.', '_', '-'), got '${s}'`);
    // Safe: both groups take part in every match.
    return { name: m[1]!, host: new LogFilePortHost(m[2]!) };
  });
  return [{ name: 'console', host: o.log === undefined ? new DiscardPortHost() : new LogFilePortHost(o.log) }, ...extra];
}

export const consoleKind = defineKind({
  name: 'console',
  virtioId: CONSOLE_DEVICE_ID,
  vhostUserType: 'console',
  description: 'virtio-console (VIRTIO 1.3 §5.3): multiport with named ports and emergency write, each port to a host log file',
  capabilities: ['log', 'port'],
  options,
  create: (o) => new ConsoleDevice({ ports: ports(o) }),
  conformance: consoleConformance,
  conformanceSetups: [{ label: 'console to a log file', options: { log: '{scratch}/console.log' }, expected: 'conformance.expected.txt' }],
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
