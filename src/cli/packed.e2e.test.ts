// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: a stock Linux guest under QEMU (software emulation) drives AVP's blk and rng
 * back-ends over packed virtqueues (VIRTIO_F_RING_PACKED, QEMU device property `packed=on`).
 *
 * Proves: the guest negotiated bit 34 on both devices (/sys/bus/virtio/devices/<dev>/features,
 * one character per bit); the guest writes random blocks at several offsets and reads them back
 * with O_DIRECT, and the host finds the same bytes (by checksum) in the image file; the guest
 * reads host data; /dev/hwrng delivers bytes. It also records what QEMU sends for packed rings in
 * SET_VRING_ADDR and SET_VRING_BASE and what the back-end answers to GET_VRING_BASE (printed to
 * stderr, and checked for the wrap-counter encoding). Every process is stopped and every temp file
 * removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { runGuest, type VmDevice, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { AVP_BIN, startBackend, type BackendProcess } from './testing/backend-process.js';

const IMAGE_BYTES = 32 << 20;
const BLOCK = 4096;
const WRITE_BLOCKS = [0, 777, IMAGE_BYTES / BLOCK - 1];
const HOST_BLOCK = 1500;
const BOOT_MS = 300_000;

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

/** A vhost-user device with `packed=on` added to its QEMU properties. */
function packed(d: VmDevice): VmDevice {
  assert.equal(d.kind, 'vhost-user');
  return { ...d, props: { ...(d.kind === 'vhost-user' ? d.props : {}), packed: 'on' } };
}

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-packed-'));
});

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Shell: md5 of 4 KiB block $1 of /dev/vda, read with O_DIRECT (from the device, not the page cache). */
const BLOCK_MD5 = 'bmd5() { dd if=/dev/vda bs=4096 skip=$1 count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32; }';

/** The bodies of the vhost-user requests of one type the back-end logged at debug level, in order. */
function requests(b: BackendProcess, type: string): string[] {
  const prefix = `vhost-user request ${type} `;
  return messages(b)
    .filter((m) => m.startsWith(prefix))
    .map((m) => m.slice(prefix.length).replace(/ \(need reply\)$/, ''));
}

/** The `msg` of every JSON log line of a back-end. */
function messages(b: BackendProcess): string[] {
  return b.logs.flatMap((l) => {
    try {
      const m = (JSON.parse(l) as { msg?: unknown }).msg;
      return typeof m === 'string' ? [m] : [];
    } catch {
      return [];
    }
  });
}

test('e2e: a Linux guest uses packed virtqueues on AVP blk and rng (packed=on), with checked data', async () => {
  const disk = join(dir, 'disk.img');
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, IMAGE_BYTES);
  const hostData = randomBytes(BLOCK);
  writeSync(fd, hostData, 0, BLOCK, HOST_BLOCK * BLOCK);
  closeSync(fd);
  // Debug level: the back-ends log every vhost-user request (the wire facts below).
  const saved = process.env['AVP_LOG_LEVEL'];
  process.env['AVP_LOG_LEVEL'] = 'debug';
  let blk: BackendProcess;
  let rng: BackendProcess;
  try {
    blk = await startBackend('blk', ['--image', disk, '--serial', 'AVP-PACKED']);
    backends.push(blk);
    rng = await startBackend('rng', []);
    backends.push(rng);
  } finally {
    if (saved === undefined) delete process.env['AVP_LOG_LEVEL'];
    else process.env['AVP_LOG_LEVEL'] = saved;
  }
  const script = `${BLOCK_MD5}
for d in /sys/bus/virtio/devices/*; do avp-kv "dev_$(cat $d/device)" "$(cat $d/features)"; done
i=0; while [ "$(cat /sys/class/misc/hw_random/rng_current)" = none ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
avp-kv rng "$(cat /sys/class/misc/hw_random/rng_current)"
avp-kv hwrng_bytes "$(dd if=/dev/hwrng bs=64 count=16 2>/dev/null | wc -c)"
avp-kv host "$(bmd5 ${HOST_BLOCK})"
for b in ${WRITE_BLOCKS.join(' ')}; do
  dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
  dd if=/tmp/blk of=/dev/vda bs=4096 seek=$b oflag=direct conv=fsync 2>/dev/null || avp-kv write_failed $b
  avp-kv w$b "$(md5sum < /tmp/blk | cut -c1-32)"
  avp-kv r$b "$(bmd5 $b)"
done
dd if=/dev/vda of=/dev/null bs=65536 count=256 iflag=direct 2>/dev/null && avp-kv bulk ok
`;
  const spec: VmSpec = {
    kernel: image.kernel,
    initrd: image.initramfs,
    cmdlineLimit: image.cmdlineLimit,
    devices: [packed(vhostUserDevice('blk', blk.socket)), packed(vhostUserDevice('rng', rng.socket))],
    append: [scriptParam(script)],
  };
  const g = await runGuest(spec, { timeoutMs: BOOT_MS, expectStatus: 0 });
  const kv = g.kv;
  // device ids: 0x0002 block, 0x0004 entropy; features: one '0'/'1' character per bit.
  const blkFeatures = kv.get('dev_0x0002') ?? '';
  const rngFeatures = kv.get('dev_0x0004') ?? '';
  process.stderr.write(`guest features: blk ${blkFeatures}\nguest features: rng ${rngFeatures}\n`);
  assert.equal(blkFeatures[34], '1', `the guest negotiated RING_PACKED on blk (${blkFeatures})`);
  assert.equal(rngFeatures[34], '1', `the guest negotiated RING_PACKED on rng (${rngFeatures})`);
  assert.equal(kv.get('rng'), 'virtio_rng.0');
  assert.equal(kv.get('hwrng_bytes'), '1024');
  assert.equal(kv.get('host'), md5(hostData), 'the guest reads what the host wrote');
  assert.equal(kv.get('write_failed'), undefined);
  assert.equal(kv.get('bulk'), 'ok');
  for (const b of WRITE_BLOCKS) {
    assert.equal(kv.get(`r${b}`), kv.get(`w${b}`), `block ${b}: the guest reads back what it wrote`);
    assert.equal(md5(readBlock(disk, b)), kv.get(`w${b}`), `block ${b}: the guest's data is in the image file`);
  }
  // Wire facts: what QEMU sent for the packed rings, and what the back-end answered. The answer
  // to QEMU's last GET_VRING_BASE (at power-off) reaches this process through the back-end's log
  // after QEMU may already have exited: wait for a packed one (a split-phase or not-live stop
  // says 0x0), and report what came if none does.
  for (const b of [blk, rng]) await b.waitLog(/stopped at base 0x([0-9a-f]{5,})"/, 30_000).catch(() => '');
  for (const [name, b] of [['blk', blk], ['rng', rng]] as const) {
    const feats = requests(b, 'SET_FEATURES');
    const addrs = requests(b, 'SET_VRING_ADDR');
    const bases = requests(b, 'SET_VRING_BASE');
    const stops = messages(b).filter((m) => /stopped at base/.test(m));
    process.stderr.write(`wire ${name}: SET_FEATURES ${feats.join(' | ')}\nwire ${name}: SET_VRING_ADDR ${addrs.join(' | ')}\nwire ${name}: SET_VRING_BASE ${bases.join(' | ')}\nwire ${name}: GET_VRING_BASE answers ${stops.join(' | ')}\n`);
    // Ring starts that negotiated RING_PACKED: SET_FEATURES with bit 34 (the firmware drives
    // blk with a split ring first, with num 0 in SET_VRING_BASE).
    assert.ok(feats.some((f) => (BigInt(f) >> 34n) & 1n), `${name}: QEMU sent SET_FEATURES with RING_PACKED`);
    // QEMU: avail index | wrap << 15 in the low half, used index | wrap << 15 in the high half;
    // a fresh packed ring is 0x80008000 (both wrap counters 1).
    const nums = bases.map((x) => (JSON.parse(x) as { num: number }).num);
    assert.ok(nums.includes(0x8000_8000), `${name}: a fresh packed ring starts at 0x80008000 (${nums.join(', ')})`);
    // The answer at the end: both positions (nothing in flight, so equal) with their wrap counters.
    const packedStop = (x: string): boolean => {
      const v = Number.parseInt(/0x([0-9a-f]+)$/.exec(x)?.[1] ?? '0', 16);
      return v > 0xffff && v >>> 16 === (v & 0xffff);
    };
    assert.ok(stops.some(packedStop), `${name}: GET_VRING_BASE answered a packed position with wrap counters (${stops.join(', ')})`);
  }
  assert.equal(blk.child.exitCode, null, 'blk back-end still running');
});

test('e2e: avp run with ring: packed in the manifest: the guest negotiates packed rings on that device (rng in the shared thread), split on the other', async () => {
  const manifest = join(dir, 'packed.yaml');
  writeFileSync(
    manifest,
    `name: packed
vms:
  - name: p
    boot:
      image: builtin
      ready: "AVP-GUEST: rings"
      script: |
        r() { for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" = $1 ] && cut -c35 $d/features; done; }
        dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c | xargs avp-say hwrng bytes
        avp-say rings rng=$(r 0x0004) blk=$(r 0x0002)
    devices:
      - {kind: rng, ring: packed}
      - {kind: blk, size: 1M}
`,
  );
  const r = spawnSync(process.execPath, [AVP_BIN, 'run', manifest, '--headless', '--timeout', '300', '--run-dir', join(dir, 'run')], { encoding: 'utf8', timeout: BOOT_MS });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(out, /^\[p\] AVP-GUEST: rings rng=1 blk=0$/m, 'bit 34 (RING_PACKED) negotiated on rng only');
  assert.match(out, /^\[p\] AVP-GUEST: hwrng bytes 256$/m);
  assert.match(out, /back-end p\/rng serving \(shared thread\)/);
});
