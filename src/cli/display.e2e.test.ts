// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: AVP's gpu back-end (`avp serve gpu`) serving a Linux 6.12 guest under QEMU 10.0's
 * vhost-user-gpu-pci (software emulation, `-display none`), with the guest's own virtio-gpu DRM
 * driver and fbcon.
 *
 * The guest checks that fbcon took the framebuffer and that the mode is the back-end's (640x480,
 * from GET_DISPLAY_INFO and our EDID), stops fbcon drawing (cursor blink off, unbound), and writes
 * a known pattern to /dev/fb0 (16 colour blocks). The host then sees that pattern pixel for pixel
 * twice: in the PNG the back-end writes on request through its control socket, and in QEMU's own
 * display (QMP screendump), which our display-socket messages fed.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePng } from '../devices/gpu/index.js';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { QemuVm, findQemu, qemuArgs, type VmDevice } from '../platform/qemu.js';
import { parseGuestKv } from '../platform/image/markers.js';
import { vhostUserDevice } from '../platform/attach.js';
import { controlRequest } from './control-client.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';
import { qmpCommand, readPpm } from './testing/qmp.js';

const BOOT_MS = 300_000;
/** How long the host waits for a frame to show what the guest drew (deferred fbdev I/O, TCG). */
const FRAME_MS = 120_000;
const W = 640;
const H = 480;

/** The eight colours of the pattern as (B, G, R) bytes, the B8G8R8X8 memory order fbdev uses. */
const COLOURS: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 255],
  [0, 255, 0],
  [255, 0, 0],
  [255, 255, 255],
  [0, 255, 255],
  [255, 0, 255],
  [255, 255, 0],
  [64, 128, 192],
];

/** RGB the pattern has at (x, y): 8 bands of 80 px; the bottom half in reverse band order. */
function expectedRgb(x: number, y: number): [number, number, number] {
  const band = Math.floor(x / 80);
  const c = COLOURS[y < H / 2 ? band : 7 - band] ?? [0, 0, 0];
  return [c[2], c[1], c[0]];
}

/** The guest side: check fbcon, stop it drawing, write the pattern, report, wait to be stopped. */
const DRAW = `cd /tmp
avp-kv fb "$(cat /sys/class/graphics/fb0/virtual_size) $(cat /sys/class/graphics/fb0/stride) $(cat /sys/class/graphics/fb0/bits_per_pixel)"
avp-kv fbcon "$(cat /sys/class/vtconsole/vtcon1/name)"
mk() { printf "\\\\$(printf %o $2)\\\\$(printf %o $3)\\\\$(printf %o $4)\\\\0" > c$1; for n in 1 2 3 4; do cat c$1 c$1 > t; mv t c$1; done; cat c$1 c$1 c$1 c$1 c$1 > t; mv t c$1; }
${COLOURS.map((c, i) => `mk ${i} ${c.join(' ')}`).join('\n')}
cat c0 c1 c2 c3 c4 c5 c6 c7 > ra
cat c7 c6 c5 c4 c3 c2 c1 c0 > rb
for r in ra rb; do for n in 1 2 3 4; do cat $r $r > t; mv t $r; done; cat $r $r $r $r $r $r $r $r $r $r $r $r $r $r $r > t; mv t $r; done
echo 0 > /sys/class/graphics/fbcon/cursor_blink
echo 0 > /sys/class/vtconsole/vtcon1/bind
cat ra rb > /dev/fb0
avp-kv drawn "$(cat ra rb | wc -c)"
sleep 600
`;

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];
const vms: QemuVm[] = [];

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-display-'));
});

after(async () => {
  await Promise.all(vms.map((v) => v.kill()));
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Boots the built-in image with `devices` and a QMP socket; returns the VM and the QMP path. */
async function boot(devices: readonly VmDevice[], script: string): Promise<{ vm: QemuVm; qmp: string }> {
  const qmp = join(dir, 'qmp.sock');
  const args = qemuArgs({ kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(script)] });
  const vm = await QemuVm.spawn(findQemu(), [...args, '-qmp', `unix:${qmp},server=on,wait=off`]);
  vms.push(vm);
  return { vm, qmp };
}

/** The first pixel (x, y) where `rgbAt` differs from the pattern, or null when all match. */
function firstDifference(width: number, height: number, rgbAt: (x: number, y: number) => readonly number[]): string | null {
  if (width !== W || height !== H) return `size ${width}x${height}, expected ${W}x${H}`;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const got = rgbAt(x, y);
      const want = expectedRgb(x, y);
      if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) return `pixel ${x},${y} is ${got.join(',')}, expected ${want.join(',')}`;
    }
  }
  return null;
}

/** Retries `look` until it reports no difference or `FRAME_MS` passes; returns the last difference. */
async function waitForFrame(look: () => Promise<string | null>): Promise<string | null> {
  const end = Date.now() + FRAME_MS;
  let last: string | null = 'never looked';
  while (Date.now() < end) {
    last = await look();
    if (last === null) return null;
    // Each look renders or dumps a whole frame; a short pause keeps a loaded host usable.
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

test('e2e: the guest draws on /dev/fb0; the back-end screenshot and QEMU display match it pixel for pixel', async () => {
  const gpu = await startBackend('gpu', ['--width', String(W), '--height', String(H), '--control-socket', join(dir, 'gpu.ctl'), '--snapshot-dir', dir]);
  backends.push(gpu);
  const { vm, qmp } = await boot([vhostUserDevice('gpu', gpu.socket, { width: W, height: H }, { qemuVersion: '10.0' })], DRAW);
  await vm.waitForLine(/AVP-GUEST: KV drawn=/, BOOT_MS);
  const kv = parseGuestKv(vm.lines);
  assert.equal(kv.get('fb'), `${W},${H} ${W * 4} 32`, 'the mode is the back-end\'s');
  assert.match(kv.get('fbcon') ?? '', /frame buffer device/, 'fbcon was bound to the framebuffer');
  assert.equal(kv.get('drawn'), String(W * H * 4));

  const shot = join(dir, 'shot.png');
  const host = await waitForFrame(async () => {
    await controlRequest(join(dir, 'gpu.ctl'), `screenshot 0 ${shot}`);
    const png = decodePng(readFileSync(shot));
    return firstDifference(png.width, png.height, (x, y) => [...png.rgba.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)]);
  });
  assert.equal(host, null, `the back-end's screenshot: ${host ?? ''}`);

  const dump = join(dir, 'qemu.ppm');
  const qemu = await waitForFrame(async () => {
    await qmpCommand(qmp, 'screendump', { filename: dump });
    const ppm = readPpm(dump);
    return firstDifference(ppm.width, ppm.height, (x, y) => [...ppm.rgb.subarray((y * ppm.width + x) * 3, (y * ppm.width + x) * 3 + 3)]);
  });
  assert.equal(qemu, null, `QEMU's display (screendump): ${qemu ?? ''}`);

  const info = await controlRequest(join(dir, 'gpu.ctl'), 'info');
  const m = info['metrics'] as { display: { offered: string; droppedUpdates: number }; scanouts: Array<{ frames: number }> };
  assert.ok((m.scanouts[0]?.frames ?? 0) > 0, 'frames were counted');
  assert.equal(m.display.offered, '0x3', 'QEMU 10 offers display protocol features EDID and DMABUF2');
});
