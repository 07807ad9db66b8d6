// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: Debian 12's QEMU 7.2 still serves AVP's rng and blk back-ends to the 6.12 guest,
 * now that scripts/setup.sh installs QEMU 10.0 system-wide. QEMU 7.2 is unpacked into the cache
 * (platform/qemu-legacy.ts) and run through its wrapper, as `AVP_QEMU=<wrapper>` would. Also
 * checks the front-end rules against the real 7.2: vhost-user-input-pci is refused under TCG and
 * vhost-user-snd-pci does not exist, as avp validate/run and avp doctor say. And gpio, i2c and
 * crypto on 7.2: gpio without interrupts (7.2 never lets the guest negotiate
 * VIRTIO_GPIO_F_IRQ), i2c with its 4-entry ring, crypto with the 632-byte session layout and
 * `vectors=0` (without it 7.2 segfaults under TCG), the kernel's cbc(aes) self-test passing.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { qemuArgs, runGuest } from '../platform/qemu.js';
import { canAttach, formatVersion, type QemuCaps } from '../platform/qemu-caps.js';
import { vhostUserDevice } from '../platform/attach.js';
import { ensureDebianQemu72 } from '../platform/qemu-legacy.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const BOOT_MS = 240_000;
let image: GuestImage;
let qemu: { binary: string; caps: QemuCaps };
let dir = '';
const backends: BackendProcess[] = [];

before(async () => {
  qemu = await ensureDebianQemu72({ onProgress: (m) => process.stderr.write(`qemu 7.2: ${m}\n`) });
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-e2e-q72-'));
}, { timeout: 600_000 });

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('QEMU 7.2 front-ends: input needs KVM, no vhost-user-snd; rng, blk, net, vsock attach', () => {
  assert.equal(`${qemu.caps.version.major}.${qemu.caps.version.minor}`, '7.2');
  const input = canAttach(qemu.caps, 'vhost-user-input-pci', 'tcg');
  assert.equal(input.ok, false);
  assert.match(input.ok ? '' : input.reason, /needs KVM/);
  assert.equal(canAttach(qemu.caps, 'vhost-user-snd-pci', 'tcg').ok, false);
  for (const d of ['vhost-user-rng-pci', 'vhost-user-blk-pci', 'virtio-net-pci', 'vhost-user-vsock-pci']) assert.deepEqual(canAttach(qemu.caps, d, 'tcg'), { ok: true }, d);
});

test('e2e: AVP rng and blk back-ends serve the 6.12 guest under QEMU 7.2', { timeout: BOOT_MS + 60_000 }, async () => {
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, 16 << 20);
  closeSync(fd);
  const rng = await startBackend('rng');
  backends.push(rng);
  const blk = await startBackend('blk', ['--image', disk]);
  backends.push(blk);
  const script = `
avp-wait-match /sys/class/misc/hw_random/rng_current '^virtio_rng' 20 || exit 10
avp-kv rng_bytes "$(dd if=/dev/hwrng bs=64 count=32 2>/dev/null | wc -c)"
avp-wait /dev/vda 20 || exit 11
avp-kv vda_sectors "$(cat /sys/block/vda/size)"
printf 'avp-qemu-7.2-ok' | dd of=/dev/vda bs=4096 seek=10 conv=sync,fsync 2>/dev/null || exit 12
avp-kv kernel "$(uname -r)"
`;
  const spec = {
    kernel: image.kernel,
    initrd: image.initramfs,
    cmdlineLimit: image.cmdlineLimit,
    devices: [vhostUserDevice('rng', rng.socket, {}, { qemuVersion: formatVersion(qemu.caps.version) }), vhostUserDevice('blk', blk.socket, {}, { qemuVersion: formatVersion(qemu.caps.version) })],
    append: [scriptParam(script)],
  };
  const run = await runGuest(spec, { binary: qemu.binary, timeoutMs: BOOT_MS, expectStatus: 0 });
  assert.equal(run.kv.get('rng_bytes'), '2048');
  assert.equal(run.kv.get('vda_sectors'), String((16 << 20) / 512));
  assert.match(run.kv.get('kernel') ?? '', /^6\.12\./);
  const back = Buffer.alloc(15);
  const rfd = openSync(disk, 'r');
  readSync(rfd, back, 0, 15, 10 * 4096);
  closeSync(rfd);
  assert.equal(back.toString(), 'avp-qemu-7.2-ok');
  // The 7.2 argv keeps its quirk for vhost-user virtio-net.
  const net = qemuArgs({ ...spec, devices: [vhostUserDevice('net', '/s', { mac: '52:54:00:00:00:01' }, { qemuVersion: formatVersion(qemu.caps.version) })] }).find((a) => a.startsWith('virtio-net-pci,'));
  assert.match(net ?? '', /,vectors=0,/);
});

test('e2e: AVP gpio, i2c and crypto back-ends serve the 6.12 guest under QEMU 7.2 (gpio without interrupts, crypto with vectors=0)', { timeout: BOOT_MS + 60_000 }, async () => {
  const version = formatVersion(qemu.caps.version);
  const gpio = await startBackend('gpio', ['--lines', 'door:in=1,led:out']);
  backends.push(gpio);
  const i2c = await startBackend('i2c', ['--sensor', '0x48', '--temperature', '42.5']);
  backends.push(i2c);
  const crypto = await startBackend('crypto');
  backends.push(crypto);
  const script = `
for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" = 0x0029 ] && avp-kv gpio_irq "$(cut -c1 $d/features)"; done
avp-kv door "$(gpioget gpiochip0 0)"
echo lm75 0x48 > /sys/bus/i2c/devices/i2c-0/new_device
avp-kv temp "$(cat /sys/bus/i2c/devices/0-0048/hwmon/hwmon*/temp1_input)"
i=0; while [ "$(grep -A6 'virtio_crypto_aes_cbc' /proc/crypto | grep selftest | tr -d ' ')" != selftest:passed ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
avp-kv selftest "$(grep -A5 'driver       : virtio_crypto_aes_cbc' /proc/crypto | grep selftest | cut -d: -f2 | xargs)"
`;
  const devices = [vhostUserDevice('gpio', gpio.socket, {}, { qemuVersion: version }), vhostUserDevice('i2c', i2c.socket, {}, { qemuVersion: version }), vhostUserDevice('crypto', crypto.socket, {}, { qemuVersion: version })];
  assert.match(qemuArgs({ kernel: image.kernel, initrd: image.initramfs, devices }).find((a) => a.startsWith('virtio-crypto-pci,')) ?? '', /,vectors=0,/);
  const run = await runGuest({ kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(script)] }, { binary: qemu.binary, timeoutMs: BOOT_MS, expectStatus: 0 });
  assert.equal(run.kv.get('gpio_irq'), '0', 'QEMU 7.2 does not let the guest negotiate VIRTIO_GPIO_F_IRQ');
  assert.equal(run.kv.get('door'), '1');
  assert.equal(run.kv.get('temp'), '42500');
  assert.equal(run.kv.get('selftest'), 'passed');
});
