// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: AVP's gpu and input back-ends (`avp serve gpu`, `avp serve input` as a keyboard and
 * as a multitouch screen) serving a Linux 6.12 guest under QEMU 10.0's vhost-user-gpu-pci and
 * vhost-user-input-pci (software emulation, `-display none`), with the guest's own virtio-gpu DRM
 * driver, fbcon, virtio_input and evdev.
 *
 * Input: the guest finds its two devices by name, reads /dev/input/eventN with dd while the host
 * injects `key KEY_ENTER` and `touch 120,300` through the control sockets, and prints the evdev
 * events it got (type, code, value of each 24-byte input_event); they must be exactly the frames
 * the kernel passes on. The guest then sets Caps Lock through the keyboard's evdev node and the
 * host sees the LED on the status queue (written with one 24-byte write: evdev refuses shorter
 * ones, so the event is assembled in a file first).
 *
 * Display: the guest checks that fbcon took the framebuffer and that the mode is the back-end's (640x480,
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
import { controlRequest } from '../platform/control.js';
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

/**
 * The guest side of input: find the devices by name, read 4 keyboard and 10 touch events while the
 * host injects them (the host waits for "listening"), print them as hex type/code/value, then set
 * Caps Lock through the keyboard's event node (EV_LED goes to the device's status queue).
 */
const INPUT = `cd /tmp
e() { for d in /sys/class/input/event*; do [ "$(cat $d/device/name)" = "AVP Virtio $1" ] && basename $d; done; }
k=$(e Keyboard); t=$(e Multitouch)
avp-kv devices "$k $t"
dd if=/dev/input/$k of=K bs=24 count=4 2>/dev/null & a=$!
dd if=/dev/input/$t of=T bs=24 count=10 2>/dev/null & b=$!
for p in $a $b; do until ls -l /proc/$p/fd | grep -q input; do sleep .1; done; done
avp-kv listening yes
wait $a $b
h() { hexdump -ve '24/1 "%02x" "\\n"' $1 | cut -c33-48 | tr '\\n' ' '; }
avp-kv keys "$(h K)"
avp-kv touch "$(h T)"
{ head -c16 /dev/zero; printf '\\21\\0\\1\\0\\1\\0\\0\\0'; } > L; dd if=L of=/dev/input/$k bs=24 2>/dev/null
avp-kv capslock set
`;

/** The events as the guest prints them: type u16, code u16, value s32, little-endian hex. */
function evHex(events: ReadonlyArray<readonly [number, number, number]>): string {
  const le = (n: number, bytes: number) => Array.from({ length: bytes }, (_, i) => (((n >>> (8 * i)) & 0xff) >>> 0).toString(16).padStart(2, '0')).join('');
  return events.map(([t, c, v]) => `${le(t, 2)}${le(c, 2)}${le(v >>> 0, 4)}`).join(' ');
}

/** The guest side of the display: check fbcon, stop it drawing, write the pattern, report, wait to be stopped. */
const DRAW = `avp-kv fb "$(cat /sys/class/graphics/fb0/virtual_size) $(cat /sys/class/graphics/fb0/stride)"
avp-kv fbcon "$(cat /sys/class/vtconsole/vtcon1/name)"
d() { cat $1 $1 > x; cat x x > $1; }
mk() { printf "\\\\$(printf %o $2)\\\\$(printf %o $3)\\\\$(printf %o $4)\\\\0" > c$1; d c$1; d c$1; cat c$1 c$1 c$1 c$1 c$1 > x; mv x c$1; }
${COLOURS.map((c, i) => `mk ${i} ${c.join(' ')}`).join('; ')}
cat c0 c1 c2 c3 c4 c5 c6 c7 > a; cat c7 c6 c5 c4 c3 c2 c1 c0 > b
for r in a b; do d $r; d $r; cat $r $r $r $r $r $r $r $r $r $r $r $r $r $r $r > x; mv x $r; done
echo 0 > /sys/class/graphics/fbcon/cursor_blink
echo 0 > /sys/class/vtconsole/vtcon1/bind
cat a b > /dev/fb0
avp-kv drawn "$(cat a b | wc -c)"
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

/** Retries `look` until it reports nothing wrong or `FRAME_MS` passes; returns the last problem. */
async function waitFor(look: () => Promise<string | null>): Promise<string | null> {
  const end = Date.now() + FRAME_MS;
  let last: string | null = 'never looked';
  while (Date.now() < end) {
    last = await look();
    if (last === null) return null;
    // A look may render or dump a whole frame; a short pause keeps a loaded host usable.
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

test('e2e: a key and a touch reach the guest exactly; Caps Lock reaches the host; the guest draws on /dev/fb0 and the back-end screenshot and QEMU display match it pixel for pixel', async () => {
  const gpuCtl = join(dir, 'gpu.ctl');
  const kbdCtl = join(dir, 'kbd.ctl');
  const mtCtl = join(dir, 'mt.ctl');
  const gpu = await startBackend('gpu', ['--width', String(W), '--height', String(H), '--control-socket', gpuCtl, '--snapshot-dir', dir]);
  backends.push(gpu);
  const kbd = await startBackend('input', ['--type', 'keyboard', '--control-socket', kbdCtl]);
  backends.push(kbd);
  const mt = await startBackend('input', ['--type', 'multitouch', '--width', String(W), '--height', String(H), '--control-socket', mtCtl]);
  backends.push(mt);
  const at = { qemuVersion: '10.0' };
  const { vm, qmp } = await boot(
    [vhostUserDevice('gpu', gpu.socket, { width: W, height: H }, at), vhostUserDevice('input', kbd.socket, {}, at), vhostUserDevice('input', mt.socket, { type: 'multitouch' }, at)],
    `${INPUT}${DRAW}`,
  );

  // Input: inject once the guest reads both event nodes.
  await vm.waitForLine(/AVP-GUEST: KV listening=yes/, BOOT_MS);
  assert.deepEqual(await controlRequest(kbdCtl, 'key KEY_ENTER'), { ok: true, frames: 2, dropped: 0, pending: 0, driver: true });
  assert.equal((await controlRequest(mtCtl, 'touch 120,300'))['ok'], true);
  await vm.waitForLine(/AVP-GUEST: KV capslock=set/, BOOT_MS);
  const kv = parseGuestKv(vm.lines);
  assert.match(kv.get('devices') ?? '', /^event\d+ event\d+$/, 'both devices registered with evdev');
  assert.equal(kv.get('keys')?.trim(), evHex([[1, 28, 1], [0, 0, 0], [1, 28, 0], [0, 0, 0]]), 'KEY_ENTER down, SYN, up, SYN');
  // What we sent, as the kernel passes it on: ABS_MT_SLOT 0 is already the current slot, so the
  // input core drops it (input_handle_abs_event); everything else arrives as sent.
  assert.equal(
    kv.get('touch')?.trim(),
    evHex([[3, 0x39, 0], [3, 0x35, 120], [3, 0x36, 300], [1, 0x14a, 1], [3, 0, 120], [3, 1, 300], [0, 0, 0], [3, 0x39, -1], [1, 0x14a, 0], [0, 0, 0]]),
    'tracking id, position, BTN_TOUCH, ABS_X/Y, SYN; then release',
  );
  const leds = await waitFor(async () => {
    const m = (await controlRequest(kbdCtl, 'info'))['metrics'] as { leds: Record<string, boolean> };
    return m.leds['capslock'] === true ? null : `leds ${JSON.stringify(m.leds)}`;
  });
  assert.equal(leds, null, 'Caps Lock on the status queue');

  // Display.
  await vm.waitForLine(/AVP-GUEST: KV drawn=/, BOOT_MS);
  const dkv = parseGuestKv(vm.lines);
  assert.equal(dkv.get('fb'), `${W},${H} ${W * 4}`, "the mode is the back-end's");
  assert.match(dkv.get('fbcon') ?? '', /frame buffer device/, 'fbcon was bound to the framebuffer');
  assert.equal(dkv.get('drawn'), String(W * H * 4));

  const shot = join(dir, 'shot.png');
  const host = await waitFor(async () => {
    await controlRequest(gpuCtl, `screenshot 0 ${shot}`);
    const png = decodePng(readFileSync(shot));
    return firstDifference(png.width, png.height, (x, y) => [...png.rgba.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)]);
  });
  assert.equal(host, null, `the back-end's screenshot: ${host ?? ''}`);

  const dump = join(dir, 'qemu.ppm');
  const qemu = await waitFor(async () => {
    await qmpCommand(qmp, 'screendump', { filename: dump });
    const ppm = readPpm(dump);
    return firstDifference(ppm.width, ppm.height, (x, y) => [...ppm.rgb.subarray((y * ppm.width + x) * 3, (y * ppm.width + x) * 3 + 3)]);
  });
  assert.equal(qemu, null, `QEMU's display (screendump): ${qemu ?? ''}`);

  const info = await controlRequest(gpuCtl, 'info');
  const m = info['metrics'] as { display: { offered: string; droppedUpdates: number }; scanouts: Array<{ frames: number }> };
  assert.ok((m.scanouts[0]?.frames ?? 0) > 0, 'frames were counted');
  assert.equal(m.display.offered, '0x3', 'QEMU 10 offers display protocol features EDID and DMABUF2');
});
