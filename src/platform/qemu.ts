// SPDX-License-Identifier: Apache-2.0
/**
 * QEMU for AVP guests: the argv for a VM spec (a pure function), the accelerator choice, and a
 * process wrapper that reads the serial console line by line and always cleans up.
 *
 * Owns: `qemuArgs` (every QEMU option AVP uses is spelled here and nowhere else), `detectAccel`,
 * `QemuVm` (spawn, console lines, waits with timeouts, kill with escalation), `withVm` and
 * `runGuest`, and the last-resort killing of VMs when the Node process ends.
 * Does not own: the guest image (image/), vhost-user back-ends (started by their owners before
 * QEMU, which connects to them as a client), nor manifests.
 *
 * QEMU 7.2 facts behind the argv (shared/reference/qemu-7.2-and-node-notes.md §3, §5, §10):
 * vhost-user needs guest RAM in shared memory (memfd, share=on); the guest's `panic=-1` with
 * `-no-reboot` ends QEMU on a panic. How each vhost-user device attaches (device name, properties,
 * version quirks such as virtio-net's `vectors=0` on 7.2, applied by qemu-caps.ts's version) is its
 * device kind's (platform/attach.ts).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import {
  AccelError,
  ConsoleTimeoutError,
  GuestScriptFailedError,
  QemuNotInstalledError,
  QemuExitedError,
  VmSpecError,
} from './errors.js';
import { X86_CMDLINE_MAX_BYTES, checkCmdlineLength, cmdParam, kernelCmdline } from './image/cmdline.js';
import { EXIT_LINE, READY_LINE, parseGuestKv } from './image/markers.js';
import { onProcessEnd } from './exit-cleanup.js';

export type Accel = 'tcg' | 'kvm';

/**
 * A device of the VM. Built-in devices are emulated by QEMU (for comparisons); `vhost-user` ones
 * by a back-end at `socket`, attached as their device kind says (platform/attach.ts builds them
 * from the device registry).
 */
export type VmDevice =
  | { kind: 'virtio-rng' }
  | { kind: 'virtio-blk'; file: string; readOnly?: boolean }
  | VirtioSerialVmDevice
  | VhostUserVmDevice;

/**
 * QEMU's own virtio-serial controller with ports whose host side is a Unix socket QEMU connects
 * to (`-chardev socket`): `virtconsole` ports are ttys in the guest (/dev/hvc0, hvc1, ... in
 * order), which a line discipline such as slcan can attach to; `virtserialport` ports are
 * /dev/vportNpM character devices. Each port's `name` shows in /sys/class/virtio-ports/.../name.
 */
export interface VirtioSerialVmDevice {
  kind: 'virtio-serial';
  ports: ReadonlyArray<{ socket: string; name: string; console: boolean; reconnect?: number }>;
}

/** A vhost-user device: `-chardev socket` plus `-device <qemuDevice>,chardev=...` (or `-netdev vhost-user`, or `-object`). */
export interface VhostUserVmDevice {
  kind: 'vhost-user';
  /** QEMU's device name, e.g. `vhost-user-rng-pci`. */
  qemuDevice: string;
  /** Where the back-end listens. */
  socket: string;
  /** Device properties, in order (`num-queues=2`). */
  props?: Readonly<Record<string, string | number>>;
  /** Attach through `-netdev vhost-user,chardev=...` and `netdev=` on the device (virtio-net). */
  netdev?: boolean;
  /**
   * Attach through a QEMU object the device names: `-object <type>,id=obj<i>,chardev=...` and
   * `<deviceProp>=obj<i>` on the device (virtio-crypto: `cryptodev-vhost-user`, `cryptodev`).
   */
  object?: { readonly type: string; readonly deviceProp: string };
  /**
   * Seconds between QEMU's reconnect attempts (chardev `reconnect=`), for back-ends restarted on
   * failure; only for front-ends that can reconnect (DeviceKind.frontend.reconnect). Default: none.
   */
  reconnect?: number;
}

export interface VmSpec {
  /** The guest kernel (bzImage), e.g. GuestImage.kernel. */
  kernel: string;
  /** The initramfs, e.g. GuestImage.initramfs. */
  initrd: string;
  /** Kernel parameters after BASE_KERNEL_PARAMS, each one word (see scriptParam, cmdParam). */
  append?: readonly string[];
  /** Guest RAM in MiB; default 256. */
  memoryMiB?: number;
  /** vCPUs; default 1. */
  cpus?: number;
  /** Default 'tcg' (see detectAccel). */
  accel?: Accel;
  devices?: readonly VmDevice[];
  /** QEMU's -name, shown in ps and in QEMU's own messages. */
  name?: string;
  /** The kernel's command-line limit in bytes (GuestImage.cmdlineLimit); default 2047. */
  cmdlineLimit?: number;
  /**
   * A QMP monitor on a Unix socket that QEMU connects to as a client at start-up (the runner
   * listens there first, so no event is missed): `-chardev socket` + `-mon mode=control`.
   */
  qmp?: string;
  /**
   * QEMU's emulated i6300esb watchdog and what QEMU does when it fires (`-action watchdog=`).
   * 'reset' resets the guest in place, so this VM runs without -no-reboot (with it, QEMU turns
   * every reset into a shutdown); a guest reboot then also resets it.
   */
  watchdog?: { action: QemuWatchdogAction };
  /** A virtio-balloon device. */
  balloon?: { deflateOnOom?: boolean; freePageReporting?: boolean };
}

/** What QEMU does when the watchdog fires (a subset of QEMU's WatchdogAction). */
export type QemuWatchdogAction = 'reset' | 'poweroff';

export const DEFAULT_MEMORY_MIB = 256;
/** The QEMU binary: `$AVP_QEMU`, else this. */
export const QEMU_BINARY = 'qemu-system-x86_64';

/**
 * The QEMU arguments (without the program name) for `spec`. Pure: no file-system access, no
 * environment; throws VmSpecError naming the field at fault. Device ids are derived from the
 * device's index (`dev0`, `chr0`, `drive0`, `net0`), so the same spec always gives the same argv.
 */
export function qemuArgs(spec: VmSpec): string[] {
  const memory = spec.memoryMiB ?? DEFAULT_MEMORY_MIB;
  checkInt('memoryMiB', memory, 16, 1 << 20);
  const cpus = spec.cpus ?? 1;
  checkInt('cpus', cpus, 1, 255);
  const accel = spec.accel ?? 'tcg';
  if (accel !== 'tcg' && accel !== 'kvm') throw new VmSpecError('accel', "must be 'tcg' or 'kvm'", accel);
  checkPath('kernel', spec.kernel);
  checkPath('initrd', spec.initrd);
  const append = spec.append ?? [];
  append.forEach((p, i) => {
    // A parameter is one word for the kernel, except inside double quotes (cmdParam's form).
    if (p === '' || /[\n\r\0]/.test(p) || (/\s/.test(p) && !/^[^\s"]+="[^"]*"$/.test(p))) {
      throw new VmSpecError(`append[${i}]`, 'must be one kernel parameter (spaces only inside a double-quoted value)', p);
    }
  });
  const cmdline = kernelCmdline(append);
  checkCmdlineLength(cmdline, spec.cmdlineLimit ?? X86_CMDLINE_MAX_BYTES);

  const args: string[] = [];
  if (spec.name !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(spec.name)) throw new VmSpecError('name', 'must be 1-64 letters, digits, _ . -', spec.name);
    args.push('-name', spec.name);
  }
  args.push(
    '-nodefaults',
    '-no-user-config',
    // vhost-user back-ends map guest RAM from the memfd QEMU passes them: it must be shared.
    '-machine',
    'q35,memory-backend=mem',
    '-object',
    `memory-backend-memfd,id=mem,size=${memory}M,share=on`,
    '-m',
    `${memory}M`,
    '-accel',
    accel,
    '-smp',
    String(cpus),
    '-kernel',
    spec.kernel,
    '-initrd',
    spec.initrd,
    '-append',
    cmdline,
    // The guest's console=ttyS0 is QEMU's stdout; no window, no monitor.
    '-display',
    'none',
    '-serial',
    'stdio',
  );
  const watchdog = spec.watchdog;
  if (watchdog !== undefined && watchdog.action !== 'reset' && watchdog.action !== 'poweroff') {
    throw new VmSpecError('watchdog.action', "must be 'reset' or 'poweroff'", watchdog.action);
  }
  // A guest reboot (which panic=-1 turns a panic into) ends QEMU, except where the watchdog resets.
  if (watchdog?.action !== 'reset') args.push('-no-reboot');
  if (spec.qmp !== undefined) {
    checkPath('qmp', spec.qmp);
    args.push('-chardev', `socket,id=qmp,path=${optValue(spec.qmp)}`, '-mon', 'chardev=qmp,mode=control');
  }
  if (watchdog !== undefined) args.push('-device', 'i6300esb,id=watchdog0', '-action', `watchdog=${watchdog.action}`);
  if (spec.balloon !== undefined) {
    const onOff = (b: boolean | undefined): string => (b === true ? 'on' : 'off');
    args.push('-device', `virtio-balloon-pci,id=balloon0,deflate-on-oom=${onOff(spec.balloon.deflateOnOom)},free-page-reporting=${onOff(spec.balloon.freePageReporting)}`);
  }
  (spec.devices ?? []).forEach((d, i) => args.push(...deviceArgs(d, i)));
  return args;
}

function deviceArgs(d: VmDevice, i: number): string[] {
  const field = `devices[${i}]`;
  const dev = `dev${i}`;
  const chr = `chr${i}`;
  switch (d.kind) {
    case 'virtio-rng':
      return ['-device', `virtio-rng-pci,id=${dev}`];
    case 'virtio-blk': {
      checkPath(`${field}.file`, d.file);
      const ro = d.readOnly === true ? ',readonly=on' : '';
      return [
        '-drive',
        `file=${optValue(d.file)},format=raw,if=none,id=drive${i}${ro}`,
        '-device',
        `virtio-blk-pci,drive=drive${i},id=${dev}`,
      ];
    }
    case 'virtio-serial':
      return virtioSerialArgs(d, i);
    case 'vhost-user': {
      checkPath(`${field}.socket`, d.socket);
      if (!/^[a-z][a-z0-9-]*$/.test(d.qemuDevice)) throw new VmSpecError(`${field}.qemuDevice`, 'must be a QEMU device name such as vhost-user-rng-pci', d.qemuDevice);
      let chardev = `socket,id=${chr},path=${optValue(d.socket)}`;
      if (d.reconnect !== undefined) {
        checkInt(`${field}.reconnect`, d.reconnect, 1, 3600);
        chardev += `,reconnect=${d.reconnect}`;
      }
      const props = Object.entries(d.props ?? {}).map(([k, v]) => {
        if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(k) || ['id', 'chardev', 'netdev'].includes(k)) throw new VmSpecError(`${field}.props`, 'must name QEMU properties (letters, digits, _ . -; not id, chardev or netdev)', k);
        if (typeof v === 'number' ? !Number.isFinite(v) : typeof v !== 'string' || /[\n\r\0]/.test(v)) throw new VmSpecError(`${field}.props.${k}`, 'must be a number or a one-line string', v);
        return `,${k}=${optValue(String(v))}`;
      });
      if (d.netdev === true) {
        return ['-chardev', chardev, '-netdev', `vhost-user,chardev=${chr},id=net${i}`, '-device', `${d.qemuDevice},netdev=net${i}${props.join('')},id=${dev}`];
      }
      if (d.object !== undefined) {
        const { type, deviceProp } = d.object;
        if (!/^[a-z][a-z0-9-]*$/.test(type)) throw new VmSpecError(`${field}.object.type`, 'must be a QEMU object type such as cryptodev-vhost-user', type);
        if (!/^[a-z][a-z0-9-]*$/.test(deviceProp) || ['id', 'chardev', 'netdev'].includes(deviceProp)) throw new VmSpecError(`${field}.object.deviceProp`, 'must name the device property that takes the object (not id, chardev or netdev)', deviceProp);
        return ['-chardev', chardev, '-object', `${type},id=obj${i},chardev=${chr}`, '-device', `${d.qemuDevice},${deviceProp}=obj${i}${props.join('')},id=${dev}`];
      }
      return ['-chardev', chardev, '-device', `${d.qemuDevice},chardev=${chr}${props.join('')},id=${dev}`];
    }
    default: {
      // Unreachable for typed callers; a spec from JSON may carry any kind.
      const kind: unknown = (d as { kind?: unknown }).kind;
      throw new VmSpecError(`${field}.kind`, "must be 'vhost-user', 'virtio-serial', 'virtio-rng' or 'virtio-blk'", kind);
    }
  }
}

function virtioSerialArgs(d: VirtioSerialVmDevice, i: number): string[] {
  const args = ['-device', `virtio-serial-pci,id=dev${i}`];
  d.ports.forEach((p, j) => {
    const field = `devices[${i}].ports[${j}]`;
    checkPath(`${field}.socket`, p.socket);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(p.name)) throw new VmSpecError(`${field}.name`, 'must be 1-64 letters, digits, _ . -', p.name);
    let chardev = `socket,id=chr${i}p${j},path=${optValue(p.socket)}`;
    if (p.reconnect !== undefined) {
      checkInt(`${field}.reconnect`, p.reconnect, 1, 3600);
      chardev += `,reconnect=${p.reconnect}`;
    }
    args.push('-chardev', chardev, '-device', `${p.console ? 'virtconsole' : 'virtserialport'},chardev=chr${i}p${j},bus=dev${i}.0,name=${p.name},id=dev${i}p${j}`);
  });
  return args;
}

/** QEMU's option syntax ends a value at ',' and reads ',,' as a literal comma. */
function optValue(v: string): string {
  return v.replaceAll(',', ',,');
}

function checkInt(field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new VmSpecError(field, `must be an integer from ${min} to ${max}`, v);
}

function checkPath(field: string, p: string): void {
  if (typeof p !== 'string' || p === '' || /[\n\r\0]/.test(p)) throw new VmSpecError(field, 'must be a non-empty path', p);
}

// ---------------------------------------------------------------------------------------------
// Accelerator

export interface DetectAccelOptions {
  env?: NodeJS.ProcessEnv;
  /** An image to boot for the KVM probe (AVP_ACCEL=auto); without it, auto means tcg. */
  probe?: { kernel: string; initrd: string };
  /** How long the probe may take; a working KVM boots in a few seconds. Default 20 s. */
  probeTimeoutMs?: number;
  /** Default /dev/kvm. */
  kvmDevice?: string;
}

/**
 * The accelerator to use: `$AVP_ACCEL` if it is 'tcg' or 'kvm'; 'tcg' when unset. With
 * AVP_ACCEL=auto, 'kvm' only if /dev/kvm exists and a probe guest boots under KVM in time:
 * nested KVM on the CI hosts opens fine and then hangs, so the device alone proves nothing.
 * The probe VM is always killed.
 */
export async function detectAccel(options: DetectAccelOptions = {}): Promise<Accel> {
  const value = (options.env ?? process.env)['AVP_ACCEL'] ?? '';
  if (value === '' || value === 'tcg') return 'tcg';
  if (value === 'kvm') return 'kvm';
  if (value !== 'auto') throw new AccelError(value);
  if (!existsSync(options.kvmDevice ?? '/dev/kvm') || options.probe === undefined) return 'tcg';
  try {
    const run = await runGuest(
      { ...options.probe, accel: 'kvm', append: [cmdParam('true')], name: 'avp-kvm-probe' },
      { timeoutMs: options.probeTimeoutMs ?? 20_000 },
    );
    return run.status === 0 ? 'kvm' : 'tcg';
  } catch {
    return 'tcg'; // hung (timeout), refused, or crashed: KVM is not usable here
  }
}

// ---------------------------------------------------------------------------------------------
// Process wrapper

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuVmOptions {
  /** QEMU binary; default `$AVP_QEMU`, else qemu-system-x86_64 on PATH. */
  binary?: string;
  /** How long kill() waits after SIGTERM before SIGKILL. Default 5 s. */
  killGraceMs?: number;
  /** Copy each console line somewhere as it arrives (default: to stderr when $AVP_VM_ECHO is set). */
  echo?: (line: string) => void;
  /** Console lines kept; older ones are dropped. Default 100,000. */
  maxLines?: number;
  env?: NodeJS.ProcessEnv;
}

/** Lines of console (and QEMU stderr) put into wait errors. */
const ERROR_TAIL_LINES = 30;
/** Default wait: TCG on a loaded 2-core host boots in 10-30 s; this leaves room. */
export const DEFAULT_WAIT_MS = 120_000;

interface Waiter {
  pattern: RegExp;
  from: number;
  what: string;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Every VM not yet exited, for the last-resort kill when this process ends. */
const liveVms = new Set<QemuVm>();

/**
 * One QEMU process. Console lines are kept in order; `waitForLine` calls consume them like an
 * expect script: each wait searches from just after the line the previous successful wait
 * matched, including lines that arrived before the call, so no line is missed by a late wait.
 */
export class QemuVm {
  readonly argv: readonly string[];
  readonly pid: number;
  /** Resolves when QEMU has exited and its output is fully read. Never rejects. */
  readonly exited: Promise<VmExit>;

  readonly #child: ChildProcessWithoutNullStreams;
  readonly #killGraceMs: number;
  readonly #maxLines: number;
  readonly #echo: ((line: string) => void) | undefined;
  /** Console lines; #dropped older ones were discarded, so line n is at #lines[n - #dropped]. */
  readonly #lines: string[] = [];
  #dropped = 0;
  #partial = '';
  #cursor = 0;
  readonly #stderr: string[] = [];
  #exit: VmExit | undefined;
  readonly #waiters = new Set<Waiter>();

  private constructor(child: ChildProcessWithoutNullStreams, argv: readonly string[], options: QemuVmOptions) {
    this.#child = child;
    this.argv = argv;
    // spawn() resolved through the 'spawn' event, so the pid exists.
    this.pid = child.pid as number;
    this.#killGraceMs = options.killGraceMs ?? 5_000;
    this.#maxLines = options.maxLines ?? 100_000;
    this.#echo = options.echo ?? (process.env['AVP_VM_ECHO'] ? (l) => process.stderr.write(`[vm ${this.pid}] ${l}\n`) : undefined);

    const out = new StringDecoder('utf8');
    child.stdout.on('data', (b: Buffer) => this.#onConsole(out.write(b)));
    const err = new StringDecoder('utf8');
    let errPartial = '';
    child.stderr.on('data', (b: Buffer) => {
      const parts = (errPartial + err.write(b)).split('\n');
      errPartial = parts.pop() ?? '';
      for (const l of parts) this.#stderr.push(l.replace(/\r$/, ''));
    });
    // Writes to a QEMU that has exited fail with EPIPE, and a kill() racing the exit can make
    // the child emit 'error'; without listeners either would crash the process. The exit itself
    // is what callers see.
    child.stdin.on('error', () => {});
    child.on('error', () => {});
    this.exited = new Promise<VmExit>((resolve) => {
      child.on('close', (code, signal) => {
        this.#onConsole(out.end());
        if (this.#partial !== '') this.#pushLine(this.#partial);
        this.#partial = '';
        if (errPartial !== '') this.#stderr.push(errPartial);
        this.#exit = { code, signal };
        liveVms.delete(this);
        for (const w of [...this.#waiters]) {
          this.#settle(w);
          w.reject(new QemuExitedError(w.what, code, signal, this.tail()));
        }
        resolve(this.#exit);
      });
    });
  }

  /** Spawns `binary args…` (normally from qemuArgs) and resolves once the process runs. */
  static async spawn(binary: string, args: readonly string[], options: QemuVmOptions = {}): Promise<QemuVm> {
    onProcessEnd(killAllNow);
    const child = spawn(binary, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e: NodeJS.ErrnoException) => {
        reject(e.code === 'ENOENT' ? new QemuNotInstalledError(binary, { cause: e }) : e);
      });
    });
    const vm = new QemuVm(child, [binary, ...args], options);
    liveVms.add(vm);
    return vm;
  }

  /** Console lines received so far (without the ones dropped past maxLines). */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** QEMU's own stderr lines (its errors and warnings). */
  get stderrLines(): readonly string[] {
    return this.#stderr;
  }

  /** The exit status, once QEMU has exited. */
  get exitStatus(): VmExit | undefined {
    return this.#exit;
  }

  /** The last `n` console lines, then QEMU's last stderr lines, for error reports. */
  tail(n = ERROR_TAIL_LINES): string[] {
    const stderr = this.#stderr.slice(-10).map((l) => `[qemu stderr] ${l}`);
    return [...this.#lines.slice(-n), ...stderr];
  }

  /** Sends text to the guest's serial console (its stdin). */
  write(text: string): void {
    this.#child.stdin.write(text);
  }

  /**
   * Resolves with the match of the first console line matching `pattern` after the previous
   * match; rejects with ConsoleTimeoutError after `timeoutMs` or QemuExitedError if QEMU exits
   * first, both carrying the last console lines.
   */
  waitForLine(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<RegExpExecArray> {
    // A global or sticky pattern keeps state between exec calls; a plain copy does not.
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const what = `a line matching ${String(pattern)}`;
    const found = this.#search(re, this.#cursor);
    if (found) return Promise.resolve(found);
    if (this.#exit !== undefined) {
      return Promise.reject(new QemuExitedError(what, this.#exit.code, this.#exit.signal, this.tail()));
    }
    return new Promise<RegExpExecArray>((resolve, reject) => {
      const w: Waiter = {
        pattern: re,
        from: this.#cursor,
        what,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#settle(w);
          reject(new ConsoleTimeoutError(what, timeoutMs, this.tail()));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  /** Resolves with the exit status; rejects with ConsoleTimeoutError if QEMU is still running after `timeoutMs`. */
  async waitForExit(timeoutMs = DEFAULT_WAIT_MS): Promise<VmExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConsoleTimeoutError('QEMU exit', timeoutMs, this.tail())), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops QEMU: SIGTERM, then SIGKILL if it has not exited after the grace period. Resolves
   * with the exit status; safe to call any number of times, also after QEMU exited by itself.
   */
  async kill(graceMs = this.#killGraceMs): Promise<VmExit> {
    if (this.#exit !== undefined) return this.#exit;
    this.#child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const escalate = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    const first = await Promise.race([this.exited, escalate]);
    clearTimeout(timer);
    if (first !== undefined) return first;
    this.#child.kill('SIGKILL');
    return this.exited;
  }

  #onConsole(text: string): void {
    if (text === '') return;
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const l of parts) this.#pushLine(l.replace(/\r$/, ''));
  }

  #pushLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#maxLines) {
      this.#lines.shift();
      this.#dropped++;
    }
    this.#echo?.(line);
    const index = this.#dropped + this.#lines.length - 1;
    for (const w of [...this.#waiters]) {
      if (index < w.from) continue;
      const m = w.pattern.exec(line);
      if (m) {
        this.#settle(w);
        this.#cursor = Math.max(this.#cursor, index + 1);
        w.resolve(m);
      }
    }
  }

  #search(re: RegExp, from: number): RegExpExecArray | undefined {
    for (let n = Math.max(from, this.#dropped); n < this.#dropped + this.#lines.length; n++) {
      const m = re.exec(this.#lines[n - this.#dropped] as string); // n is within the kept lines
      if (m) {
        this.#cursor = n + 1;
        return m;
      }
    }
    return undefined;
  }

  #settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.#waiters.delete(w);
  }
}

/** `$AVP_QEMU`, else qemu-system-x86_64; throws QEMU_NOT_INSTALLED when it is not on PATH. */
export function findQemu(binary?: string, env: NodeJS.ProcessEnv = process.env): string {
  const name = binary ?? env['AVP_QEMU'] ?? QEMU_BINARY;
  const candidates = isAbsolute(name) ? [name] : (env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here; try the next PATH entry
    }
  }
  throw new QemuNotInstalledError(name);
}

/** Starts QEMU for `spec`. */
export async function startVm(spec: VmSpec, options: QemuVmOptions = {}): Promise<QemuVm> {
  const args = qemuArgs(spec);
  return QemuVm.spawn(findQemu(options.binary, options.env), args, options);
}

/** Runs `fn` with a started VM and kills the VM afterwards, whether `fn` succeeded or threw. */
export async function withVm<T>(spec: VmSpec, fn: (vm: QemuVm) => Promise<T>, options: QemuVmOptions = {}): Promise<T> {
  const vm = await startVm(spec, options);
  try {
    return await fn(vm);
  } finally {
    await vm.kill();
  }
}

export interface GuestRun {
  /** The test script's exit status from `AVP-GUEST: EXIT <status>`. */
  status: number;
  /** Every console line. */
  lines: readonly string[];
  /** `avp-kv` results. */
  kv: Map<string, string>;
  /** Milliseconds from QEMU's start to `AVP-GUEST: READY`. */
  readyMs: number;
  /** Milliseconds from QEMU's start to its exit. */
  totalMs: number;
  exit: VmExit;
}

export interface RunGuestOptions extends QemuVmOptions {
  /** Deadline for the whole run, boot to exit. Default 120 s. */
  timeoutMs?: number;
  /** Reject with GuestScriptFailedError unless the script exits with this status. */
  expectStatus?: number;
}

/**
 * Boots a guest of the AVP image, waits for READY, for `EXIT <status>` and for QEMU to power off,
 * and returns the console. QEMU is killed in every case before this returns or throws.
 */
export async function runGuest(spec: VmSpec, options: RunGuestOptions = {}): Promise<GuestRun> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_WAIT_MS);
  const left = (): number => Math.max(1, deadline - Date.now());
  const started = performance.now();
  return withVm(
    spec,
    async (vm) => {
      await vm.waitForLine(READY_LINE, left());
      const readyMs = performance.now() - started;
      const m = await vm.waitForLine(EXIT_LINE, left());
      const status = Number(m[1]);
      const exit = await vm.waitForExit(left());
      const totalMs = performance.now() - started;
      if (options.expectStatus !== undefined && status !== options.expectStatus) {
        throw new GuestScriptFailedError(status, vm.tail());
      }
      return { status, lines: [...vm.lines], kv: parseGuestKv(vm.lines), readyMs, totalMs, exit };
    },
    options,
  );
}

/** Kills every VM still running, synchronously (for 'exit' and signal handlers). */
function killAllNow(): void {
  for (const vm of liveVms) {
    try {
      process.kill(vm.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  liveVms.clear();
}


/** Number of VMs this process started that have not exited (for tests of cleanup). */
export function liveVmCount(): number {
  return liveVms.size;
}
