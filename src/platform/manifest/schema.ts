// SPDX-License-Identifier: Apache-2.0
/**
 * The platform manifest schema (zod): the one definition of the file format. `avp validate` and
 * `avp run` parse with it; share/schema/avp-platform.schema.json is generated from it
 * (json-schema.ts) so that editors validate manifests as they are typed.
 *
 * Owns: the keys, their types, defaults, value ranges, and the descriptions editors show.
 * Does not own: checks across entries (duplicate names, unknown switches, CIDs, MACs: checks.ts),
 * file-system checks (checks.ts), nor what the values turn into (plan.ts).
 *
 * Shape (YAML):
 *   name: <platform>
 *   switches: [{ name, mtu, uplink: { tap }, isolation, restart }]
 *   buses: [{ name, bitrate, dataBitrate, log, replay: { file, loop, start, ifname }, socketcan, hostSocket, isolation, restart }]
 *   vms:
 *     - name, memory, cpus, console: { log, echo }, can: [{ bus, receive, send, rateLimit, rateBurst }]
 *       watchdog: { timeout, action: reset | poweroff | restart-vm }, balloon: { deflateOnOom, freePageReporting }
 *       boot: { image: builtin, linux, script | command, cmdline, ready } | { kernel, initrd, cmdline, ready }
 *       devices: [{ kind: <a kind of the device registry>, name, ...the kind's fields, isolation, restart }]
 * Every object is strict: an unknown key is an error (a misspelt option must not be ignored).
 */
import { z } from 'zod';
import { DEVICE_KINDS, type DeviceKind } from '../../devices/registry.js';
import { DEFAULT_GUEST_KERNEL, GUEST_KERNELS } from '../image/kernels.js';
import { SIZE_WITH_UNIT_RE } from './units.js';
import { busSchema, canPortSchema } from './buses.js';
import { IFNAME_RE, int, name, path } from './fields.js';

export { NAME_RE } from './fields.js';

/** A MAC address as six colon-separated hex octets (the multicast bit is checked in checks.ts). */
export const MAC_RE = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;

/** The memory a VM gets when the manifest says nothing (MiB). */
export const DEFAULT_VM_MEMORY_MIB = 256;
/** The least memory the built-in guest image boots in (the kernel plus the unpacked initramfs). */
export const BUILTIN_MIN_MEMORY_MIB = 128;
/** The MTU of a switch when the manifest says nothing. */
export const DEFAULT_SWITCH_MTU = 1500;

/**
 * A strict object whose unknown-key error lists the keys it takes (load.ts turns it into one
 * error per unknown key, each at that key's position).
 */
function strictObject<T extends z.core.$ZodLooseShape>(shape: T, what: string, unknownKeyHint = '') {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') return `expected one of: ${keys}${unknownKeyHint}`;
      if (iss.code === 'invalid_type') return `expected ${what} (a mapping)`;
      return undefined;
    },
  });
}

const isolation = z
  .enum(['shared', 'thread', 'process'], { error: "expected 'shared', 'thread' or 'process'" })
  .default('shared')
  .meta({
    description:
      "Where the back-end runs: 'shared' (default) in the one worker thread of `avp run` that serves all shared back-ends (one V8 isolate for all: least memory; they share that thread's time and a crash of it); 'thread' in a worker thread of its own (its own core's worth of time, about 25 MB more); 'process' as a separate `avp serve` process, so that a crash cannot touch the others.",
  });

const restart = z
  .enum(['no', 'on-failure'], { error: "expected 'no' or 'on-failure'" })
  .default('no')
  .meta({
    description:
      "What `avp run` does when the back-end exits unexpectedly: 'no' (default) reports it and stops the VMs that use it; 'on-failure' starts it again on the same socket and QEMU reconnects (for devices whose QEMU front-end can reconnect, and switches).",
  });

const MEMORY_EXPECTED = 'expected MiB as a whole number, or a size with a unit such as 256M or 1G';
const memory = z
  .union([z.number().int().min(1), z.string().regex(SIZE_WITH_UNIT_RE, { error: MEMORY_EXPECTED })], { error: MEMORY_EXPECTED })
  .default(DEFAULT_VM_MEMORY_MIB)
  .meta({ description: `Guest RAM: MiB as a number, or with a unit (256M, 1G). Default ${DEFAULT_VM_MEMORY_MIB}. The built-in image needs at least ${BUILTIN_MIN_MEMORY_MIB} MiB.` });

const ring = z
  .enum(['split', 'packed'], { error: "expected 'split' or 'packed'" })
  .optional()
  .meta({ description: "The virtqueue layout QEMU offers the guest: 'split' (default) or 'packed' (VIRTIO_F_RING_PACKED, QEMU's packed=on; every AVP back-end serves both)." });

const deviceName = () => name('Device name, unique in its VM (default: the kind). Its socket is <runDir>/<vm>/<name>.sock.').optional();

/**
 * The manifest entry of one device kind: `kind`, `name`, the kind's own fields
 * (`kind.manifest.fields`), and `isolation`/`restart` when the device has a back-end of its own.
 */
function deviceEntry(kind: DeviceKind) {
  const own = kind.manifest.ownBackend !== false;
  const restartHint = kind.frontend.reconnect === false ? ` (QEMU's ${kind.frontend.qemuDevice} cannot reconnect: restart is refused for ${kind.name})` : '';
  return strictObject(
    {
      kind: z.literal(kind.name).meta({ description: `${kind.description}.` }),
      name: deviceName(),
      ...kind.manifest.fields,
      ring,
      ...(own ? { isolation, restart: restart.meta({ description: `${restart.meta()?.description ?? ''}${restartHint}` }) } : {}),
    },
    `a ${kind.name} device`,
    own ? '' : ` (a ${kind.name} device is one port of a back-end that serves several VMs, for net its switch: set isolation and restart there)`,
  );
}

/** Device kinds a manifest may name, in documentation order (the device registry's). */
export const MANIFEST_DEVICE_KINDS: readonly string[] = DEVICE_KINDS.map((k) => k.name);
export type ManifestDeviceKind = string;

// Safe: the registry has at least one kind, and each entry is a strict object with a literal `kind`.
const entries = DEVICE_KINDS.map(deviceEntry) as unknown as [ReturnType<typeof deviceEntry>, ...Array<ReturnType<typeof deviceEntry>>];

const device = z
  .discriminatedUnion('kind', entries, {
    error: (iss) =>
      iss.code === 'invalid_union' ? `expected kind to be one of: ${MANIFEST_DEVICE_KINDS.join(', ')}` : iss.code === 'invalid_type' ? 'expected a device (a mapping with kind:)' : undefined,
  })
  .meta({ description: 'A virtio device of the VM, served by an AVP back-end over vhost-user.' }) as unknown as z.ZodType<ManifestDevice, Record<string, unknown>>;

const boot = strictObject(
  {
    image: z
      .literal('builtin', { error: "expected 'builtin' (or give kernel and initrd instead)" })
      .meta({ description: "'builtin': AVP's guest image (Debian kernel and a busybox initramfs with the virtio drivers), built and cached on first use." })
      .optional(),
    linux: z
      // YAML reads `linux: 6.1` and `linux: 6.12` as numbers; they mean the series (checks.ts
      // turns them into the strings).
      .union([z.enum(GUEST_KERNELS), z.literal(6.12), z.literal(6.1)], { error: `expected one of: ${GUEST_KERNELS.join(', ')}` })
      .meta({ description: `Debian kernel of the built-in image: ${GUEST_KERNELS.join(', ')} (default ${DEFAULT_GUEST_KERNEL}; 6.12-rt is PREEMPT_RT; 6.1 lacks the sound, GPIO and I2C drivers).` })
      .optional(),
    script: z
      .string({ error: 'expected a shell script (a string)' })
      .min(1, { error: 'expected a shell script, got an empty string' })
      .meta({ description: 'Shell script the built-in image runs after boot (carried on the kernel command line, so at most about 1400 bytes).' })
      .optional(),
    command: z
      .string({ error: 'expected a shell command (a string)' })
      .meta({ description: 'One shell command (no double quotes or line breaks) the built-in image runs after boot, instead of a script.' })
      .optional(),
    kernel: path('Guest kernel (bzImage), relative to the manifest folder; instead of image: builtin.').optional(),
    initrd: path('Initramfs for `kernel`, relative to the manifest folder.').optional(),
    cmdline: z
      .string({ error: 'expected kernel parameters (a string)' })
      .meta({ description: 'Extra kernel parameters, after console=ttyS0 panic=-1 quiet.' })
      .optional(),
    ready: z
      .string({ error: 'expected a regular expression (a string)' })
      .min(1, { error: 'expected a regular expression, got an empty string' })
      .meta({
        description:
          "Regular expression (JavaScript syntax) of the console line that shows the VM is up; `avp run --headless` ends once every VM printed its line. Default for the built-in image: its 'AVP-GUEST: READY' marker.",
      })
      .optional(),
  },
  'a boot section',
).meta({ description: 'What the VM boots: `image: builtin` (default) with a script or command, or your own `kernel` and `initrd`.' });

const consoleSection = strictObject(
  {
    log: path('File the console is written to, relative to the run directory; default <vm>/console.log.').optional(),
    echo: z.boolean({ error: 'expected true or false' }).default(true).meta({ description: "Print the console on avp run's output, each line prefixed with [vm] (default true)." }),
  },
  'a console section',
);

/** Watchdog timeouts the i6300esb driver accepts (its heartbeat: 1-2046 s; 1 s leaves the feeder no slack). */
export const WATCHDOG_TIMEOUT_RANGE = { min: 2, max: 2046 } as const;
export const DEFAULT_WATCHDOG_TIMEOUT = 30;
export const WATCHDOG_ACTIONS = ['reset', 'poweroff', 'restart-vm'] as const;
export type WatchdogAction = (typeof WATCHDOG_ACTIONS)[number];

const watchdog = strictObject(
  {
    timeout: int(
      WATCHDOG_TIMEOUT_RANGE.min,
      WATCHDOG_TIMEOUT_RANGE.max,
      `Seconds without a keep-alive after which the watchdog fires (default ${DEFAULT_WATCHDOG_TIMEOUT}). The built-in image's feeder writes every timeout/3 s.`,
    ).default(DEFAULT_WATCHDOG_TIMEOUT),
    action: z
      .enum(WATCHDOG_ACTIONS, { error: `expected one of: ${WATCHDOG_ACTIONS.join(', ')}` })
      .default('reset')
      .meta({
        description:
          "What happens when it fires: 'reset' (default) QEMU resets the guest in place (a guest reboot then also resets instead of ending the VM); 'poweroff' QEMU ends and the VM has failed; 'restart-vm' QEMU ends and `avp run` starts the VM again.",
      }),
  },
  'a watchdog section',
).meta({
  description:
    "A watchdog per VM (AVPS): QEMU's i6300esb. The built-in image loads its driver and runs busybox `watchdog` on /dev/watchdog; a hung guest stops feeding it. `avp run` reports each firing (QMP WATCHDOG event).",
});

const balloon = strictObject(
  {
    deflateOnOom: z.boolean({ error: 'expected true or false' }).default(true).meta({ description: 'The guest takes pages back from the balloon before its OOM killer runs (default true).' }),
    freePageReporting: z
      .boolean({ error: 'expected true or false' })
      .default(false)
      .meta({ description: 'The guest reports free pages to QEMU, which discards them (default false).' }),
  },
  'a balloon section',
).meta({
  description:
    'A virtio-balloon device: the platform can reclaim guest memory while the VM runs (`avp balloon RUNDIR VM SIZE`, control method `balloon`).',
});

const vm = strictObject(
  {
    name: name('VM name, unique on the platform; console lines are prefixed with [name].'),
    memory,
    cpus: int(1, 64, 'Virtual CPUs (default 1).').default(1),
    boot: boot.default({ image: 'builtin' }),
    console: consoleSection.default({ echo: true }),
    devices: z.array(device, { error: 'expected a list of devices' }).default([]),
    can: z.array(canPortSchema(strictObject), { error: 'expected a list of CAN bus ports' }).default([]).meta({ description: 'CAN buses this VM joins over slcan on virtio console ports (/dev/hvc0, hvc1, ... in this order).' }),
    watchdog: watchdog.optional(),
    balloon: balloon.optional(),
  },
  'a VM',
);

const switchDef = strictObject(
  {
    name: name('Switch name, unique on the platform; net devices name it in `switch:`.'),
    mtu: int(68, 65535, `Largest frame payload the switch forwards (default ${DEFAULT_SWITCH_MTU}).`).default(DEFAULT_SWITCH_MTU),
    uplink: strictObject(
      { tap: z.string({ error: 'expected an interface name' }).regex(IFNAME_RE, { error: 'expected an interface name of 1-15 letters, digits, _ . or -' }).meta({ description: 'Host tap interface (needs CAP_NET_ADMIN).' }) },
      'an uplink',
    )
      .meta({ description: 'Connects the switch to the host network through a tap interface (optional).' })
      .optional(),
    isolation,
    restart,
  },
  'a switch',
).meta({ description: 'A virtual Ethernet switch (`avp switch`) joining the net devices that name it.' });

/** The platform manifest. */
export const PlatformManifestSchema = strictObject(
  {
    $schema: z.string({ error: 'expected a URL or path (a string)' }).meta({ description: 'JSON Schema of this file (for editors); ignored by avp.' }).optional(),
    version: z.literal(1, { error: 'expected 1 (the only manifest version)' }).default(1).meta({ description: 'Manifest format version (1).' }),
    name: name('Platform name; names the run directory (.avp/runs/<name>-<time>).'),
    switches: z.array(switchDef, { error: 'expected a list of switches' }).default([]),
    buses: z.array(busSchema(strictObject, isolation, restart), { error: 'expected a list of CAN buses' }).default([]),
    vms: z.array(vm, { error: 'expected a list of VMs' }).min(1, { error: 'expected at least one VM' }),
  },
  'a platform manifest',
).meta({ title: 'AVP platform manifest', description: 'VMs, their virtio devices and the switches between them, for `avp run`.' });

/** A manifest as written (defaults not applied). */
export type PlatformManifestInput = z.input<typeof PlatformManifestSchema>;
/** A manifest after parsing: defaults applied, every value in range. */
export type PlatformManifest = z.output<typeof PlatformManifestSchema>;
export type ManifestVm = PlatformManifest['vms'][number];
/**
 * A device entry after parsing. Its kind's fields are checked by the kind's schema; code outside
 * the kind reads them through `kind.manifest` (or, for the platform's cross-VM rules, narrows
 * them with the kind's own type).
 */
export interface ManifestDevice {
  kind: string;
  name?: string | undefined;
  /** Absent for kinds without a back-end of their own (net ports). */
  isolation?: 'shared' | 'thread' | 'process' | undefined;
  restart?: 'no' | 'on-failure' | undefined;
  readonly [field: string]: unknown;
}
export type ManifestSwitch = PlatformManifest['switches'][number];
export type ManifestBusEntry = PlatformManifest['buses'][number];
export type ManifestBoot = ManifestVm['boot'];
