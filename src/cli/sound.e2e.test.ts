// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp serve sound` serving a stock Linux 6.12 guest under QEMU 10.0's
 * vhost-user-snd-pci, with the guest's own virtio_snd driver and alsa-utils.
 *
 * - The guest sees the card ("VirtIO SoundCard"), one playback and one capture PCM, and the
 *   controls the driver builds from our jack and channel-map replies.
 * - Playback: the host writes a WAV of random S16 stereo 48 kHz samples onto a read-only disk;
 *   the guest plays it with `aplay`; the back-end's WAV holds exactly those samples after its
 *   header (aplay pads its last period with silence, which may follow them).
 * - Capture: the back-end plays another random WAV into the capture stream; the guest records
 *   with `arecord`; the samples the guest got are the host file's first samples, byte for byte.
 * - A format the device does not offer (FLOAT_LE) is refused by the guest's driver.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wavHeader } from '../devices/sound/wav.js';
import { vhostUserDevice } from '../platform/attach.js';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { runGuest } from '../platform/qemu.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const BOOT_MS = 400_000;
const FORMAT = { channels: 2, rate: 48_000, bits: 16 };
/** One second of playback and half a second of capture. */
const PLAY_BYTES = 48_000 * 4;
const RECORD_FRAMES = 24_000;

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-sound-e2e-'));
});

after(async () => {
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

test('e2e: aplay and arecord in a Linux 6.12 guest through QEMU 10 vhost-user-snd-pci: samples match both ways', async () => {
  const play = randomBytes(PLAY_BYTES);
  const wav = Buffer.concat([wavHeader(FORMAT, play.length), play]);
  // The guest reads the WAV from a disk: whole sectors.
  const disk = join(dir, 'play.img');
  writeFileSync(disk, Buffer.concat([wav, Buffer.alloc((512 - (wav.length % 512)) % 512)]));
  const capture = randomBytes(RECORD_FRAMES * 4 * 2);
  const captureWav = join(dir, 'capture.wav');
  writeFileSync(captureWav, Buffer.concat([wavHeader(FORMAT, capture.length), capture]));
  const out = join(dir, 'out.wav');
  const sound = await startBackend('sound', ['--playback', out, '--capture', captureWav]);
  backends.push(sound);

  const script = `avp-kv card "$(head -1 /proc/asound/cards)"
avp-kv pcms "$(ls /proc/asound/card0 | grep pcm | tr '\\n' ,)"
avp-kv controls "$(amixer -c 0 controls 2>&1 | cut -d, -f3- | tr '\\n' ';')"
aplay /dev/vda 2>/tmp/e; avp-kv aplay "$? $(tail -1 /tmp/e)"
arecord -f S16_LE -c 2 -r 48000 -s ${RECORD_FRAMES} --buffer-time=1000000 /tmp/r.wav 2>/tmp/e; avp-kv arecord "$? $(tail -1 /tmp/e)"
avp-kv rec_bytes "$(tail -c +45 /tmp/r.wav | wc -c)"
avp-kv rec_md5 "$(tail -c +45 /tmp/r.wav | md5sum | cut -c1-32)"
if aplay -D hw:0,0 -f FLOAT_LE -c 2 -r 48000 -d 1 /dev/zero 2>/tmp/e; then avp-kv float accepted; else avp-kv float "refused: $(tail -1 /tmp/e)"; fi
`;
  const r = await runGuest(
    { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices: [vhostUserDevice('sound', sound.socket, {}, { qemuVersion: '10.0' }), { kind: 'virtio-blk', file: disk, readOnly: true }], append: [scriptParam(script)] },
    { timeoutMs: BOOT_MS, expectStatus: 0 },
  );
  const kv = r.kv;
  assert.match(kv.get('card') ?? '', /VirtIO SoundCard/);
  assert.equal(kv.get('pcms'), 'pcm0c,pcm0p,', 'one capture and one playback PCM');
  // The driver turns our jack into a jack control and our channel maps into channel-map controls.
  assert.match(kv.get('controls') ?? '', /Jack/, `controls: ${kv.get('controls')}`);
  assert.match(kv.get('controls') ?? '', /Playback Channel Map/);
  assert.match(kv.get('controls') ?? '', /Capture Channel Map/);
  // Exit status, then aplay's last stderr line (its "Playing WAVE ..." banner on success).
  assert.match(kv.get('aplay') ?? '', /^0 /, `aplay: ${kv.get('aplay')}`);
  assert.match(kv.get('arecord') ?? '', /^0 /, `arecord: ${kv.get('arecord')}`);

  // Playback: the back-end's WAV is our format, and its samples are ours, then at most silence.
  const got = readFileSync(out);
  assert.deepEqual([...got.subarray(0, 44)].slice(20, 36), [...wavHeader(FORMAT, 0)].slice(20, 36), 'fmt chunk: PCM, 2 channels, 48 kHz, 16 bits');
  assert.equal(got.readUInt32LE(40), got.length - 44, 'the data size in the header is current');
  assert.ok(got.length - 44 >= play.length, `the host WAV holds ${got.length - 44} bytes, the guest played ${play.length}`);
  assert.equal(md5(got.subarray(44, 44 + play.length)), md5(play), 'sample-exact after the header');
  assert.ok(got.subarray(44 + play.length).every((b) => b === 0), 'anything after the samples is silence (aplay pads its last period)');

  // Capture: the guest recorded the host file's first samples, byte for byte.
  assert.equal(kv.get('rec_bytes'), String(RECORD_FRAMES * 4));
  assert.equal(kv.get('rec_md5'), md5(capture.subarray(0, RECORD_FRAMES * 4)), 'the recording is the host WAV, sample-exact');

  assert.match(kv.get('float') ?? '', /^refused/, 'a format the device does not offer is refused');

  sound.child.kill('SIGUSR1');
  const line = await sound.waitLog(/"msg":"metrics"/, 30_000);
  const m = (JSON.parse(line) as { metrics: { control: { badMessages: number }; streams: Array<{ bytes: number; direction: string }> } }).metrics;
  assert.equal(m.control.badMessages, 0, 'the Linux driver sent nothing the device refused');
  assert.ok((m.streams.find((s) => s.direction === 'output')?.bytes ?? 0) >= play.length);
  assert.ok((m.streams.find((s) => s.direction === 'input')?.bytes ?? 0) >= RECORD_FRAMES * 4);
});
