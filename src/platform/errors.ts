// SPDX-License-Identifier: Apache-2.0
/**
 * Platform-layer errors: the guest image build and the QEMU process harness.
 *
 * Owns: one class per failure a caller may want to tell apart, each with a stable `code`.
 * Does not own: errors of the layers below (memory, queue, vhost-user…), nor CLI formatting
 * (the CLI prints `message` and exits 1; the messages are written to stand alone for that).
 */
import { AvpError } from '../errors.js';

/** What to do about a missing system package: the set-up script installs all of them. */
const SETUP_HINT = "run `bash scripts/setup.sh` as root to install AVP's system packages";

/** A VM spec field (memory, CPUs, a device, the kernel command line…) has an unusable value. */
export class VmSpecError extends AvpError {
  readonly code = 'VM_SPEC_INVALID';
  /** The spec field at fault, as a dotted path such as `devices[2].mac`. */
  readonly field: string;

  constructor(field: string, expected: string, got: unknown) {
    super(`VM spec field '${field}' ${expected}; got ${describe(got)}`);
    this.field = field;
  }
}

/** `AVP_ACCEL` (or an accel option) names an accelerator AVP does not know. */
export class AccelError extends AvpError {
  readonly code = 'ACCEL_INVALID';

  constructor(value: string) {
    super(`AVP_ACCEL must be 'tcg', 'kvm' or 'auto'; got ${JSON.stringify(value)}`);
  }
}

/** A host program the image build runs (apt-get, dpkg-deb, depmod, xz…) is not installed. */
export class HostToolMissingError extends AvpError {
  readonly code = 'HOST_TOOL_MISSING';
  readonly tool: string;

  constructor(tool: string, debianPackage: string, options?: { cause?: unknown }) {
    super(`${tool} is not installed (Debian package ${debianPackage}); ${SETUP_HINT}`, options);
    this.tool = tool;
  }
}

/** The QEMU binary is not installed (or `$AVP_QEMU` names no executable). */
export class QemuNotInstalledError extends AvpError {
  readonly code = 'QEMU_NOT_INSTALLED';
  readonly binary: string;

  constructor(binary: string, options?: { cause?: unknown }) {
    super(`QEMU (${binary}, Debian package qemu-system-x86) is not installed; ${SETUP_HINT}`, options);
    this.binary = binary;
  }
}

/** The QEMU binary did not run or did not say its version (`-version`, `-device help`). */
export class QemuProbeError extends AvpError {
  readonly code = 'QEMU_PROBE_FAILED';
  readonly binary: string;

  constructor(binary: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot tell what QEMU ${binary} supports: ${reason}`, options);
    this.binary = binary;
  }
}

/** A host program the image build runs exited non-zero or could not be started. */
export class HostToolFailedError extends AvpError {
  readonly code = 'HOST_TOOL_FAILED';
  readonly tool: string;
  readonly stderr: string;

  constructor(tool: string, args: readonly string[], detail: string, stderr: string, options?: { cause?: unknown }) {
    const tail = lastLines(stderr, 10);
    super(`${tool} ${args.join(' ')} failed: ${detail}${tail ? `\n${tail}` : ''}`, options);
    this.tool = tool;
    this.stderr = stderr;
  }
}

/** The guest image could not be built (kernel package, modules, or packing). */
export class ImageBuildError extends AvpError {
  readonly code = 'IMAGE_BUILD_FAILED';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A kernel module asked for is neither a loadable module nor built into the kernel. */
export class KernelModuleError extends AvpError {
  readonly code: 'KERNEL_MODULE_NOT_FOUND' | 'KERNEL_MODULE_DEPENDENCY_CYCLE';
  readonly module: string;

  private constructor(code: KernelModuleError['code'], module: string, message: string) {
    super(message);
    this.code = code;
    this.module = module;
  }

  static notFound(module: string, kernelVersion: string): KernelModuleError {
    return new KernelModuleError(
      'KERNEL_MODULE_NOT_FOUND',
      module,
      `kernel module '${module}' is neither in modules.dep nor in modules.builtin of kernel ${kernelVersion}`,
    );
  }

  static cycle(path: readonly string[]): KernelModuleError {
    return new KernelModuleError(
      'KERNEL_MODULE_DEPENDENCY_CYCLE',
      path[0] ?? '',
      `modules.dep has a dependency cycle: ${path.join(' -> ')}`,
    );
  }
}

/** The guest kernel command line would exceed what the kernel accepts (x86: 2047 bytes). */
export class GuestCmdlineTooLongError extends AvpError {
  readonly code = 'GUEST_CMDLINE_TOO_LONG';
  readonly length: number;
  readonly limit: number;

  constructor(length: number, limit: number, hint: string) {
    super(
      `guest kernel command line is ${length} bytes, over the kernel's limit of ${limit}` +
        ` (a longer one makes the guest hang silently at boot); ${hint}`,
    );
    this.length = length;
    this.limit = limit;
  }
}

/** Common shape of the console-wait failures: they carry the console tail for the report. */
abstract class ConsoleWaitError extends AvpError {
  /** The last console (and QEMU stderr) lines seen, oldest first. */
  readonly consoleTail: readonly string[];

  constructor(message: string, consoleTail: readonly string[]) {
    super(`${message}${formatTail(consoleTail)}`);
    this.consoleTail = consoleTail;
  }
}

/** QEMU exited while a caller was still waiting for a console line. */
export class QemuExitedError extends ConsoleWaitError {
  readonly code = 'QEMU_EXITED';
  readonly exitCode: number | null;
  readonly signal: string | null;

  constructor(waitingFor: string, exitCode: number | null, signal: string | null, consoleTail: readonly string[]) {
    super(
      `QEMU exited (${signal === null ? `status ${String(exitCode)}` : `signal ${signal}`}) before the console showed ${waitingFor}`,
      consoleTail,
    );
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** The console did not show an expected line within the time allowed. */
export class ConsoleTimeoutError extends ConsoleWaitError {
  readonly code = 'QEMU_CONSOLE_TIMEOUT';
  readonly timeoutMs: number;

  constructor(waitingFor: string, timeoutMs: number, consoleTail: readonly string[]) {
    super(`the console did not show ${waitingFor} within ${timeoutMs} ms`, consoleTail);
    this.timeoutMs = timeoutMs;
  }
}

/** The guest test script finished, but with a status other than the one expected. */
export class GuestScriptFailedError extends ConsoleWaitError {
  readonly code = 'GUEST_SCRIPT_FAILED';
  readonly status: number;

  constructor(status: number, consoleTail: readonly string[]) {
    super(`the guest test script exited with status ${status}`, consoleTail);
    this.status = status;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return typeof v;
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function formatTail(tail: readonly string[]): string {
  if (tail.length === 0) return '\n(the console printed nothing)';
  return `\nlast ${tail.length} console lines:\n${tail.map((l) => `  | ${l}`).join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// Platform manifest and `avp run`

/** One problem found in a manifest: where (path, line, column) and what is expected. */
export interface ManifestIssue {
  /** The manifest path at fault, such as `vms[1].devices[2].image` (`(root)` for the document). */
  path: string;
  /** 1-based line and column in the manifest file. */
  line: number;
  col: number;
  message: string;
}

/** A platform manifest has errors (YAML syntax, schema, or cross-references). `issues` lists all. */
export class ManifestInvalidError extends AvpError {
  readonly code = 'MANIFEST_INVALID';
  readonly file: string;
  readonly issues: readonly ManifestIssue[];

  constructor(file: string, issues: readonly ManifestIssue[]) {
    super(
      `${file} has ${issues.length} error${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => formatManifestIssue(file, i)).join('\n'),
    );
    this.file = file;
    this.issues = issues;
  }
}

/** `FILE:LINE:COL: path: message`, the one-line form every manifest error is printed in. */
export function formatManifestIssue(file: string, i: ManifestIssue): string {
  return `${file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/** The manifest file cannot be read (missing, a folder, no permission). */
export class ManifestReadError extends AvpError {
  readonly code = 'MANIFEST_UNREADABLE';
  readonly file: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot read manifest ${file}: ${reason}`, options);
    this.file = file;
  }
}

/**
 * The platform cannot be laid out in the chosen run directory: a socket path would be longer than
 * a Unix socket address holds, or a VM needs the built-in image and none was given.
 */
export class PlatformPlanError extends AvpError {
  readonly code = 'PLATFORM_PLAN_INVALID';

  constructor(message: string) {
    super(message);
  }
}

/** A back-end the manifest asks for (a net switch, vsock) is not part of this build of AVP. */
export class BackendUnavailableError extends AvpError {
  readonly code = 'BACKEND_UNAVAILABLE';
  /** `vms[i].devices[j]` or `switches[k]` of each unavailable back-end. */
  readonly paths: readonly string[];

  constructor(reasons: ReadonlyArray<{ path: string; reason: string }>) {
    super(reasons.map((r) => `${r.path}: ${r.reason}`).join('\n'));
    this.paths = reasons.map((r) => r.path);
  }
}

/** A device back-end of `avp run` did not start (bad option, image not openable, process died). */
export class BackendStartError extends AvpError {
  readonly code = 'BACKEND_START_FAILED';
  readonly backend: string;

  constructor(backend: string, reason: string, options?: { cause?: unknown }) {
    super(`back-end ${backend} did not start: ${reason}`, options);
    this.backend = backend;
  }
}

/** The run directory (or a file in it, such as a blk image to create) cannot be set up. */
export class RunDirError extends AvpError {
  readonly code = 'RUN_DIR_FAILED';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// Controlling a running platform (the control socket, the dashboard)

/**
 * A start, stop or restart the supervisor's rules do not allow now (restart: no, already running,
 * a back-end the VM needs is down, the run is stopping); `message` says why.
 */
export class ControlRefusedError extends AvpError {
  readonly code = 'CONTROL_REFUSED';

  constructor(message: string) {
    super(message);
  }
}

/** A control request names a VM, back-end, display or bus this run does not have. */
export class ControlTargetError extends AvpError {
  readonly code = 'CONTROL_UNKNOWN_TARGET';

  constructor(message: string) {
    super(message);
  }
}

/** A control socket message is not valid JSON or not a request/response of the protocol. */
export class ControlProtocolError extends AvpError {
  readonly code = 'CONTROL_PROTOCOL';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * No running platform answers on a run directory's control socket (none there, the run ended, or
 * the folder is not a run directory).
 */
export class ControlUnavailableError extends AvpError {
  readonly code = 'CONTROL_UNAVAILABLE';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The platform refused a control request for a reason of its own; `code` is the one it sent. */
export class ControlRemoteError extends AvpError {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** QEMU's QMP monitor refused a command, sent something that is not QMP, or went away. */
export class QmpError extends AvpError {
  readonly code = 'QMP_ERROR';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
