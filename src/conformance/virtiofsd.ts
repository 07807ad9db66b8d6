// SPDX-License-Identifier: Apache-2.0
/**
 * virtiofsd, the peer AVP's fs back-end is judged and measured against: where it is, how it is
 * started, and a per-connection respawner.
 *
 * Which virtiofsd: QEMU dropped its C virtiofsd in 8.0, so QEMU 10.0 from bookworm-backports ships
 * none, and Debian 12 has no package of the Rust virtiofsd. The C virtiofsd 7.2.22 of Debian 12's
 * own qemu-system-common (7.2) is what this machine can get: scripts/setup.sh unpacks that one
 * file to `/usr/local/libexec/avp/virtiofsd` (its libraries come with QEMU 10.0). `AVP_VIRTIOFSD`
 * names another binary (the Rust one takes other options: not supported here).
 *
 * virtiofsd serves one front-end and exits when it disconnects (`virtio_loop: Exit`). The
 * conformance suite connects once per check, so `node dist/conformance/virtiofsd.js --socket-path P
 * --shared-dir D` holds the listening socket itself and starts a new virtiofsd on it (`--fd=3`)
 * each time the previous one ends: connections wait in the backlog meanwhile, none is refused.
 * Sandbox: `-o sandbox=chroot` (the namespace sandbox needs unshare, which containers refuse).
 *
 * Owns: the binary's location, its arguments, the respawner. Does not own: conformance or
 * benchmarks (callers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { closeQuiet, listenUnix, setNonBlocking, unlinkQuiet } from '../sys/index.js';

/** Where scripts/setup.sh installs Debian 12's C virtiofsd. */
export const AVP_VIRTIOFSD = '/usr/local/libexec/avp/virtiofsd';

/** The respawner's exit status when stopped after a virtiofsd it ran had crashed. */
export const CRASHED_STATUS = 3;

/** This module as a program (the respawner). */
export const VIRTIOFSD_RESPAWNER = fileURLToPath(import.meta.url);

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `$AVP_VIRTIOFSD`, else the one setup.sh installs, else Debian 12's own path; undefined when none is there. */
export function findVirtiofsd(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env['AVP_VIRTIOFSD'], AVP_VIRTIOFSD, '/usr/lib/qemu/virtiofsd'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && executable(p));
}

/**
 * The C virtiofsd's arguments for sharing `sharedDir` on a socket path or an inherited listening
 * fd, with its defaults spelled out (cache=auto: 1 s timeouts like AVP's; readdirplus; no
 * writeback, no xattr), in the foreground.
 */
export function virtiofsdArgs(sharedDir: string, where: { socketPath: string } | { fd: number }): string[] {
  const socket = 'fd' in where ? `--fd=${where.fd}` : `--socket-path=${where.socketPath}`;
  return [socket, '-f', '-o', `source=${sharedDir}`, '-o', 'sandbox=chroot', '-o', 'cache=auto', '-o', 'no_writeback', '-o', 'no_xattr', '-o', 'log_level=warn'];
}

/** A respawner: listens on `socketPath` and runs one virtiofsd per connection until stopped. */
export class VirtiofsdRespawner {
  readonly #binary: string;
  readonly #sharedDir: string;
  readonly #socketPath: string;
  readonly #listenFd: number;
  #child: ChildProcess | undefined;
  #stopped = false;
  /** virtiofsd processes started so far. */
  starts = 0;
  /** The signal that killed a virtiofsd (not one this respawner sent), if any did. */
  crashed: NodeJS.Signals | undefined;
  /** Called when a virtiofsd is killed by a signal; the respawner has stopped starting new ones. */
  onCrash: (signal: NodeJS.Signals) => void = () => {};

  constructor(binary: string, sharedDir: string, socketPath: string) {
    this.#binary = binary;
    this.#sharedDir = sharedDir;
    this.#socketPath = socketPath;
    this.#listenFd = listenUnix(socketPath);
    // virtiofsd calls a blocking accept() on it.
    setNonBlocking(this.#listenFd, false);
    this.#start();
  }

  #start(): void {
    if (this.#stopped) return;
    this.starts++;
    const child = spawn(this.#binary, virtiofsdArgs(this.#sharedDir, { fd: 3 }), { stdio: ['ignore', 'inherit', 'inherit', this.#listenFd] });
    this.#child = child;
    child.once('exit', (code, signal) => {
      const ours = this.#stopped && (signal === 'SIGTERM' || signal === 'SIGKILL');
      if (signal !== null && !ours) {
        // A crash (SIGSEGV, SIGBUS, SIGABRT from an assertion) must stay one for whoever judges it.
        this.crashed ??= signal;
        process.stderr.write(`virtiofsd was killed by ${signal}\n`);
        if (!this.#stopped) {
          this.#stopped = true;
          this.onCrash(signal);
        }
        return;
      }
      if (this.#stopped) return;
      // Exit 0 after its client left is virtiofsd's normal end; exit 1 is its vu_panic ("closed
      // the connection", as far as a front-end can tell). Both: the next connection gets a new one.
      if (code !== 0) process.stderr.write(`virtiofsd exited with status ${code}; starting another\n`);
      this.#start();
    });
  }

  /** Stops the current virtiofsd and closes and removes the socket. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    closeQuiet(this.#listenFd);
    unlinkQuiet(this.#socketPath);
  }
}

/** `node virtiofsd.js --socket-path P --shared-dir D [--binary B]`: the respawner until SIGTERM/SIGINT. */
function main(argv: readonly string[]): void {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const socketPath = arg('--socket-path');
  const sharedDir = arg('--shared-dir');
  const binary = arg('--binary') ?? findVirtiofsd();
  if (socketPath === undefined || sharedDir === undefined) {
    process.stderr.write('usage: virtiofsd.js --socket-path PATH --shared-dir DIR [--binary VIRTIOFSD]\n');
    process.exit(1);
  }
  if (binary === undefined) {
    process.stderr.write(`virtiofsd not found (${AVP_VIRTIOFSD}; run scripts/setup.sh as root, or set AVP_VIRTIOFSD)\n`);
    process.exit(1);
  }
  const r = new VirtiofsdRespawner(binary, sharedDir, socketPath);
  // The crash becomes this process' own, so a conformance run sees CRASH (and restarts it).
  r.onCrash = (signal) => void r.stop().then(() => process.kill(process.pid, signal));
  process.stderr.write(`respawning ${binary} on ${socketPath}\n`);
  // Stopped: status CRASHED_STATUS if a virtiofsd crashed meanwhile (even one noticed only now).
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void r.stop().then(() => process.exit(r.crashed === undefined ? 0 : CRASHED_STATUS)));
}

if (process.argv[1] === VIRTIOFSD_RESPAWNER) main(process.argv.slice(2));
