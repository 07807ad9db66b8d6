// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: build the guest image from Debian packages and boot it under the real QEMU with
 * QEMU's own (built-in) virtio-rng-pci and virtio-blk-pci, proving the image (kernel, modules,
 * /init, helpers) and the harness (argv, console waits, exit, cleanup) before any AVP back-end.
 *
 * Needs qemu-system-x86, busybox-static, kmod and apt access (scripts/setup.sh); fails, not
 * skips, when QEMU is missing. Every VM is killed and every temp file removed in finally/after.
 * Times are generous: a TCG boot on a loaded 2-core host takes 10-30 s.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, cmdParam, failedModules, scriptParam, type GuestImage } from './image/index.js';
import { normalizeModuleName } from './image/modules.js';
import { EXIT_LINE, READY_LINE } from './image/markers.js';
import { detectAccel, findQemu, liveVmCount, runGuest, withVm, type Accel, type VmSpec } from './qemu.js';

const RUN_MS = 180_000;
const TEST_MS = 300_000;
let image: GuestImage;
let accel: Accel;
let dir = '';

before(async () => {
  // Fails the whole file, with the "run bash scripts/setup.sh" message, when QEMU is missing.
  findQemu();
  dir = await mkdtemp(join(tmpdir(), 'avp-image-e2e-'));
  image = await buildGuestImage();
  accel = await detectAccel();
}, { timeout: TEST_MS });

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  assert.equal(liveVmCount(), 0, 'a VM outlived its test');
});

function spec(extra: Partial<VmSpec> = {}): VmSpec {
  return { kernel: image.kernel, initrd: image.initramfs, accel, cmdlineLimit: image.cmdlineLimit, ...extra };
}

const DISK_BYTES = 8 << 20;
const WRITE_OFFSET = 3 << 20; // where the guest writes, 4 KiB blocks: 768
const WRITE_BYTES = 1 << 20; // 256 blocks of 4 KiB
const HOST_MARK = 'avp-host-marker!'; // 16 bytes the host puts at offset 0 for the guest to read

const DEVICE_SCRIPT = `
avp-wait-match /sys/class/misc/hw_random/rng_current '^virtio_rng' 15 || exit 10
avp-kv rng_current "$(cat /sys/class/misc/hw_random/rng_current)"
avp-kv rng_bytes "$(dd if=/dev/hwrng bs=64 count=16 2>/dev/null | wc -c)"
avp-kv rng_sample "$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 -v | tr -d ' \\n')"
avp-wait /dev/vda 15 || exit 11
avp-kv vda_sectors "$(cat /sys/block/vda/size)"
avp-kv head "$(dd if=/dev/vda bs=16 count=1 2>/dev/null)"
dd if=/dev/urandom of=/tmp/payload bs=4096 count=256 2>/dev/null || exit 12
dd if=/tmp/payload of=/dev/vda bs=4096 seek=768 conv=fsync 2>/dev/null || exit 13
avp-kv written "$(sha256sum /tmp/payload | cut -d' ' -f1)"
echo 3 > /proc/sys/vm/drop_caches
avp-kv readback "$(dd if=/dev/vda bs=4096 skip=768 count=256 2>/dev/null | sha256sum | cut -d' ' -f1)"
avp-kv modules "$(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' ')"
`;

async function readRange(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

test('built-in virtio-rng and virtio-blk work in the guest; guest writes reach the host file', { timeout: TEST_MS }, async (t) => {
  const disk = join(dir, 'disk.img');
  const fh = await open(disk, 'w');
  try {
    await fh.write(HOST_MARK, 0);
  } finally {
    await fh.close();
  }
  await truncate(disk, DISK_BYTES);
  try {
    const run = await runGuest(
      spec({ append: [scriptParam(DEVICE_SCRIPT)], devices: [{ kind: 'virtio-rng' }, { kind: 'virtio-blk', file: disk }] }),
      { timeoutMs: RUN_MS },
    );
    t.diagnostic(`accel ${accel}: READY after ${(run.readyMs / 1000).toFixed(1)} s, QEMU exit after ${(run.totalMs / 1000).toFixed(1)} s`);
    const kv = run.kv;
    const context = `\n${run.lines.slice(-30).join('\n')}`;
    assert.equal(run.status, 0, `guest script failed${context}`);
    assert.deepEqual(failedModules(run.lines), [], context);
    assert.match(kv.get('rng_current') ?? '', /^virtio_rng\.\d+$/);
    assert.equal(kv.get('rng_bytes'), '1024');
    assert.match(kv.get('rng_sample') ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(kv.get('rng_sample'), '0'.repeat(64));
    assert.equal(kv.get('vda_sectors'), String(DISK_BYTES / 512));
    assert.equal(kv.get('head'), HOST_MARK);
    assert.match(kv.get('written') ?? '', /^[0-9a-f]{64}$/);
    assert.equal(kv.get('readback'), kv.get('written'), 'the guest read back other data than it wrote');
    const onHost = createHash('sha256').update(await readRange(disk, WRITE_OFFSET, WRITE_BYTES)).digest('hex');
    assert.equal(onHost, kv.get('written'), 'the host file does not hold what the guest wrote at 3 MiB');
    const loaded = new Set((kv.get('modules') ?? '').split(' ').filter((m) => m !== ''));
    for (const m of image.modules) assert.ok(loaded.has(normalizeModuleName(m)), `module ${m} is not loaded${context}`);
    assert.deepEqual(run.exit, { code: 0, signal: null });
  } finally {
    await rm(disk, { force: true });
  }
});

test('avp.cmd runs one command; its exit status is reported and QEMU powers off', { timeout: TEST_MS }, async () => {
  const run = await runGuest(spec({ append: [cmdParam("avp-kv kernel $(uname -r); exit 7")] }), { timeoutMs: RUN_MS });
  assert.equal(run.status, 7);
  assert.equal(run.kv.get('kernel'), image.kernelVersion);
  assert.deepEqual(run.exit, { code: 0, signal: null });
});

test('a kernel panic ends QEMU (panic=-1 with -no-reboot)', { timeout: TEST_MS }, async () => {
  await withVm(spec({ append: [cmdParam('echo c > /proc/sysrq-trigger')] }), async (vm) => {
    await vm.waitForLine(READY_LINE, RUN_MS);
    await vm.waitForLine(/Kernel panic/, RUN_MS);
    const exit = await vm.waitForExit(RUN_MS);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(!vm.lines.some((l) => EXIT_LINE.test(l)), 'the script should not have finished');
  });
});

test('a script baked into the image runs when the command line has none', { timeout: TEST_MS }, async () => {
  const baked = await buildGuestImage({ script: 'avp-kv baked yes\nexit 4\n' });
  assert.equal(baked.hasBakedScript, true);
  assert.notEqual(baked.initramfs, image.initramfs);
  const run = await runGuest(
    { kernel: baked.kernel, initrd: baked.initramfs, accel, cmdlineLimit: baked.cmdlineLimit },
    { timeoutMs: RUN_MS },
  );
  assert.equal(run.status, 4);
  assert.equal(run.kv.get('baked'), 'yes');
  // The command line wins over the baked script.
  const over = await runGuest(
    { kernel: baked.kernel, initrd: baked.initramfs, accel, append: [cmdParam('exit 0')] },
    { timeoutMs: RUN_MS },
  );
  assert.equal(over.status, 0);
  assert.equal(over.kv.get('baked'), undefined);
});
