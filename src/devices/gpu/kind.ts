// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu 2D as a device kind (devices/kind.ts): scanouts of a size from options, a host memory
 * budget for resources, QEMU 10's vhost-user-gpu-pci as the front-end (its display shows our
 * scanouts through the display socket), Linux's virtio-gpu DRM driver (with fbcon) in the guest,
 * and the host's view: PNG snapshots through a control socket and of the last frame at reset.
 *
 * Control socket (`--control-socket PATH`; in a platform run `<runDir>/<vm>/<name>.ctl`): one
 * request per line, one JSON line per reply (devices/control-socket.ts):
 *   screenshot [SCANOUT] [PATH]  → {"ok":true,"path":...,"width":...,"height":...,"frame":N}
 *                                  PATH absolute; default <snapshot-dir>/<prefix>-scanout<N>.png
 *   info                         → {"ok":true,"metrics":{...}} (metrics.ts)
 *
 * In a manifest a display is a device: `- kind: gpu` with `width`/`height` (and `scanouts`), so
 * it gets its socket, log, isolation and restart like every device, and several displays are
 * several entries. `avp run` keeps the last frame of each scanout in the VM's folder
 * (`<vm>/<name>-scanout<N>.png`) and `avp screenshot VM` asks the control socket for a new one.
 */
import { z } from 'zod';
import { DeviceOptionError } from '../errors.js';
import { defineKind } from '../kind.js';
import { boolField, intField, pathField, sizeBytes, sizeField } from '../options.js';
import { metric } from '../summary.js';
import { gpuConformance } from './conformance.js';
import { EDID_MAX_ACTIVE } from './edid.js';
import { fileGpuHost } from './host.js';
import { GpuDevice } from './model.js';
import { GPU_DEVICE_ID, VIRTIO_GPU_MAX_SCANOUTS } from './spec.js';

const width = intField(16, EDID_MAX_ACTIVE, 'width of each scanout in pixels (what GET_DISPLAY_INFO and the EDID report)');
const height = intField(16, EDID_MAX_ACTIVE, 'height of each scanout in pixels');
const scanouts = intField(1, VIRTIO_GPU_MAX_SCANOUTS, 'number of scanouts (displays), 1 to 16; QEMU gets max_outputs to match');

const options = z.object({
  width: width.default(1280),
  height: height.default(720),
  scanouts: scanouts.default(1),
  edid: boolField('offer VIRTIO_GPU_F_EDID and answer GET_EDID (--no-edid: do not)').default(true),
  maxResources: intField(1, 65536, 'resources the guest may hold at once').default(1024),
  maxHostMemory: sizeField('host memory budget for resource images (bytes, or with a unit: 256M)').default('256M'),
  snapshotDir: pathField('folder for screenshots; the last frame of each scanout is saved there at device reset').optional(),
  snapshotPrefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { error: 'expected 1-32 letters, digits, _ or -' }).meta({ description: 'file name prefix of screenshots (<prefix>-scanout<N>.png)' }).default('gpu'),
  controlSocket: pathField('Unix socket for screenshot requests (one per line, JSON replies)').optional(),
});

export const gpuKind = defineKind({
  name: 'gpu',
  virtioId: GPU_DEVICE_ID,
  vhostUserType: 'gpu',
  description: 'virtio-gpu 2D (VIRTIO 1.3 §5.7): scanouts the guest draws on, shown by QEMU and saved as PNG on the host',
  capabilities: ['width', 'height', 'scanouts', 'control-socket'],
  options,
  create: (o, host) => {
    const maxHostBytes = sizeBytes(o.maxHostMemory);
    if (maxHostBytes === undefined) throw new DeviceOptionError('DEVICE_BAD_OPTION', `--max-host-memory: expected a size such as 256M, got ${String(o.maxHostMemory)}`);
    return new GpuDevice({
      scanouts: o.scanouts,
      width: o.width,
      height: o.height,
      edid: o.edid,
      maxResources: o.maxResources,
      maxHostBytes,
      snapshotPrefix: o.snapshotPrefix,
      ...(o.snapshotDir === undefined ? {} : { snapshotDir: o.snapshotDir }),
      ...(o.controlSocket === undefined ? {} : { controlSocket: o.controlSocket }),
      host: fileGpuHost(host.unixStreams),
    });
  },
  conformance: gpuConformance,
  conformanceSetups: [{ label: 'default', options: {}, expected: 'conformance.expected.txt' }],
  frontend: {
    // QEMU 10's vhost-user-gpu-pci: num_scanouts comes from its own max_outputs (not from our
    // config), xres/yres size its display-info reply on the display socket, edid=on without an
    // EDID-offering back-end only prints a warning.
    qemuDevice: 'vhost-user-gpu-pci',
    props: (o) => ({ max_outputs: o.scanouts, xres: o.width, yres: o.height, edid: o.edid ? 'on' : 'off' }),
    reconnect: false,
    // QEMU 7.2's vhost-user-gpu-pci needs KVM (device-wave-2.md §1.1); 8.0 dropped that check.
    minQemu: '10.0',
  },
  guestModules: ['virtio-gpu'],
  manifest: {
    fields: {
      width: width.optional(),
      height: height.optional(),
      scanouts: scanouts.optional(),
      maxHostMemory: options.shape.maxHostMemory.unwrap().optional(),
    },
    plan: (e, ctx) => {
      const control = `${ctx.vmDir}/${ctx.name}.ctl`;
      return {
        options: {
          ...Object.fromEntries(['width', 'height', 'scanouts', 'maxHostMemory'].filter((k) => e[k] !== undefined).map((k) => [k, e[k]])),
          snapshotDir: ctx.vmDir,
          snapshotPrefix: ctx.name,
          controlSocket: control,
        },
        hostSockets: [control],
      };
    },
  },
  hostView: (o) =>
    o.controlSocket === undefined
      ? undefined
      : {
          controlSocket: o.controlSocket,
          displays: Array.from({ length: o.scanouts }, (_, scanout) => ({
            scanout,
            width: o.width,
            height: o.height,
            ...(o.snapshotDir === undefined ? {} : { lastFrame: `${o.snapshotDir}/${o.snapshotPrefix}-scanout${scanout}.png` }),
          })),
        },
  summarize: (m) => {
    const scanoutList = Array.isArray(m['scanouts']) ? (m['scanouts'] as unknown[]) : [];
    const frames = scanoutList.reduce((n: number, s) => n + metric(s, ['frames']), 0);
    return `${frames} frames, ${metric(m, ['resources', 'count'])} res, display ${metric(m, ['display', 'messages'])} msgs`;
  },
});
