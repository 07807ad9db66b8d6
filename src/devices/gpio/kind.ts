// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpio as a device kind (devices/kind.ts): named lines, their external levels driven by a
 * control socket, a vehicle-signal trace and a script of timed steps; interrupts when the
 * front-end lets the guest negotiate VIRTIO_GPIO_F_IRQ. QEMU's front-end is vhost-user-gpio-pci;
 * the guest driver gpio-virtio is built by the image (Debian leaves GPIO_VIRTIO unset).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorText } from '../../errors.js';
import { defineKind } from '../kind.js';
import { boolField, intField, pathField } from '../options.js';
import { SignalTrace } from '../signal-trace.js';
import { metric } from '../summary.js';
import { gpioConformance } from './conformance.js';
import { GpioControlServer } from './control.js';
import { GpioConfigError } from './errors.js';
import { GPIO_MAX_LINES, buildLines, buildTimeline, parseDriveStep } from './lines.js';
import { GpioDevice } from './model.js';
import { GPIO_DEVICE_ID } from './spec.js';

const options = z.object({
  lines: z
    .array(z.string())
    .meta({ description: "the lines in order, each NAME[:in|:out][=0|1][@SIGNAL] (direction and level at start; the trace signal that drives it, default its name); repeatable or 'door:in,led:out'" })
    .optional(),
  ngpio: intField(1, GPIO_MAX_LINES, 'number of lines; those past the named ones are unnamed inputs (default: the named lines, or 8)').optional(),
  irq: boolField('offer interrupts on lines, VIRTIO_GPIO_F_IRQ (--no-irq: do not)').default(true),
  trace: pathField('vehicle-signal trace (CSV time,signal,value) driving the lines from the guest driver\'s start; a value other than 0 is high').optional(),
  drive: z
    .array(z.string())
    .meta({ description: "a scripted step SECONDS:LINE=0|1 (seconds from the guest driver's start); repeatable or '1:door=1,3:door=0'" })
    .optional(),
  control: pathField("control socket: host programs drive and watch the lines ('list', 'get <line>', 'set <line> 0|1'; JSON lines and events)").optional(),
});

type GpioKindOptions = z.output<typeof options>;

/** @throws GpioConfigError GPIO_BAD_TRACE */
function loadTrace(path: string): SignalTrace {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e: unknown) {
    throw new GpioConfigError('GPIO_BAD_TRACE', `--trace: cannot read ${path}: ${errorText(e)}`, { cause: e });
  }
  try {
    return SignalTrace.parse(text, path);
  } catch (e: unknown) {
    throw new GpioConfigError('GPIO_BAD_TRACE', `--trace: ${errorText(e)}`, { cause: e });
  }
}

/**
 * `['a:in,b:out', 'c']` → `['a:in', 'b:out', 'c']`: list items may hold several (a flag given once
 * with commas, or `toServeFlags` joining a list for a back-end process); no item has a comma.
 */
function items(list: readonly string[] | undefined): string[] {
  return (list ?? []).flatMap((s) => s.split(',')).filter((s) => s.trim() !== '');
}

/** Lines and timeline from the options: the checks `avp validate` runs, and what `create` builds. */
function plan(o: Pick<GpioKindOptions, 'lines' | 'ngpio' | 'drive'>, trace: SignalTrace | undefined) {
  const lines = buildLines(items(o.lines), o.ngpio);
  return { lines, timeline: buildTimeline(lines, trace, items(o.drive).map(parseDriveStep)) };
}

export const gpioKind = defineKind({
  name: 'gpio',
  virtioId: GPIO_DEVICE_ID,
  vhostUserType: 'gpio',
  description: 'virtio-gpio (VIRTIO 1.3 §5.17): named lines with interrupts, driven from the host by a control socket, a signal trace or a script',
  capabilities: ['lines', 'ngpio', 'irq', 'trace', 'drive', 'control'],
  options,
  create: (o, host) => {
    const { lines, timeline } = plan(o, o.trace === undefined ? undefined : loadTrace(o.trace));
    const path = o.control;
    const streams = host.unixStreams;
    if (path !== undefined && streams === undefined) throw new GpioConfigError('GPIO_CONTROL_SOCKET', '--control needs host sockets (the unixStreams host capability)');
    return new GpioDevice({
      lines,
      irq: o.irq,
      timeline,
      // Safe: checked just above that a control path comes with the capability.
      ...(path === undefined ? {} : { control: (handler) => new GpioControlServer(path, streams!, handler) }),
    });
  },
  conformance: gpioConformance,
  conformanceSetups: [
    { label: 'named lines with interrupts', options: { lines: ['door:in', 'led:out', 'ignition:in=1'], ngpio: 4 }, expected: 'conformance.expected.txt' },
    { label: 'without interrupts', options: { lines: ['door:in', 'led:out'], irq: false }, expected: 'conformance.no-irq.expected.txt' },
  ],
  frontend: {
    qemuDevice: 'vhost-user-gpio-pci',
    // vhost-user-gpio handles chardev CLOSED/OPENED (device-wave-2.md §6b), but a reconnect was not measured.
    reconnect: false,
    minQemu: '7.2',
  },
  guestModules: ['gpio-virtio'],
  manifest: {
    fields: {
      lines: options.shape.lines,
      ngpio: options.shape.ngpio,
      irq: options.shape.irq.unwrap().optional(),
      trace: pathField('vehicle-signal trace (CSV time,signal,value), relative to the manifest').optional(),
      drive: options.shape.drive,
      control: pathField('control socket for host programs, relative to the run directory').optional(),
    },
    check(e, add) {
      try {
        plan({ lines: e['lines'] as string[] | undefined, ngpio: e['ngpio'] as number | undefined, drive: e['drive'] as string[] | undefined }, undefined);
      } catch (err: unknown) {
        if (!(err instanceof GpioConfigError)) throw err;
        add([/^--drive/.test(err.message) ? 'drive' : /^--ngpio/.test(err.message) ? 'ngpio' : 'lines'], err.message.replace(/^--[a-z]+: /, ''));
      }
    },
    checkFiles(e, ctx, add) {
      if (typeof e['trace'] === 'string' && !ctx.exists(ctx.resolve(e['trace']))) add(['trace'], `no such file: ${e['trace']}`);
    },
    plan: (e, ctx) => {
      const control = typeof e['control'] === 'string' ? ctx.resolveRunPath(e['control']) : undefined;
      return {
        options: {
          ...(e['lines'] === undefined ? {} : { lines: e['lines'] }),
          ...(e['ngpio'] === undefined ? {} : { ngpio: e['ngpio'] }),
          ...(e['irq'] === undefined ? {} : { irq: e['irq'] }),
          ...(typeof e['trace'] === 'string' ? { trace: ctx.resolveManifestPath(e['trace']) } : {}),
          ...(e['drive'] === undefined ? {} : { drive: e['drive'] }),
          ...(control === undefined ? {} : { control }),
        },
        ...(control === undefined ? {} : { hostSockets: [control] }),
      };
    },
  },
  summarize: (m) => `${metric(m, ['requests'])} req, ${metric(m, ['interrupts'])} irq, ${metric(m, ['levelChanges'])} host chg`,
});
