// SPDX-License-Identifier: Apache-2.0
/**
 * Last-resort cleanup when this process ends: functions registered here run synchronously on
 * 'exit' and on SIGINT, SIGTERM and SIGHUP (QEMU VMs and test back-ends a caller forgot, their
 * socket folders). A signal handler that is the only listener re-raises the signal after the
 * cleanup, so the default behaviour (terminate) is kept; if others listen, they decide.
 */

const cleanups = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // a last-resort cleanup must not stop the others
    }
  }
}

/** Registers `fn` to run when the process exits or is ended by a signal. */
export function onProcessEnd(fn: () => void): void {
  cleanups.add(fn);
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      runAll();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}
