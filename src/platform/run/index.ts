// SPDX-License-Identifier: Apache-2.0
/**
 * `avp run` and `avp qemu-args` from a manifest file: load and check it, find what this build
 * cannot run, get the built-in guest image, lay the run out, and run it. Re-exports the runner.
 *
 * Owns: that composition, so that the CLI only parses arguments and formats output.
 */
import { resolve } from 'node:path';
import { buildGuestImage } from '../image/build.js';
import type { Progress } from '../image/apt.js';
import { loadManifestFile } from '../manifest/load.js';
import { builtinKernels, defaultRunDir, planPlatform, type GuestImageRef, type PlatformPlan } from '../manifest/plan.js';
import type { GuestKernel } from '../image/kernels.js';
import type { PlatformModel } from '../manifest/checks.js';
import { QemuNotInstalledError } from '../errors.js';
import { detectAccel, findQemu, type Accel } from '../qemu.js';
import { probeQemu, type QemuCaps } from '../qemu-caps.js';
import { checkAvailability } from './supervisor.js';

export { AVP_BIN, SHARED_PROCESS_COMMANDS, liveBackendProcessCount, processCreatesSockets, serveArgv, unavailableReason, type BackendHandle, type PortState, type SharedProcessCommand } from './launch.js';
export {
  MIN_BALLOON_TARGET_MIB,
  PlatformRun,
  checkAvailability,
  type BalloonInfo,
  runPlatform,
  type BackendStatus,
  type RunPlatformOptions,
  type RunReporter,
  type RunResult,
  type RunEvent,
  type RunSnapshot,
  type VmStatus,
} from './supervisor.js';
export { formatDuration, renderStatus, summarizeMetrics } from './status.js';
export { CONTROL_PROTOCOL_VERSION, LocalControl, type ControlBackend, type ControlEvent, type ControlSnapshot, type ControlVm, type RunControl } from './control.js';
export { CONTROL_VERBS, checkAction, verdicts, type ActionVerdicts, type ControlRequest, type ControlTarget, type ControlVerb } from './control-rules.js';
export { ControlClient, ControlServer, controlRequestSchema, inputEventSchema, type ControlHello } from './control-socket.js';
export { RunExtensions, type BusInfo, type BusTrace, type DisplayInfo, type InputEvent, type InputSink, type ScreenProvider } from './extensions.js';

/** Stands in for the built-in image when only the back-ends of a plan matter. */
const IMAGE_PLACEHOLDER: GuestImageRef = { kernel: '/built-in-image/vmlinuz', initramfs: '/built-in-image/initramfs.cpio.gz' };

export interface PlanFileOptions {
  /** Default: `.avp/runs/<platform>-<time>` under `cwd`; a function gets the platform name. */
  runDir?: string | ((platform: string) => string);
  /** Default process.cwd(). */
  cwd?: string;
  /** Progress lines of the image build. */
  onProgress?: Progress;
  /** Default: detectAccel() (AVP_ACCEL; tcg when unset). */
  accel?: Accel;
  /** Refuse back-ends this build cannot run (avp run) before building anything. Default false. */
  requireAvailable?: boolean;
  /** For tests: the image to use instead of building the built-in one. */
  image?: GuestImageRef;
  /** The QEMU to plan for; default: probe `$AVP_QEMU` or qemu-system-x86_64 when installed. */
  qemu?: QemuCaps;
}

/**
 * Loads `file` and lays out a run of it, building (or taking from the cache) the built-in guest
 * image when a VM boots it.
 * @throws ManifestReadError, ManifestInvalidError, BackendUnavailableError (with
 *   requireAvailable), PlatformPlanError, and the image build's errors.
 */
export async function planManifestFile(file: string, options: PlanFileOptions = {}): Promise<{ model: PlatformModel; plan: PlatformPlan }> {
  // The QEMU that will run the VMs: its version picks argv quirks, and avp run refuses devices
  // it cannot attach (before building anything). Without QEMU, avp qemu-args still prints.
  const qemu = options.qemu ?? installedQemu(options.requireAvailable === true);
  const frontends = options.requireAvailable === true && qemu !== undefined ? { frontends: { caps: qemu, accel: options.accel ?? declaredAccel() } } : {};
  const { model } = await loadManifestFile(file, frontends);
  const cwd = options.cwd ?? process.cwd();
  const given = typeof options.runDir === 'function' ? options.runDir(model.name) : options.runDir;
  const runDir = resolve(cwd, given ?? defaultRunDir(model.name, cwd, new Date()));
  if (options.requireAvailable === true) checkAvailability(planPlatform(model, { runDir, image: IMAGE_PLACEHOLDER }));
  let image = options.image;
  const images: Partial<Record<GuestKernel, GuestImageRef>> = {};
  if (image === undefined) {
    // One built-in image per kernel series the VMs ask for (boot.linux).
    for (const kernel of builtinKernels(model)) {
      images[kernel] = await buildGuestImage({ kernel, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) });
      image ??= images[kernel];
    }
  }
  const accel = options.accel ?? (await detectAccel(image === undefined ? {} : { probe: { kernel: image.kernel, initrd: image.initramfs } }));
  return { model, plan: planPlatform(model, { runDir, accel, images, ...(image === undefined ? {} : { image }), ...(qemu === undefined ? {} : { qemuVersion: qemu.version }) }) };
}

/** The probed QEMU; undefined when it is not installed, unless `required`. */
function installedQemu(required: boolean): QemuCaps | undefined {
  try {
    return probeQemu(findQemu());
  } catch (e: unknown) {
    if (e instanceof QemuNotInstalledError && !required) return undefined;
    throw e;
  }
}

/**
 * The accelerator for the front-end check, before any probe guest can boot: kvm only when
 * AVP_ACCEL=kvm says so (auto may still fall back to tcg, so it is checked as tcg).
 */
export function declaredAccel(env: NodeJS.ProcessEnv = process.env): Accel {
  return env['AVP_ACCEL'] === 'kvm' ? 'kvm' : 'tcg';
}
