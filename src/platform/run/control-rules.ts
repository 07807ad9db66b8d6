// SPDX-License-Identifier: Apache-2.0
/**
 * The rules for starting, stopping and restarting a VM or a back-end of a running platform, as a
 * pure function of the run's snapshot. The supervisor enforces them (`PlatformRun.act`), and the
 * control socket reports them with every snapshot so that the dashboard can grey out what it may
 * not do and say why; both read this one function, so they cannot disagree.
 *
 * Back-ends: only one with `restart: on-failure` may be stopped, started or restarted, because
 * only then does QEMU's chardev reconnect (`reconnect=`) to a back-end that comes back; the
 * manifest allows that setting only for kinds whose QEMU front-end can reconnect
 * (DeviceKind.frontend.reconnect). Stopping any other would cut its VMs off for good.
 * VMs: a running VM (booting or ready) may be stopped; a VM that has ended (powered off, failed,
 * stopped) may be started; restart does both or only the start. Starting needs every back-end
 * the VM uses to be running, since QEMU connects to them at start-up.
 * Nothing while the run is stopping, nor on a target an earlier request is still acting on.
 *
 * Owns: those rules and their wording. Does not own: carrying them out (supervisor.ts).
 */
import type { BackendStatus, RunSnapshot, VmStatus } from './types.js';

export type ControlTarget = 'vm' | 'backend';
export type ControlVerb = 'start' | 'stop' | 'restart';
export const CONTROL_VERBS: readonly ControlVerb[] = ['start', 'stop', 'restart'];

/** Start, stop or restart one VM or back-end (by VM name or back-end id). */
export interface ControlRequest {
  target: ControlTarget;
  name: string;
  action: ControlVerb;
}

/** Why a request is not carried out: no such target, or the rules say no now. */
export type ControlDenial = { code: 'unknown'; reason: string } | { code: 'refused'; reason: string };

/** For each verb: null when allowed now, else why not. */
export type ActionVerdicts = Record<ControlVerb, string | null>;

/**
 * Whether `req` may be carried out on the run `snap` shows; undefined when it may.
 * `busy` holds `vm:<name>` / `backend:<id>` of targets an earlier request is still acting on.
 */
export function checkAction(snap: RunSnapshot, req: ControlRequest, busy: ReadonlySet<string> = new Set()): ControlDenial | undefined {
  if (req.target === 'vm') {
    const vm = snap.vms.find((v) => v.name === req.name);
    if (vm === undefined) return { code: 'unknown', reason: unknownTarget('VM', req.name, snap.vms.map((v) => v.name)) };
    if (snap.ending) return { code: 'refused', reason: 'the run is stopping' };
    if (busy.has(targetKey(req))) return { code: 'refused', reason: `an earlier request on VM ${vm.name} is under way` };
    return vmRule(vm, req.action, snap.backends);
  }
  const b = snap.backends.find((x) => x.id === req.name);
  if (b === undefined) return { code: 'unknown', reason: unknownTarget('back-end', req.name, snap.backends.map((x) => x.id)) };
  if (snap.ending) return { code: 'refused', reason: 'the run is stopping' };
  if (busy.has(targetKey(req))) return { code: 'refused', reason: `an earlier request on back-end ${b.id} is under way` };
  return backendRule(b, req.action);
}

/** The verdict on every verb for one target (for the dashboard's buttons). */
export function verdicts(snap: RunSnapshot, target: ControlTarget, name: string, busy: ReadonlySet<string> = new Set()): ActionVerdicts {
  const one = (action: ControlVerb): string | null => checkAction(snap, { target, name, action }, busy)?.reason ?? null;
  return { start: one('start'), stop: one('stop'), restart: one('restart') };
}

/** `vm:<name>` or `backend:<id>`. */
export function targetKey(req: Pick<ControlRequest, 'target' | 'name'>): string {
  return `${req.target}:${req.name}`;
}

const RUNNING_VM = new Set<VmStatus['state']>(['booting', 'ready']);
const ENDED_VM = new Set<VmStatus['state']>(['exited', 'failed', 'stopped']);

function vmRule(vm: VmStatus, action: ControlVerb, backends: readonly BackendStatus[]): ControlDenial | undefined {
  if (vm.state === 'pending') return { code: 'refused', reason: `VM ${vm.name} has not been started by the run yet` };
  if (action === 'stop') return RUNNING_VM.has(vm.state) ? undefined : { code: 'refused', reason: `VM ${vm.name} is not running (${vm.state})` };
  if (action === 'start' && !ENDED_VM.has(vm.state)) return { code: 'refused', reason: `VM ${vm.name} is already running (${vm.state})` };
  // start, and restart: QEMU connects to every back-end of the VM as it starts.
  const down = vm.backends.map((id) => backends.find((b) => b.id === id)).find((b) => b !== undefined && b.state !== 'running');
  if (down !== undefined) return { code: 'refused', reason: `VM ${vm.name} uses back-end ${down.id}, which is ${down.state}; start that first` };
  return undefined;
}

function backendRule(b: BackendStatus, action: ControlVerb): ControlDenial | undefined {
  if (b.restart !== 'on-failure') {
    return {
      code: 'refused',
      reason: `back-end ${b.id} has restart: no, so QEMU would not reconnect to it; only back-ends with restart: on-failure (in the manifest, where the device's QEMU front-end can reconnect) can be stopped, started or restarted`,
    };
  }
  if (b.state === 'starting' || b.state === 'restarting') return { code: 'refused', reason: `back-end ${b.id} is ${b.state}` };
  if (action === 'start' && b.state === 'running') return { code: 'refused', reason: `back-end ${b.id} is already running` };
  if (action === 'stop' && b.state !== 'running') return { code: 'refused', reason: `back-end ${b.id} is not running (${b.state})` };
  return undefined;
}

function unknownTarget(what: string, name: string, known: readonly string[]): string {
  return `this run has no ${what} '${name}'; it has: ${known.length === 0 ? '(none yet)' : known.join(', ')}`;
}
