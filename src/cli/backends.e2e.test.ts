// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: AVP's back-end programs (`avp serve rng`, `avp serve blk`) serving a stock Linux 6.1
 * guest under QEMU 7.2 (software emulation), with the guest's own virtio drivers.
 *
 * Boot A uses rng and blk together: the guest sees virtio_rng as its hwrng, reads bytes from
 * /dev/hwrng, sees /dev/vda with the image's size, reads data the host put in the image, and writes
 * at several offsets; the host then finds the guest's data (by checksum) in the image file.
 * Boot B connects to the same blk back-end (reconnect), reads boot A's data back, and is killed
 * with SIGKILL in the middle of I/O; boot C proves the back-end still serves. Boot D: a read-only
 * back-end; the guest cannot write and the image does not change.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { runGuest, startVm, type VmDevice, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const IMAGE_BYTES = 64 << 20;
const BLOCK = 4096;
/** Blocks (of 4 KiB) the guest writes: the first, one in the middle, the last. */
const WRITE_BLOCKS = [0, 1000, IMAGE_BYTES / BLOCK - 1];
/** Where the host puts a pattern for the guest to read. */
const HOST_BLOCK = 2048;
const BOOT_MS = 240_000;

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];

function md5(b: Uint8Array): string {
  return createHash('md5').update(b).digest('hex');
}

function readBlock(file: string, block: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(BLOCK);
    readSync(fd, buf, 0, BLOCK, block * BLOCK);
    return buf;
  } finally {
    closeSync(fd);
  }
}

function vm(devices: readonly VmDevice[], script: string): VmSpec {
  return { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(script)] };
}

async function backend(kind: string, args: string[]): Promise<BackendProcess> {
  const b = await startBackend(kind, args);
  backends.push(b);
  return b;
}

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-e2e-'));
});

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Shell fragment: md5 of 4 KiB block $1 of /dev/vda. */
const BLOCK_MD5 = 'bmd5() { dd if=/dev/vda bs=4096 skip=$1 count=1 2>/dev/null | md5sum | cut -c1-32; }';

test('e2e: rng and blk back-ends serve a Linux guest; reconnect; a guest killed mid-I/O; read-only', async () => {
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, IMAGE_BYTES);
  const hostData = randomBytes(BLOCK);
  writeSync(fd, hostData, 0, BLOCK, HOST_BLOCK * BLOCK);
  closeSync(fd);
  const rng = await backend('rng', []);
  const blk = await backend('blk', ['--image', disk, '--serial', 'AVP-E2E-1']);

  // Boot A: rng + blk.
  const scriptA = `${BLOCK_MD5}
i=0; while [ "$(cat /sys/class/misc/hw_random/rng_current)" = none ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
avp-kv rng "$(cat /sys/class/misc/hw_random/rng_current)"
avp-kv hwrng_bytes "$(dd if=/dev/hwrng bs=64 count=16 2>/dev/null | wc -c)"
avp-kv hwrng_distinct "$(dd if=/dev/hwrng bs=256 count=1 2>/dev/null | od -An -v -tx1 | tr ' ' '\\n' | grep . | sort -u | wc -l)"
avp-kv sectors "$(cat /sys/block/vda/size)"
avp-kv serial "$(cat /sys/block/vda/serial)"
avp-kv host "$(bmd5 ${HOST_BLOCK})"
for b in ${WRITE_BLOCKS.join(' ')}; do
  dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
  dd if=/tmp/blk of=/dev/vda bs=4096 seek=$b conv=fsync 2>/dev/null || avp-kv write_failed $b
  avp-kv w$b "$(md5sum < /tmp/blk | cut -c1-32)"
done
`;
  const a = await runGuest(vm([vhostUserDevice('rng', rng.socket), vhostUserDevice('blk', blk.socket)], scriptA), { timeoutMs: BOOT_MS, expectStatus: 0 });
  const kv = a.kv;
  assert.equal(kv.get('rng'), 'virtio_rng.0', 'the guest uses our virtio-rng');
  assert.equal(kv.get('hwrng_bytes'), '1024');
  assert.ok(Number(kv.get('hwrng_distinct')) > 100, `random bytes take many values (${kv.get('hwrng_distinct')})`);
  assert.equal(kv.get('sectors'), String(IMAGE_BYTES / 512), '/dev/vda has the image size');
  assert.equal(kv.get('serial'), 'AVP-E2E-1');
  assert.equal(kv.get('host'), md5(hostData), 'the guest reads what the host wrote');
  assert.equal(kv.get('write_failed'), undefined);
  for (const b of WRITE_BLOCKS) assert.equal(md5(readBlock(disk, b)), kv.get(`w${b}`), `block ${b}: the guest's data is in the image file`);

  // Boot B: the same blk back-end again (reconnect); reads boot A's data, then is killed mid-I/O.
  const scriptB = `${BLOCK_MD5}
avp-kv r0 "$(bmd5 ${WRITE_BLOCKS[0]})"
avp-kv r1 "$(bmd5 ${WRITE_BLOCKS[1]})"
( while true; do dd if=/dev/vda of=/dev/null bs=65536 count=1024 iflag=direct 2>/dev/null; done ) &
sleep 1
avp-kv io started
sleep 600
`;
  const b = await startVm(vm([vhostUserDevice('blk', blk.socket)], scriptB));
  try {
    await b.waitForLine(/AVP-GUEST: KV io=started/, BOOT_MS);
    const joined = b.lines.join('\n');
    assert.match(joined, new RegExp(`KV r0=${kv.get(`w${WRITE_BLOCKS[0]}`)}`), 'boot B reads boot A\'s data');
    assert.match(joined, new RegExp(`KV r1=${kv.get(`w${WRITE_BLOCKS[1]}`)}`));
    process.kill(b.pid, 'SIGKILL');
    await b.exited;
  } finally {
    await b.kill();
  }
  await blk.waitLog(/front-end disconnected/, 30_000, 2);

  // Boot C: the back-end survived the killed guest and serves a new one.
  const c = await runGuest(vm([vhostUserDevice('blk', blk.socket)], `${BLOCK_MD5}\navp-kv last "$(bmd5 ${WRITE_BLOCKS[2]})"\n`), { timeoutMs: BOOT_MS, expectStatus: 0 });
  assert.equal(c.kv.get('last'), kv.get(`w${WRITE_BLOCKS[2]}`));
  assert.equal(blk.child.exitCode, null, 'blk back-end still running');

  // Boot D: read-only.
  const roDisk = join(dir, 'ro.img');
  writeFileSync(roDisk, readFileSync(disk));
  const before = md5(readFileSync(roDisk));
  const ro = await backend('blk', ['--image', roDisk, '--read-only']);
  const d = await runGuest(
    vm([vhostUserDevice('blk', ro.socket)], `${BLOCK_MD5}
avp-kv ro "$(cat /sys/block/vda/ro)"
avp-kv read "$(bmd5 ${HOST_BLOCK})"
if dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync 2>/dev/null; then avp-kv write accepted; else avp-kv write refused; fi
`),
    { timeoutMs: BOOT_MS, expectStatus: 0 },
  );
  assert.equal(d.kv.get('ro'), '1', 'the guest sees a read-only disk');
  assert.equal(d.kv.get('read'), md5(hostData));
  assert.equal(d.kv.get('write'), 'refused');
  assert.equal(md5(readFileSync(roDisk)), before, 'the read-only image is unchanged');
});
