// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench:fs`: AVP's fs back-end (`avp serve fs`) against virtiofsd (Debian 12's C
 * virtiofsd 7.2, which scripts/setup.sh installs; conformance/virtiofsd.ts) sharing the same
 * folder on tmpfs (/dev/shm) with the same Linux 6.12 guest under the installed QEMU (10.0),
 * through the same vhost-user-fs-pci front-end, alternating whole rounds (AVP, virtiofsd, AVP,
 * ...) so that machine load hits both alike. In the guest:
 * - sequential read: `dd bs=1M` of a file of AVP_BENCH_FILE_MIB (default 128) MiB, cold guest cache;
 * - 4 KiB random read IOPS: ioping (a Debian guest tool added to this benchmark's image) rate test,
 *   O_DIRECT, for AVP_BENCH_IOPS_SECONDS (default 5) seconds over that file;
 * - metadata ops/s: AVP_BENCH_META_FILES (default 500) small files created (shell redirection),
 *   stat'ed after dropping the guest's dentry and inode caches, and unlinked; 3 ops per file.
 * Prints every round's figures, then the medians and the AVP/virtiofsd ratios (> 1: AVP faster).
 * AVP_BENCH_ROUNDS sets the rounds (default 3). Timing is the guest's /proc/uptime (10 ms).
 * Software emulation (TCG) slows the guest itself, so absolute figures are low: the ratio is what
 * compares the back-ends. The share is removed and every process stopped at the end.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VIRTIOFSD_RESPAWNER, findVirtiofsd } from '../conformance/virtiofsd.js';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { DEFAULT_GUEST_TOOLS } from '../platform/image/guest-tools.js';
import { runGuest } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { SpawnedBackend } from '../vhost-user/spawn.js';
import { reportLoad } from './load.js';
import { emitBenchOutput, median, type Comparison } from './results.js';

const ROUNDS = Number(process.env['AVP_BENCH_ROUNDS'] ?? 3);
const FILE_MIB = Number(process.env['AVP_BENCH_FILE_MIB'] ?? 128);
const IOPS_SECONDS = Number(process.env['AVP_BENCH_IOPS_SECONDS'] ?? 5);
const META_FILES = Number(process.env['AVP_BENCH_META_FILES'] ?? 500);
const TAG = 'bench';
const AVP_BIN = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));

/** Prints `avp-kv seq_s`, `avp-kv ioping` (ioping's raw line: count, ns, iops, ...), `avp-kv meta_s`. */
const SCRIPT = `t() { awk '{print $1}' /proc/uptime; }
d() { echo "$1 $2" | awk '{print $2-$1}'; }
mkdir -p /s && mount -t virtiofs ${TAG} /s || exit 1
a=$(t); dd if=/s/seq.bin of=/dev/null bs=1M 2>/dev/null; b=$(t); avp-kv seq_s "$(d $a $b)"
avp-kv ioping "$(ioping -B -R -D -s 4k -w ${IOPS_SECONDS} /s/seq.bin 2>&1)"
rm -rf /s/m; mkdir /s/m; cd /s/m
a=$(t); i=0; while [ $i -lt ${META_FILES} ]; do : > f$i; i=$((i+1)); done
sync; echo 2 > /proc/sys/vm/drop_caches; stat -c %s /s/m/* > /dev/null; rm -f /s/m/*; b=$(t)
cd /; rmdir /s/m; avp-kv meta_s "$(d $a $b)"
umount /s
`;

interface Figures {
  seqMBps: number;
  iops: number;
  metaOps: number;
}


function makeShare(): string {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'avp-bench-fs-'));
  const share = join(dir, 'share');
  mkdirSync(share);
  const fd = openSync(join(share, 'seq.bin'), 'w');
  try {
    const chunk = randomFillSync(Buffer.alloc(1 << 20));
    for (let i = 0; i < FILE_MIB; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
  return dir;
}

async function round(image: GuestImage, command: string): Promise<Figures> {
  const backend = await SpawnedBackend.start(command);
  try {
    const run = await runGuest(
      { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices: [vhostUserDevice('fs', backend.socketPath, { tag: TAG })], append: [scriptParam(SCRIPT)] },
      { timeoutMs: 900_000, expectStatus: 0 },
    );
    const seconds = Number(run.kv.get('seq_s'));
    const iops = Number((run.kv.get('ioping') ?? '').trim().split(/\s+/)[2]);
    const meta = Number(run.kv.get('meta_s'));
    return { seqMBps: (FILE_MIB * 1.048576) / seconds, iops, metaOps: (3 * META_FILES) / meta };
  } finally {
    await backend.stop();
  }
}

async function main(): Promise<void> {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const image = await buildGuestImage({ tools: [...DEFAULT_GUEST_TOOLS, { package: 'ioping', programs: ['usr/bin/ioping'] }], onProgress: (m) => log(`image: ${m}`) });
  const dir = makeShare();
  const share = join(dir, 'share');
  const peers: Array<[string, string]> = [['AVP', `${JSON.stringify(process.execPath)} ${AVP_BIN} serve fs --socket-path {socket} --shared-dir ${share} --tag ${TAG}`]];
  const virtiofsd = findVirtiofsd();
  // Through the respawner: the readiness probe's connection would otherwise be virtiofsd's one
  // client, and it exits when the probe hangs up; QEMU then gets the next virtiofsd.
  if (virtiofsd !== undefined) peers.push(['virtiofsd', `${JSON.stringify(process.execPath)} ${VIRTIOFSD_RESPAWNER} --socket-path {socket} --shared-dir ${share} --binary ${virtiofsd}`]);
  else log('virtiofsd is not installed (scripts/setup.sh installs it): AVP only, no ratios');
  const results = new Map<string, Figures[]>(peers.map(([label]) => [label, []]));
  const loadBefore = await reportLoad('before', log);
  try {
    log(`fs benchmark: ${FILE_MIB} MiB file on ${dir}, ${ROUNDS} alternating round(s), ioping ${IOPS_SECONDS} s, ${META_FILES} files, node ${process.version}`);
    for (let r = 1; r <= ROUNDS; r++) {
      for (const [label, command] of peers) {
        const f = await round(image, command);
        results.get(label)?.push(f);
        log(`round ${r} ${label.padEnd(9)}: seq read ${f.seqMBps.toFixed(1)} MB/s, 4 KiB random read ${f.iops.toFixed(0)} IOPS, metadata ${f.metaOps.toFixed(0)} ops/s`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (label: string, k: keyof Figures): number => median((results.get(label) ?? []).map((f) => f[k]));
  const ratio = (k: keyof Figures): string => (results.has('virtiofsd') ? (med('AVP', k) / med('virtiofsd', k)).toFixed(2) : 'n/a');
  const rows: Array<[string, keyof Figures, number]> = [['sequential read MB/s', 'seqMBps', 1], ['4 KiB random read IOPS', 'iops', 0], ['metadata ops/s', 'metaOps', 0]];
  const lines = rows.map(([name, k, digits]) => `${name.padEnd(24)} ${med('AVP', k).toFixed(digits).padStart(10)} ${(results.has('virtiofsd') ? med('virtiofsd', k).toFixed(digits) : 'n/a').padStart(10)} ${ratio(k).padStart(14)}`);
  process.stdout.write(`\nfs benchmark, Linux 6.12 guest, QEMU 10.0 (TCG), medians of ${ROUNDS} alternating round(s)\n${'case'.padEnd(24)} ${'AVP'.padStart(10)} ${'virtiofsd'.padStart(10)} ${'AVP/virtiofsd'.padStart(14)}\n${lines.join('\n')}\n`);
  const loadAfter = await reportLoad('after', log);
  const of = (label: string, k: keyof Figures): number[] => (results.get(label) ?? []).map((f) => f[k]);
  const comparisons: Comparison[] = results.has('virtiofsd')
    ? rows.map(([name, k]) => ({ bench: 'fs', case: name.replace(/ (MB\/s|IOPS|ops\/s)$/, ''), unit: name.match(/(MB\/s|IOPS|ops\/s)$/)?.[1] ?? '', higherIsBetter: true, peerName: 'virtiofsd', avp: of('AVP', k), peer: of('virtiofsd', k) }))
    : [];
  emitBenchOutput({ bench: 'fs', comparisons, loadBefore, loadAfter, notes: [`${FILE_MIB} MiB sequential read, ioping ${IOPS_SECONDS} s, ${META_FILES} files create/stat/unlink; guest over QEMU (TCG)`] });
}

await main();
