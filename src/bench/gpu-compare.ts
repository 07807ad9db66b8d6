// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:gpu`: frames per second of full-screen updates of a 1280x720 scanout, AVP's gpu
 * back-end (`avp serve gpu` behind QEMU's vhost-user-gpu-pci, QEMU's display fed through the
 * display socket) against QEMU's built-in virtio-gpu-pci, in the same Linux 6.12 guest image,
 * alternating whole rounds (AVP, QEMU, AVP, QEMU, ...) so that machine load hits both alike.
 *
 * What is measured, in the guest, the same way for both devices: fbcon is unbound, then for
 * AVP_BENCH_SECONDS the guest writes whole frames to /dev/fb0 (one 3.6 MB write() each, so the
 * DRM fbdev damage worker sends one full-screen TRANSFER_TO_HOST_2D + RESOURCE_FLUSH per frame
 * it picks up). The virtio_gpu_cmd_queue and virtio_gpu_cmd_response tracepoints count the
 * RESOURCE_FLUSH commands and time them: frames/s = flushes / (last response - first flush).
 * Writes the device cannot keep up with are merged by the damage worker, so a slower device shows
 * fewer flushes per second. Prints every round, then the medians and the AVP/QEMU ratio.
 *
 * Environment: AVP_BENCH_ROUNDS (default 2), AVP_BENCH_SECONDS per boot (default 10),
 * AVP_CACHE_DIR (the guest image). Back-ends and VMs are always stopped.
 */
import { fileURLToPath } from 'node:url';
import { vhostUserDevice } from '../platform/attach.js';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { parseGuestKv } from '../platform/image/markers.js';
import { QemuVm, findQemu, qemuArgs, type VmDevice } from '../platform/qemu.js';
import { SpawnedBackend } from '../vhost-user/spawn.js';
import { reportLoad } from './load.js';
import { emitBenchOutput, median } from './results.js';

const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 2);
const SECONDS = Number(process.env['AVP_BENCH_SECONDS'] ?? 10);
const W = 1280;
const H = 720;
const AVP_BIN = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));
const BOOT_MS = 300_000;

/** The guest: stop fbcon, write frames for SECONDS, then report flushes and their time span. */
const SCRIPT = `T=/sys/kernel/tracing; mount -t tracefs nodev $T
echo 0 > /sys/class/graphics/fbcon/cursor_blink; echo 0 > /sys/class/vtconsole/vtcon1/bind
avp-kv fb "$(cat /sys/class/graphics/fb0/virtual_size)"
head -c ${W * H * 4} /dev/urandom > /tmp/f
for e in queue response; do echo 1 > $T/events/virtio_gpu/virtio_gpu_cmd_$e/enable; done
echo > $T/trace
s=$(cut -d. -f1 /proc/uptime); n=0
while [ $(( $(cut -d. -f1 /proc/uptime) - s )) -lt ${SECONDS} ]; do dd if=/tmp/f of=/dev/fb0 bs=${W * H * 4} 2>/dev/null; n=$((n+1)); done
sleep 2
echo 0 > $T/tracing_on
avp-kv writes $n
avp-kv flushes "$(awk '/cmd_queue:.*type=0x104 /{n++; if(!f) f=$0} /cmd_response:/{l=$0} END{split(f,a,": "); split(l,b,": "); sub(/.* /,"",a[1]); sub(/.* /,"",b[1]); print n, b[1]-a[1]}' $T/trace)"
`;

interface Result {
  fps: number;
  flushes: number;
  seconds: number;
  writes: number;
}


/** Boots the guest with `devices` (+ `extra` QEMU arguments) and returns its measurement. */
async function boot(image: GuestImage, devices: readonly VmDevice[], extra: readonly string[]): Promise<Result> {
  const args = qemuArgs({ kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(SCRIPT)] });
  const vm = await QemuVm.spawn(findQemu(), [...args, ...extra]);
  try {
    await vm.waitForLine(/AVP-GUEST: EXIT \d+/, BOOT_MS + SECONDS * 1000);
  } finally {
    await vm.kill();
  }
  const kv = parseGuestKv(vm.lines);
  if (kv.get('fb') !== `${W},${H}`) throw new Error(`the guest's framebuffer is ${kv.get('fb') ?? 'missing'}, not ${W},${H}; console:\n${vm.tail().join('\n')}`);
  const [flushes, seconds] = (kv.get('flushes') ?? '').split(' ').map(Number);
  if (flushes === undefined || seconds === undefined || !(seconds > 0)) throw new Error(`no flush measurement in the guest's output: ${kv.get('flushes') ?? 'missing'}`);
  return { fps: flushes / seconds, flushes, seconds, writes: Number(kv.get('writes')) };
}

async function main(): Promise<void> {
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const image = await buildGuestImage({ onProgress: (m) => log(`image: ${m}`) });
  log(`gpu benchmark: ${W}x${H} full-screen updates, ${ROUNDS} round(s) of ${SECONDS} s per device, node ${process.version}`);
  const runs: Record<'AVP' | 'QEMU', Result[]> = { AVP: [], QEMU: [] };
  const loadBefore = await reportLoad('before', log);
  const show = (label: string, r: Result) => log(`  ${label.padEnd(4)} ${r.fps.toFixed(1).padStart(6)} frames/s (${r.flushes} flushes in ${r.seconds.toFixed(2)} s; the guest wrote ${r.writes} frames)`);
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}:`);
    const backend = await SpawnedBackend.start(`${JSON.stringify(process.execPath)} ${AVP_BIN} serve gpu --socket-path {socket} --width ${W} --height ${H}`);
    try {
      const r = await boot(image, [vhostUserDevice('gpu', backend.socketPath, { width: W, height: H }, { qemuVersion: '10.0' })], []);
      runs.AVP.push(r);
      show('AVP', r);
    } finally {
      await backend.stop();
    }
    const q = await boot(image, [], ['-device', `virtio-gpu-pci,xres=${W},yres=${H}`]);
    runs.QEMU.push(q);
    show('QEMU', q);
  }
  const a = median(runs.AVP.map((r) => r.fps));
  const q = median(runs.QEMU.map((r) => r.fps));
  process.stdout.write(
    `\nmedians of ${ROUNDS} round(s), ${SECONDS} s each: AVP vhost-user-gpu ${a.toFixed(1)} frames/s, QEMU virtio-gpu-pci ${q.toFixed(1)} frames/s, AVP/QEMU ${(q > 0 ? a / q : Number.NaN).toFixed(2)} (> 1: AVP faster)\n`,
  );
  const loadAfter = await reportLoad('after', log);
  emitBenchOutput({
    bench: 'gpu',
    comparisons: [{ bench: 'gpu', case: `full-screen updates ${W}x${H}`, unit: 'frames/s', higherIsBetter: true, peerName: 'QEMU virtio-gpu-pci', avp: runs.AVP.map((r) => r.fps), peer: runs.QEMU.map((r) => r.fps) }],
    loadBefore,
    loadAfter,
    notes: [`the guest writes whole ${W}x${H} frames to /dev/fb0 for ${SECONDS} s; frames/s = RESOURCE_FLUSH commands completed per second (guest tracepoints)`],
  });
}

await main();
