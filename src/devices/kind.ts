// SPDX-License-Identifier: Apache-2.0
/**
 * What a device kind is: everything the rest of AVP needs to know about one device, as data, so
 * that a new device is its folder (with a `kind.ts`) plus one line in `registry.ts`.
 *
 * Owns: the `DeviceKind` contract — name and VIRTIO id; one zod options schema from which the
 * `avp serve <name>` flags, the manifest fields, the JSON Schema and the defaults are derived; the
 * model factory; the conformance checks and their expected verdicts; how a QEMU front-end attaches
 * the device; the guest modules the device needs; the status summary. Also `HostCapabilities`,
 * the host resources only lower layers (sys/) can provide, which the composition root
 * (platform/backend-worker.ts) injects: a kind that needs a new one declares it from its own
 * folder by interface merging (see devices/net/kind.ts).
 * Does not own: any device's semantics, the CLI (cli/ derives flags with options.ts), manifests
 * (platform/ derives the device union), QEMU option syntax (platform/qemu-args.ts), cross-VM
 * rules (CIDs, peers, switches: platform/manifest).
 */
import type { z } from 'zod';
import type { VirtioDevice } from '../device/contract.js';
import type { DeviceConformance } from '../device/conformance.js';

/**
 * Host resources a device may need that only lower layers can provide, injected by the caller.
 * Empty here on purpose: each kind adds the fields it needs from its own `kind.ts`
 * (`declare module '../kind.js' { interface HostCapabilities { ... } }`), all optional.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- augmented by each kind
export interface HostCapabilities {}

/** A device to build: its kind's name and its options (plain, structured-cloneable data). */
export interface DeviceSpec {
  kind: string;
  options: Record<string, unknown>;
}

/** One option as the CLI and `--print-capabilities` see it. */
export type OptionsSchema = z.ZodObject;

/**
 * How QEMU attaches the device. qemu-args.ts turns it into `-chardev socket,...` and
 * `-device <qemuDevice>,chardev=...,<props>` (plus `-netdev vhost-user` when `netdev`, or
 * `-object <type>,chardev=...` when `object`).
 */
export interface FrontendAttachment<O> {
  /** QEMU's `-device` name, e.g. `vhost-user-rng-pci`. */
  readonly qemuDevice: string;
  /**
   * QEMU device properties from the device's options, e.g. `{ 'num-queues': 2 }`. Values must not
   * need quoting beyond QEMU's `,,` escape (qemu-args.ts applies it).
   */
  props?(options: O): Readonly<Record<string, string | number>>;
  /**
   * The device joins QEMU through `-netdev vhost-user,chardev=...` and `-device <qemuDevice>,netdev=...`
   * (virtio-net) instead of `chardev=` on the device.
   */
  readonly netdev?: boolean;
  /**
   * The vhost-user back-end is a QEMU object that the device names: `-object <type>,id=...,chardev=...`
   * and `-device <qemuDevice>,<deviceProp>=<the object's id>` instead of `chardev=` on the device
   * (virtio-crypto: `cryptodev-vhost-user` and `cryptodev=`).
   */
  readonly object?: { readonly type: string; readonly deviceProp: string };
  /**
   * Whether QEMU's front-end reconnects to a restarted back-end (chardev `reconnect=`), so
   * `restart: on-failure` can be offered. Measured per QEMU version: `true`, `false`, or the
   * oldest version that can.
   */
  readonly reconnect: boolean | string;
  /**
   * The oldest QEMU (x.y) whose front-end serves this device under TCG; null when no QEMU release
   * has the front-end (the back-end is for other VMMs, and `avp conformance` checks it): `avp run`
   * and `avp validate` refuse such a device with that reason, and `avp doctor` says so.
   */
  readonly minQemu: string | null;
  /** Properties QEMU needs for this device only before a version (`{ below: '8.0', props }`). */
  readonly quirks?: ReadonlyArray<{ readonly below: string; readonly props: Readonly<Record<string, string | number>>; readonly why: string }>;
}

/** Where a path in the manifest is relative to. */
export interface ManifestPlanContext {
  /** `vms[i].devices[j]`, for messages. */
  readonly path: string;
  /** The VM's name and the device's name (its kind when the manifest gives none). */
  readonly vm: string;
  readonly name: string;
  /** The VM's folder in the run directory (`<runDir>/<vm>`). */
  readonly vmDir: string;
  /** A manifest path → absolute (relative to the manifest's folder). */
  resolveManifestPath(p: string): string;
  /** A path relative to the run directory → absolute. */
  resolveRunPath(p: string): string;
}

/** What a manifest device becomes in a run. */
export interface ManifestDevicePlan {
  /** The back-end's device options (keys of the kind's options schema). */
  readonly options: Record<string, unknown>;
  /** Sparse files to create before the back-end starts, when they do not exist. */
  readonly files?: ReadonlyArray<{ readonly path: string; readonly sizeBytes: number }>;
  /** Unix sockets the back-end creates, for `avp run` to remove at the end. */
  readonly hostSockets?: readonly string[];
}

/** Adds a manifest issue at a path relative to the device (`['size']`), or at the device (`[]`). */
export type AddIssue = (path: ReadonlyArray<string | number>, message: string, at?: 'key') => void;

/**
 * The device in a platform manifest. The entry is `{ kind, name?, ...fields, isolation?, restart? }`;
 * `kind`, `name`, `isolation` and `restart` are the platform's, the rest is the kind's.
 */
export interface ManifestBinding {
  /**
   * The manifest fields besides kind and name: usually fields of the options schema (the same zod
   * definitions, so bounds and descriptions cannot disagree), plus manifest-only ones.
   */
  readonly fields: z.ZodRawShape;
  /** False for devices served by a shared back-end (net ports: their switch). Default true. */
  readonly ownBackend?: boolean;
  /** Rules within one entry the schema cannot express. */
  check?(entry: Readonly<Record<string, unknown>>, add: AddIssue): void;
  /** Rules that look at files (the manifest's folder resolves relative paths). */
  checkFiles?(entry: Readonly<Record<string, unknown>>, ctx: { resolve(p: string): string; exists(p: string): boolean }, add: AddIssue): void;
  /** The back-end options for an entry (cross-VM parts, such as vsock peers, are the platform's). */
  plan(entry: Readonly<Record<string, unknown>>, ctx: ManifestPlanContext): ManifestDevicePlan;
}

/** One conformance run of this kind over vhost-user: options for `avp serve` and its expected file. */
export interface ConformanceSetup {
  /** Short label: `default`, `read-only`. */
  readonly label: string;
  /**
   * `avp serve` options; the string `{scratch}` inside a value (or a list item) is replaced by a fresh temporary
   * folder of the test, where `files` are created first (name → size in bytes, filled with 0x3c).
   */
  readonly options: Readonly<Record<string, unknown>>;
  readonly files?: Readonly<Record<string, number>>;
  /** Expected-verdict file in the kind's folder (`conformance.expected.txt`). */
  readonly expected: string;
}

/** One number from a device's metrics, for a live chart on the dashboard (`avp run --ui`). */
export interface MetricSeries {
  /** Stable within the device: `iops`, `txFrames`. */
  readonly key: string;
  /** Short, for the chart's title: `IOPS`, `tx frames`. */
  readonly label: string;
  readonly value: number;
  /** `counter`: only grows, and the chart shows its rate per second; `gauge`: the chart shows the value. */
  readonly type: 'counter' | 'gauge';
  /** What the value counts (`req`, `B`, `frames`); a counter's chart is in `<unit>/s`. */
  readonly unit: string;
}

/**
 * What a running device of a kind offers the dashboard (`avp run --ui`; platform/run/device-views.ts),
 * all through its control socket, so the platform needs no kind's name: screens it takes pictures
 * of (`screenshot N` requests), a pointer it takes touches on (`down X,Y`, `move X,Y`, `up` input
 * steps), keys (`press KEY_..`, `release KEY_..`).
 */
export interface HostView {
  /** The control socket that takes the requests. */
  readonly controlSocket: string;
  /** One per scanout: its size, and where the back-end saves its pictures (its last frame too). */
  readonly displays?: ReadonlyArray<{ readonly scanout: number; readonly width: number; readonly height: number; readonly lastFrame?: string }>;
  /** A touch screen or tablet whose axes span `width` × `height`. */
  readonly pointer?: { readonly width: number; readonly height: number };
  /** It takes key steps (a keyboard, buttons). */
  readonly keys?: boolean;
}

export interface DeviceKind<O extends Record<string, unknown> = Record<string, unknown>> {
  /** `avp serve <name>`, manifest `kind: <name>`, `bin/avp-vhost-user-<name>.js`. */
  readonly name: string;
  /** The VIRTIO device ID (VIRTIO 1.3 §5). */
  readonly virtioId: number;
  /** `type` in QEMU's vhost-user JSON descriptors (docs/interop/vhost-user.json). */
  readonly vhostUserType: string;
  /** One line for `--help` and descriptors. */
  readonly description: string;
  /** Option names reported by `--print-capabilities`. */
  readonly capabilities: readonly string[];
  /**
   * The device's options: each key is a camelCase option (`numQueues` → `--num-queues`). Fields
   * carry `.meta({ description })`; booleans defaulting to true become `--no-<flag>`; arrays
   * accept repeated flags or comma-separated values. Fields with `meta({ cli: false })` are not
   * flags (set only by the platform).
   */
  readonly options: OptionsSchema;
  /** Builds the device from parsed options. @throws an AvpError naming the option at fault. */
  create(options: O, host: HostCapabilities): VirtioDevice;
  /** Builds several devices of this kind that share state (the ports of one switch). */
  createGroup?(options: readonly O[], host: HostCapabilities): VirtioDevice[];
  /**
   * For kinds one `avp serve` process can serve to several front-ends (vsock's `--vm`): splits the
   * command-line options into the main port's options (undefined when only extra ports are named)
   * and extra ports with their own socket paths. Absent: one port.
   */
  splitPorts?(options: Record<string, unknown>): {
    main: Record<string, unknown> | undefined;
    extra: Array<{ name: string; socketPath: string; options: Record<string, unknown> }>;
  };
  readonly conformance: DeviceConformance;
  /** vhost-user conformance runs of our back-end (each with its expected-verdict file). */
  readonly conformanceSetups: readonly ConformanceSetup[];
  readonly frontend: FrontendAttachment<O>;
  /** Guest kernel modules the device's Linux driver needs (dependencies are resolved at image build). */
  readonly guestModules: readonly string[];
  readonly manifest: ManifestBinding;
  /** A few counters from the device's metrics JSON for the status board (`12 req, 768 B`). */
  summarize(metrics: Readonly<Record<string, unknown>>): string;
  /**
   * The few numbers of the device's metrics worth a live chart on the dashboard (IOPS, frames,
   * open connections). Absent: the dashboard charts none, and still lists every counter.
   */
  series?(metrics: Readonly<Record<string, unknown>>): MetricSeries[];
  /** What a device with these options offers the dashboard; absent or undefined: nothing. */
  hostView?(options: O): HostView | undefined;
}

/**
 * Declares a kind with its options type inferred from its schema (so `create` gets typed,
 * parsed options). Identity at run time.
 */
export function defineKind<S extends OptionsSchema>(kind: DeviceKind<z.output<S>> & { readonly options: S }): DeviceKind {
  // Safe: the registry parses options with kind.options before calling create/createGroup/props,
  // so they always receive z.output<S>.
  return kind as unknown as DeviceKind;
}
