// SPDX-License-Identifier: Apache-2.0
/**
 * A RunControl for the dashboard's tests: one VM (`cluster`, with one 800×480 display that takes
 * input) using one blk back-end whose request counter the test sets, one bus; it records the
 * actions and input it gets and refuses `start` as the supervisor would for a running VM.
 * Test-only.
 */
import { ControlRefusedError, ControlTargetError } from '../../platform/errors.js';
import type { BalloonInfo, ControlEvent, ControlRequest, ControlSnapshot, InputEvent, RunControl } from '../../platform/run/index.js';

/** A 1×1 PNG. */
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const verdicts: ControlSnapshot['vms'][number]['actions'] = { start: 'already running', stop: null, restart: null };

export class FakeControl implements RunControl {
  acts: ControlRequest[] = [];
  inputs: Array<[string, string, InputEvent]> = [];
  listener: ((e: ControlEvent) => void) | undefined;
  blkRequests = 10;
  /** More VMs for the snapshot (after `cluster`). */
  extraVms: ControlSnapshot['vms'] = [];

  async snapshot(): Promise<ControlSnapshot> {
    return {
      protocol: 1,
      at: Date.now(),
      name: 'cockpit',
      runDir: '/r',
      startedAt: Date.now() - 90_000,
      ending: false,
      vms: [{ name: 'cluster', state: 'ready', pid: 5, startedAt: Date.now() - 80_000, readyAt: Date.now() - 60_000, backends: ['cluster/blk'], actions: verdicts, displays: [{ id: '0', width: 800, height: 480 }], input: true }, ...this.extraVms],
      backends: [
        {
          id: 'cluster/blk',
          kind: 'blk',
          isolation: 'thread',
          state: 'running',
          restarts: 0,
          restart: 'on-failure',
          vms: ['cluster'],
          actions: verdicts,
          ports: [{ name: 'cluster/blk', connected: true, metrics: { device: 'blk', requests: { in: this.blkRequests, out: 2 }, bytesRead: 4096, bytesWritten: 0, note: 'text' }, metricsAt: Date.now() }],
        },
      ],
      buses: [{ name: 'body', kind: 'can' }],
    };
  }
  async consoleTail(vm: string): Promise<string[]> {
    if (vm !== 'cluster') throw new ControlTargetError(`no VM ${vm}`);
    return ['login:', 'AVP-GUEST: ready'];
  }
  async busTail(): Promise<string[]> {
    return ['123#00'];
  }
  async act(req: ControlRequest): Promise<string> {
    this.acts.push(req);
    if (req.name === 'nope') throw new ControlTargetError("this run has no VM 'nope'");
    if (req.action === 'start') throw new ControlRefusedError('VM cluster is already running (ready)');
    return `VM ${req.name} ${req.action}ed`;
  }
  async screenshot(vm: string, display: string): Promise<Buffer> {
    if (vm !== 'cluster' || display !== '0') throw new ControlTargetError(`VM ${vm} has no display ${display}`);
    return PNG;
  }
  async input(vm: string, display: string, event: InputEvent): Promise<void> {
    this.inputs.push([vm, display, event]);
  }
  async balloon(vm: string, targetBytes?: number): Promise<BalloonInfo> {
    if (vm !== 'cluster') throw new ControlTargetError(`this run has no VM '${vm}'`);
    const memory = 256 * 2 ** 20;
    return { vm, memory, actual: targetBytes ?? memory, ...(targetBytes === undefined ? {} : { target: targetBytes }) };
  }
  subscribe(listener: (e: ControlEvent) => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
}

