// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:boot`: how long the guest image takes to boot under the installed QEMU (TCG),
 * per Debian kernel series (default 6.1 and 6.12, AVP_BENCH_KERNELS=6.1,6.12,6.12-rt), alternating
 * rounds so that machine load hits all alike. Each boot runs the image's init with a trivial
 * script and no devices; it measures the wall-clock time from starting QEMU to the
 * `AVP-GUEST: READY` line (kernel boot, every module loaded, init ready) and to QEMU's exit, plus
 * the guest's own uptime at READY. Prints every round and the medians; AVP_BENCH_ROUNDS (default 3).
 */
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { GUEST_KERNELS, type GuestKernel } from '../platform/image/kernels.js';
import { findQemu, runGuest } from '../platform/qemu.js';
import { formatVersion, probeQemu } from '../platform/qemu-caps.js';
import { reportLoad } from './load.js';
import { emitBenchOutput, median } from './results.js';

const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 3);

interface Boot {
  readyMs: number;
  totalMs: number;
  guestUptimeS: number;
}

async function main(): Promise<void> {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const kernels = (process.env['AVP_BENCH_KERNELS'] ?? '6.1,6.12').split(',');
  const bad = kernels.filter((k) => !(GUEST_KERNELS as readonly string[]).includes(k));
  if (bad.length > 0) throw new Error(`AVP_BENCH_KERNELS: unknown kernel series ${bad.join(', ')} (known: ${GUEST_KERNELS.join(', ')})`);
  const images = new Map<string, GuestImage>();
  for (const k of kernels) images.set(k, await buildGuestImage({ kernel: k as GuestKernel, onProgress: (m) => log(`image ${k}: ${m}`) }));
  const qemu = probeQemu(findQemu());
  const loadBefore = await reportLoad('before', log);
  const boots = new Map<string, Boot[]>(kernels.map((k) => [k, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const k of kernels) {
      // Safe: every kernel got an image above.
      const image = images.get(k)!;
      const run = await runGuest({ kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices: [], append: [scriptParam('avp-kv up "$(cut -d" " -f1 /proc/uptime)"')] }, { timeoutMs: 600_000, expectStatus: 0 });
      const b = { readyMs: run.readyMs, totalMs: run.totalMs, guestUptimeS: Number(run.kv.get('up')) };
      boots.get(k)?.push(b);
      log(`round ${round} ${k.padEnd(8)} (${image.kernelVersion}): READY after ${(b.readyMs / 1000).toFixed(2)} s, QEMU exited after ${(b.totalMs / 1000).toFixed(2)} s, guest uptime ${b.guestUptimeS.toFixed(2)} s`);
    }
  }
  const loadAfter = await reportLoad('after', log);
  process.stdout.write(`\nguest boot under ${qemu.versionText} (TCG), no devices, medians of ${ROUNDS} alternating round(s)\n`);
  process.stdout.write(`${'kernel'.padEnd(26)} ${'to READY'.padStart(9)} ${'to exit'.padStart(9)} ${'guest uptime'.padStart(13)} ${'initramfs'.padStart(10)}\n`);
  for (const k of kernels) {
    const bs = boots.get(k) ?? [];
    // Safe: as above.
    const image = images.get(k)!;
    const s = (f: (b: Boot) => number) => `${(median(bs.map(f)) / 1000).toFixed(2)} s`;
    process.stdout.write(`${`${k} (${image.kernelVersion})`.padEnd(26)} ${s((b) => b.readyMs).padStart(9)} ${s((b) => b.totalMs).padStart(9)} ${s((b) => b.guestUptimeS * 1000).padStart(13)} ${`${(image.initramfsBytes / 1e6).toFixed(1)} MB`.padStart(10)}\n`);
  }
  emitBenchOutput({
    bench: 'boot',
    comparisons: [],
    loadBefore,
    loadAfter,
    notes: kernels.map((k) => `${k} (${images.get(k)?.kernelVersion ?? '?'}): READY after ${(median((boots.get(k) ?? []).map((b) => b.readyMs)) / 1000).toFixed(2)} s (median of ${ROUNDS}), QEMU ${formatVersion(qemu.version)} TCG`),
  });
}

await main();
