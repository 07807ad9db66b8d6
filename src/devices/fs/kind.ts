// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-fs as a device kind (devices/kind.ts): `avp serve fs --shared-dir DIR --tag T
 * [--read-only]`, manifest `kind: fs, path, tag, readOnly`, QEMU's vhost-user-fs-pci (which
 * builds the config itself from its `tag` and `num-request-queues` properties), guest module
 * virtiofs. The shared directory is opened through the native calls of sys/fs.ts, which the
 * composition root injects as `HostCapabilities.fsSyscalls`.
 */
import { z } from 'zod';
import { DeviceOptionError } from '../errors.js';
import { defineKind } from '../kind.js';
import { boolField, intField, pathField, stringField } from '../options.js';
import { formatCount, metric } from '../summary.js';
import { fsConformance } from './conformance.js';
import type { FsSyscalls } from './host.js';
import { FsDevice } from './model.js';
import { NativeFsHost } from './native-host.js';
import { FS_DEVICE_ID } from './spec.js';

declare module '../kind.js' {
  interface HostCapabilities {
    /** openat2, O_PATH handles and the other file calls of sys/fs.ts (virtio-fs). */
    fsSyscalls?: FsSyscalls;
  }
}

/** A virtio-fs tag: 1 to 36 characters, no NUL, newline or comma-free is not required (QEMU escapes). */
const TAG_RE = /^[^\0\n]{1,36}$/;

const options = z.object({
  sharedDir: pathField('the host directory to share (required); nothing outside it is reachable').optional(),
  tag: stringField(TAG_RE, 'expected 1 to 36 characters without NUL or newline', 'the mount tag the guest mounts (mount -t virtiofs TAG /mnt)').default('avpfs'),
  readOnly: boolField('refuse every write opcode with EROFS').default(false),
  allowDeviceNodes: boolField('let the guest create character and block device nodes (refused by default)').default(false),
  numRequestQueues: intField(1, 64, 'number of request queues (QEMU: num-request-queues)').default(1),
  maxNodes: intField(16, 1 << 20, 'cap on nodes the guest holds (each an O_PATH fd; lowered to fit the open-file limit)').default(16384),
  maxHandles: intField(16, 65536, 'cap on open files and directories (lowered to fit the open-file limit)').default(1024),
  trace: boolField('log every FUSE request (opcode, node, name, result) at info level').default(false),
});

/** File descriptors kept for everything but nodes and handles (vhost-user, eventfds, memory). */
const FD_RESERVE = 256;

/**
 * Nodes and handles each hold a host fd: the caps are lowered so that together they stay under
 * the process' open-file limit (20000 on the CI machine), so a guest runs into ENFILE/EMFILE
 * replies, never the back-end into EMFILE on its own sockets.
 */
function fdCaps(o: Options, limit: number): { maxNodes: number; maxHandles: number } {
  const room = Math.max(32, limit - FD_RESERVE);
  const maxHandles = Math.min(o.maxHandles, Math.max(16, Math.floor(room / 8)));
  return { maxNodes: Math.min(o.maxNodes, Math.max(16, room - maxHandles)), maxHandles };
}

type Options = z.output<typeof options>;

function create(o: Options, sys: FsSyscalls | undefined): FsDevice {
  if (o.sharedDir === undefined) throw new DeviceOptionError('DEVICE_BAD_OPTION', '--shared-dir DIR is required: the host directory to share');
  if (sys === undefined) throw new DeviceOptionError('DEVICE_BAD_OPTION', 'fs needs the host file calls (HostCapabilities.fsSyscalls); this caller gave none');
  const host = new NativeFsHost(sys, o.sharedDir);
  try {
    const caps = fdCaps(o, sys.openFileLimit());
    return new FsDevice({ host, tag: o.tag, readOnly: o.readOnly, allowDeviceNodes: o.allowDeviceNodes, numRequestQueues: o.numRequestQueues, ...caps, trace: o.trace });
  } catch (e: unknown) {
    host.dispose();
    throw e;
  }
}

export const fsKind = defineKind({
  name: 'fs',
  virtioId: FS_DEVICE_ID,
  vhostUserType: 'fs',
  description: 'virtio-fs (VIRTIO 1.3 §5.11): a host directory shared over FUSE, with no way out of it',
  capabilities: ['shared-dir', 'tag', 'read-only'],
  options,
  create: (o, host) => create(o, host.fsSyscalls),
  conformance: fsConformance,
  conformanceSetups: [
    { label: 'writable', options: { sharedDir: '{scratch}', tag: 'conf' }, files: { 'hello.txt': 4096 }, expected: 'conformance.expected.txt' },
    { label: 'read-only', options: { sharedDir: '{scratch}', tag: 'conf', readOnly: true }, files: { 'hello.txt': 4096 }, expected: 'conformance.read-only.expected.txt' },
  ],
  frontend: {
    qemuDevice: 'vhost-user-fs-pci',
    props: (o) => ({ tag: o.tag, 'num-request-queues': o.numRequestQueues }),
    // Measured with QEMU 10.0.2 (docs/virtio-fs.md): with `reconnect=` on its chardev the device
    // fails to realize ("Failed to set msg fds", "vhost_backend_init failed: Protocol error": the
    // chardev connects in the background and vhost-user-fs does not wait for it); without it, a
    // killed back-end is never reconnected and the guest's next request hangs. A new back-end
    // would also have lost the FUSE session (nodes, handles, INIT) the guest's mount relies on.
    reconnect: false,
    minQemu: '7.2',
  },
  guestModules: ['virtiofs'],
  manifest: {
    fields: {
      path: pathField('The host directory to share, relative to the manifest folder.'),
      tag: options.shape.tag.unwrap().optional(),
      readOnly: options.shape.readOnly.optional(),
    },
    checkFiles(e, ctx, add) {
      const p = e['path'];
      if (typeof p === 'string' && !ctx.exists(ctx.resolve(p))) add(['path'], `directory not found: ${ctx.resolve(p)}`);
    },
    plan(e, ctx) {
      return {
        options: {
          sharedDir: ctx.resolveManifestPath(String(e['path'])),
          ...(e['tag'] === undefined ? {} : { tag: e['tag'] }),
          ...(e['readOnly'] === true ? { readOnly: true } : {}),
        },
      };
    },
  },
  summarize: (m) => `${metric(m, ['requests'])} req, read ${formatCount(metric(m, ['bytesRead']))}B, written ${formatCount(metric(m, ['bytesWritten']))}B`,
});
