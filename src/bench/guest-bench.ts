// SPDX-License-Identifier: Apache-2.0
/**
 * Guest-level benchmark: a Linux guest under the installed QEMU (10.0 after scripts/setup.sh) reads /dev/hwrng and reads and writes
 * /dev/vda with dd, once through AVP's vhost-user back-ends (avp serve rng / blk) and once through
 * QEMU's built-in virtio-rng-pci / virtio-blk-pci on the same image file, alternating rounds
 * (A B A B ...) so that machine load hits both alike. Prints each figure and the AVP/QEMU ratio
 * of the medians. `npm run bench:guest`; AVP_BENCH_ROUNDS sets the rounds (default 3);
 * AVP_BENCH_BUSY_POLL_US=N runs AVP's back-ends with `--busy-poll-us N` (adaptive busy polling).
 *
 * Timing is the guest's /proc/uptime around each dd (10 ms resolution; every case runs for
 * seconds). Software emulation (TCG) slows the guest itself, so absolute figures are low; the
 * ratio is what compares the device paths.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, closeSync, openSync, ftruncateSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuestImage, scriptParam } from '../platform/image/index.js';
import { findQemu, runGuest, type VmDevice } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { formatVersion, probeQemu } from '../platform/qemu-caps.js';
import { reportLoad } from './load.js';
import { emitBenchOutput, median, type Comparison } from './results.js';

const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 3);
const IMAGE_MIB = 512;
const AVP_BIN = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));
const BUSY_POLL_US = process.env['AVP_BENCH_BUSY_POLL_US'] ?? '0';

/** The guest script: each case prints `avp-kv <case> <seconds>`. */
const SCRIPT = `t() { awk '{print $1}' /proc/uptime; }
i=0; while [ "$(cat /sys/class/misc/hw_random/rng_current)" = none ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
a=$(t); dd if=/dev/hwrng of=/dev/null bs=4096 count=1000 2>/dev/null; b=$(t); avp-kv rng_4MiB "$(echo "$a $b" | awk '{print $2-$1}')"
a=$(t); dd if=/dev/vda of=/dev/null bs=1M count=512 iflag=direct 2>/dev/null; b=$(t); avp-kv seq_read_512MiB "$(echo "$a $b" | awk '{print $2-$1}')"
a=$(t); dd if=/dev/zero of=/dev/vda bs=1M count=512 oflag=direct conv=fsync 2>/dev/null; b=$(t); avp-kv seq_write_512MiB "$(echo "$a $b" | awk '{print $2-$1}')"
a=$(t); dd if=/dev/vda of=/dev/null bs=4096 count=8192 iflag=direct 2>/dev/null; b=$(t); avp-kv read_4KiB_x8192 "$(echo "$a $b" | awk '{print $2-$1}')"
`;

/** Bytes each case moves, to print MB/s. */
const BYTES: Record<string, number> = {
  rng_4MiB: 4096 * 1000,
  seq_read_512MiB: 512 << 20,
  seq_write_512MiB: 512 << 20,
  read_4KiB_x8192: 4096 * 8192,
};

interface Backend {
  socket: string;
  stop(): Promise<void>;
}

async function serve(dir: string, kind: string, args: string[]): Promise<Backend> {
  const socket = join(dir, `${kind}.sock`);
  const poll = BUSY_POLL_US === '0' ? [] : ['--busy-poll-us', BUSY_POLL_US];
  const child = spawn(process.execPath, [AVP_BIN, 'serve', kind, '--socket-path', socket, ...poll, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('"msg":"serving ')) resolve();
    });
    void exited.then(() => reject(new Error(`avp serve ${kind} exited: ${out}`)));
  });
  return {
    socket,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}


async function main(): Promise<void> {
  const image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'avp-bench-'));
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, IMAGE_MIB << 20);
  closeSync(fd);
  const results: Record<'avp' | 'qemu', Record<string, number[]>> = { avp: {}, qemu: {} };
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const loadBefore = await reportLoad('before', log);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const who of ['avp', 'qemu'] as const) {
        const backends: Backend[] = [];
        try {
          let devices: VmDevice[];
          if (who === 'avp') {
            const rng = await serve(dir, 'rng', []);
            backends.push(rng);
            const blk = await serve(dir, 'blk', ['--image', disk]);
            backends.push(blk);
            devices = [vhostUserDevice('rng', rng.socket), vhostUserDevice('blk', blk.socket)];
          } else {
            devices = [{ kind: 'virtio-rng' }, { kind: 'virtio-blk', file: disk }];
          }
          const run = await runGuest({ kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(SCRIPT)] }, { timeoutMs: 600_000, expectStatus: 0 });
          for (const [k, v] of run.kv) (results[who][k] ??= []).push(Number(v));
          process.stderr.write(`round ${round + 1} ${who}: ${[...run.kv].map(([k, v]) => `${k}=${v}s`).join(' ')}\n`);
        } finally {
          await Promise.all(backends.map((b) => b.stop()));
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const qemu = probeQemu(findQemu());
  console.log(`\nGuest benchmark: Linux ${image.kernelVersion} guest, QEMU ${formatVersion(qemu.version)} (TCG), ${ROUNDS} alternating rounds, medians`);
  console.log(`${'case'.padEnd(20)} ${'AVP vhost-user'.padStart(16)} ${'QEMU built-in'.padStart(16)} ${'AVP/QEMU'.padStart(10)}`);
  for (const k of Object.keys(BYTES)) {
    const a = median(results.avp[k] ?? []);
    const q = median(results.qemu[k] ?? []);
    const mbs = (s: number) => `${((BYTES[k] ?? 0) / s / 1e6).toFixed(2)} MB/s`;
    console.log(`${k.padEnd(20)} ${mbs(a).padStart(16)} ${mbs(q).padStart(16)} ${(q / a).toFixed(2).padStart(9)}x`);
  }
  const loadAfter = await reportLoad('after', log);
  const rate = (k: string, seconds: readonly number[]): number[] => seconds.map((s) => (BYTES[k] ?? 0) / s / 1e6);
  const comparisons: Comparison[] = Object.keys(BYTES).map((k) => ({ bench: 'guest', case: k, unit: 'MB/s', higherIsBetter: true, peerName: 'QEMU built-in', avp: rate(k, results.avp[k] ?? []), peer: rate(k, results.qemu[k] ?? []) }));
  emitBenchOutput({ bench: 'guest', comparisons, loadBefore, loadAfter, notes: [`Linux ${image.kernelVersion} guest, ${qemu.versionText}, TCG; AVP: avp serve rng + blk over vhost-user${BUSY_POLL_US === '0' ? '' : ` with --busy-poll-us ${BUSY_POLL_US}`}; peer: virtio-rng-pci + virtio-blk-pci on the same image`] });
}

await main();
