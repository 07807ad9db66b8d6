// SPDX-License-Identifier: Apache-2.0
/** WAV header and the WAV file host of virtio-snd. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WavFileSink, WavFileSource } from './host.js';
import { parseWav, wavHeader } from './wav.js';

test('wav: the canonical header, byte by byte', () => {
  const h = wavHeader({ channels: 2, rate: 48000, bits: 16 }, 1000);
  const expected = Buffer.concat([
    Buffer.from('RIFF'), Buffer.from([0x0c, 0x04, 0, 0]), Buffer.from('WAVEfmt '), Buffer.from([16, 0, 0, 0, 1, 0, 2, 0]),
    Buffer.from([0x80, 0xbb, 0, 0]), Buffer.from([0x00, 0xee, 0x02, 0]), Buffer.from([4, 0, 16, 0]), Buffer.from('data'), Buffer.from([0xe8, 0x03, 0, 0]),
  ]);
  assert.deepEqual(Buffer.from(h), expected);
});

test('wav: the parser skips unknown chunks and refuses what is not PCM', () => {
  const fmt = wavHeader({ channels: 1, rate: 8000, bits: 8 }, 3).subarray(12, 36);
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from([1, 2, 3, 0])]);
  const data = Buffer.concat([Buffer.from('data'), Buffer.from([3, 0, 0, 0]), Buffer.from([7, 8, 9])]);
  const file = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 0, 0, 0]), Buffer.from('WAVE'), list, fmt, data]);
  const l = parseWav(file, 'x.wav');
  assert.deepEqual(l.format, { channels: 1, rate: 8000, bits: 8 });
  assert.deepEqual([...file.subarray(l.dataOffset, l.dataOffset + l.dataBytes)], [7, 8, 9]);
  assert.throws(() => parseWav(Buffer.from('RIFX0000WAVE'), 'y.wav'), { code: 'SOUND_BAD_WAV' });
  assert.throws(() => parseWav(Buffer.concat([file.subarray(0, 12), data]), 'z.wav'), { code: 'SOUND_BAD_WAV' });
});

test('wav: the file sink keeps a valid header while it writes; the source plays data then silence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-wav-'));
  try {
    const path = join(dir, 'out.wav');
    const sink = new WavFileSink(path);
    sink.begin({ channels: 1, rate: 8000, bits: 16 });
    sink.write(Uint8Array.of(1, 2, 3, 4));
    sink.write(Uint8Array.of(5, 6));
    const mid = readFileSync(path);
    assert.equal(parseWav(mid, path).dataBytes, 6);
    sink.close();
    const src = new WavFileSource(path);
    assert.deepEqual(src.format, { channels: 1, rate: 8000, bits: 16 });
    const a = new Uint8Array(4);
    src.read(a, src.format);
    const b = new Uint8Array(4);
    src.read(b, src.format);
    assert.deepEqual([...a, ...b], [1, 2, 3, 4, 5, 6, 0, 0]);
    writeFileSync(join(dir, 'bad.wav'), 'nope');
    assert.throws(() => new WavFileSource(join(dir, 'bad.wav')), { code: 'SOUND_BAD_WAV' });
    assert.throws(() => new WavFileSource(join(dir, 'none.wav')), { code: 'SOUND_HOST_FILE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
