// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk as a device kind (devices/kind.ts): its options (`avp serve blk` flags and manifest
 * fields), building the device on an image file, the QEMU front-end, guest module, manifest entry
 * (an image relative to the manifest, or a scratch disk of `size` in the run directory) and status
 * summary. `blk-file` and `read-only` are the capability names vhost-user.rst defines for block
 * back-ends; `--blk-file` is accepted as an alias of `--image`.
 */
import { z } from 'zod';
import { DeviceOptionError } from '../errors.js';
import { defineKind } from '../kind.js';
import { boolField, intField, pathField, sizeBytes, sizeField, stringField } from '../options.js';
import { formatCount, metric, metricSum } from '../summary.js';
import { blkConformance } from './conformance.js';
import { type FallocateFn, FileBlockHost } from './host.js';
import { BlkDevice, type BlkOptions } from './model.js';
import { BLK_DEVICE_ID } from './spec.js';

declare module '../kind.js' {
  interface HostCapabilities {
    /** fallocate(2), for hole punching (virtio-blk DISCARD / WRITE_ZEROES). */
    fallocate?: FallocateFn;
  }
}

/** Capability names for `--print-capabilities` (vhost-user.rst "Backend program conventions", block). */
export const BLK_CAPABILITIES = ['blk-file', 'read-only'] as const;

const options = z.object({
  image: pathField('the raw image file to serve (required)').optional(),
  blkFile: pathField('alias of --image (the vhost-user capability name)').optional(),
  readOnly: boolField('offer VIRTIO_BLK_F_RO, open the image read-only, fail every write').default(false),
  serial: stringField(/^[\x20-\x7e]{0,20}$/, 'expected at most 20 printable ASCII characters (VIRTIO_BLK_ID_BYTES)', 'serial number returned by GET_ID (at most 20 bytes)').optional(),
  // QEMU caps a virtio device at VIRTIO_QUEUE_MAX (1024) queues; the spec's num_queues is a u16.
  numQueues: intField(1, 1024, 'number of request queues (VIRTIO_BLK_F_MQ when > 1)').default(1),
  queueSize: intField(1, 32768, 'largest queue the driver may set up').default(256),
  blkSize: intField(512, 65536, 'logical block size reported to the guest').default(512),
  writethrough: boolField('start in writethrough mode (the guest can switch it with CONFIG_WCE)').default(false),
  discard: boolField('offer DISCARD and WRITE_ZEROES (--no-discard: do not)').default(true),
});

type Options = z.output<typeof options>;

/** Opens the image and builds the device; the image is closed again if the device refuses the options. */
function create(o: Options, fallocate: FallocateFn | undefined): BlkDevice {
  const file = o.image ?? o.blkFile;
  if (file === undefined) throw new DeviceOptionError('DEVICE_BAD_OPTION', '--image FILE is required: the raw image to serve');
  const host = new FileBlockHost(file, { readOnly: o.readOnly, ...(fallocate === undefined ? {} : { fallocate }) });
  try {
    const opts: BlkOptions = { host, readOnly: o.readOnly, writeback: !o.writethrough, numQueues: o.numQueues, queueMaxSize: o.queueSize, blkSize: o.blkSize };
    if (o.serial !== undefined) opts.serial = o.serial;
    if (!o.discard) {
      opts.discard = false;
      opts.writeZeroes = false;
    }
    return new BlkDevice(opts);
  } catch (e: unknown) {
    host.close();
    if (e instanceof RangeError) throw new DeviceOptionError('DEVICE_BAD_OPTION', e.message, { cause: e });
    throw e;
  }
}

export const blkKind = defineKind({
  name: 'blk',
  virtioId: BLK_DEVICE_ID,
  vhostUserType: 'block',
  description: 'virtio-blk (VIRTIO 1.3 §5.2): a raw image file as a disk, with flush, discard and write-zeroes',
  capabilities: BLK_CAPABILITIES,
  options,
  create: (o, host) => create(o, host.fallocate),
  conformance: blkConformance,
  conformanceSetups: [
    { label: 'writable', options: { image: '{scratch}/disk.img' }, files: { 'disk.img': 16 << 20 }, expected: 'conformance.expected.txt' },
    { label: 'read-only', options: { image: '{scratch}/disk.img', readOnly: true }, files: { 'disk.img': 16 << 20 }, expected: 'conformance.read-only.expected.txt' },
  ],
  frontend: {
    qemuDevice: 'vhost-user-blk-pci',
    props: (o) => ({ 'num-queues': o.numQueues }),
    // QEMU waits for the connection when it creates vhost-user-blk-pci and reconnects (measured,
    // 7.2; and on 10.0.2 with inflight resubmission, 10 kills under I/O: resilience-blk.e2e.test.ts).
    reconnect: true,
    minQemu: '7.2',
  },
  guestModules: ['virtio_blk'],
  manifest: {
    fields: {
      image: pathField(
        'Raw image file, relative to the manifest folder. Created with `size` when missing. Without `image`, a scratch disk of `size` is made in the run directory.',
      ).optional(),
      size: sizeField('Size of the image to create when it does not exist: bytes, or a number with a unit (K, M, G, T; binary multiples), e.g. 64M.').optional(),
      readOnly: options.shape.readOnly,
      serial: options.shape.serial,
      numQueues: options.shape.numQueues.unwrap().optional(),
    },
    check(e, add) {
      if (e['image'] === undefined && e['size'] === undefined) add([], 'a blk device needs image:, size:, or both (size alone makes a scratch disk in the run directory)');
      if (e['size'] !== undefined) {
        const bytes = sizeBytes(e['size']);
        if (bytes === undefined || bytes % 512 !== 0) add(['size'], `expected a whole number of 512-byte sectors; got ${JSON.stringify(e['size'])}`);
      }
    },
    checkFiles(e, ctx, add) {
      const image = e['image'];
      if (typeof image === 'string' && e['size'] === undefined && !ctx.exists(ctx.resolve(image))) {
        add(['image'], `file not found: ${ctx.resolve(image)} (give size: to create it)`);
      }
    },
    plan(e, ctx) {
      const image = typeof e['image'] === 'string' ? ctx.resolveManifestPath(e['image']) : `${ctx.vmDir}/${ctx.name}.img`;
      const bytes = sizeBytes(e['size']);
      return {
        options: {
          image,
          ...(e['readOnly'] === true ? { readOnly: true } : {}),
          ...(e['serial'] === undefined ? {} : { serial: e['serial'] }),
          ...(e['numQueues'] === undefined ? {} : { numQueues: e['numQueues'] }),
        },
        ...(bytes === undefined ? {} : { files: [{ path: image, sizeBytes: bytes }] }),
      };
    },
  },
  summarize: (m) => `read ${formatCount(metric(m, ['bytesRead']))}B, written ${formatCount(metric(m, ['bytesWritten']))}B`,
  series: (m) => [
    // IOPS: every request the device completed, by type (metrics.ts `requests`).
    { key: 'iops', label: 'IOPS', value: metricSum(m, ['requests']), type: 'counter', unit: 'req' },
    { key: 'read', label: 'read', value: metric(m, ['bytesRead']), type: 'counter', unit: 'B' },
    { key: 'written', label: 'written', value: metric(m, ['bytesWritten']), type: 'counter', unit: 'B' },
  ],
});
