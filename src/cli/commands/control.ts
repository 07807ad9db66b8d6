// SPDX-License-Identifier: Apache-2.0
/**
 * `avp screenshot VM` and `avp input VM STEP...`: act on a platform `avp run` is running, through
 * the control sockets its devices serve in the run directory (platform/control.ts finds them by
 * the requests they take, so these commands name no device kind).
 *
 * - `avp screenshot VM [--scanout N] [--output FILE] [--device NAME] [--run-dir DIR]`: a PNG of
 *   what a scanout shows, written by the back-end (default: `<runDir>/<vm>/<device>-scanout<N>.png`);
 *   prints the path and size.
 * - `avp input VM [--device NAME] [--run-dir DIR] STEP...`: input steps (`key KEY_ENTER`,
 *   `touch 120,300`, ...; one step as words, or several quoted). Without --device each step goes
 *   to the first of the VM's input devices that accepts it (a key to the keyboard, a touch to the
 *   touch screen).
 */
import { isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { InputStepRefusedError, findControlSockets, requestScreenshot, sendInputStep } from '../../platform/control.js';
import { UsageError } from '../errors.js';

interface Common {
  device?: string;
  runDir?: string;
}

export function registerControlCommands(program: Command): void {
  program
    .command('screenshot')
    .description('save a PNG of what a VM of a running platform shows (avp run)')
    .argument('<vm>', 'the VM, by its manifest name')
    .option('--scanout <n>', 'the scanout (display) number', '0')
    .option('-o, --output <file>', 'where to write the PNG (default: the run directory)')
    .option('--device <name>', 'the display device, by its manifest name (default: every one of the VM)')
    .option('--run-dir <dir>', "the run's directory (default: the newest run under .avp/runs)")
    .action(async (vm: string, opts: Common & { scanout: string; output?: string }) => {
      process.exitCode = await screenshot(vm, opts);
    });
  program
    .command('input')
    .description('send input steps to a VM of a running platform (avp run): key KEY_ENTER, touch 120,300, type hello, ...')
    .argument('<vm>', 'the VM, by its manifest name')
    .argument('<step...>', "one step as words (key KEY_ENTER), or several steps, each quoted ('key KEY_A' 'touch 10,20')")
    .option('--device <name>', 'the input device, by its manifest name (default: the first that accepts each step)')
    .option('--run-dir <dir>', "the run's directory (default: the newest run under .avp/runs)")
    .action(async (vm: string, words: string[], opts: Common) => {
      process.exitCode = await input(vm, words, opts);
    });
}

function where(vm: string, opts: Common, request: string) {
  return { vm, request, cwd: process.cwd(), ...(opts.runDir === undefined ? {} : { runDir: opts.runDir }), ...(opts.device === undefined ? {} : { device: opts.device }) };
}

async function screenshot(vm: string, opts: Common & { scanout: string; output?: string }): Promise<number> {
  const scanout = Number(opts.scanout);
  if (!Number.isInteger(scanout) || scanout < 0 || scanout > 15) throw new UsageError(`screenshot: --scanout must be a scanout number from 0 to 15, got ${opts.scanout}`);
  const sockets = await findControlSockets(where(vm, opts, 'screenshot'));
  if (opts.output !== undefined && sockets.length > 1) throw new UsageError(`screenshot: VM '${vm}' has ${sockets.length} displays (${sockets.map((s) => s.name).join(', ')}); give --device with --output`);
  const output = opts.output === undefined ? undefined : isAbsolute(opts.output) ? opts.output : resolve(process.cwd(), opts.output);
  for (const s of sockets) {
    const r = await requestScreenshot(s.path, scanout, output);
    process.stdout.write(`${r.path} (${vm}/${s.name} scanout ${scanout}, ${r.width}x${r.height}, frame ${r.frame})\n`);
  }
  return 0;
}

/** The steps given as words: one step, or several when the first word holds a space. */
export function stepsOf(words: readonly string[]): string[] {
  if (words.length === 0) return [];
  return words[0]?.includes(' ') === true ? words.map((w) => w.trim()).filter((w) => w !== '') : [words.join(' ')];
}

async function input(vm: string, words: readonly string[], opts: Common): Promise<number> {
  const steps = stepsOf(words);
  if (steps.length === 0) throw new UsageError('input: give at least one step, e.g. key KEY_ENTER or touch 120,300');
  const sockets = await findControlSockets(where(vm, opts, 'input'));
  for (const step of steps) {
    try {
      const { socket: s, reply: r } = await sendInputStep(sockets, step);
      process.stdout.write(`${vm}/${s.name}: ${step} (${String(r['frames'])} frame(s)${r['driver'] === false ? ', queued until the guest driver is ready' : ''})\n`);
    } catch (e: unknown) {
      if (e instanceof InputStepRefusedError) throw new UsageError(`input: no input device of VM '${vm}' took '${step}': ${e.refusals.join('; ')}`);
      throw e;
    }
  }
  return 0;
}
