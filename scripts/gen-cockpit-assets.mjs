#!/usr/bin/env node
// Writes the cockpit example's assets (examples/README.md):
//   examples/sounds/chime.wav             a two-tone chime, 22050 Hz mono 16-bit PCM, the file padded
//                                         with silence to whole 512-byte sectors (the guest reads it
//                                         from a read-only disk)
//   examples/traces/vehicle-speed.candump a vehicle-speed signal as a candump log: CAN ID 0x100, byte 0
//                                         = km/h, every 100 ms, 80 up to 96 and back
// Deterministic: running it again writes the same bytes.
import { writeFileSync } from 'node:fs';

const rate = 22050;
const tone = (f, seconds, gain) => Array.from({ length: Math.round(rate * seconds) }, (_, i) => {
  const t = i / rate;
  const env = Math.min(1, i / 200) * Math.exp(-4 * t);
  return Math.round(gain * env * Math.sin(2 * Math.PI * f * t) * 32767);
});
const samples = [...tone(1318.51, 0.35, 0.6), ...tone(1046.5, 0.5, 0.6)];
let data = Buffer.alloc(samples.length * 2);
samples.forEach((s, i) => data.writeInt16LE(s, 2 * i));
// Pad the data (with silence) so that the whole file is a multiple of 512 bytes.
const total = Math.ceil((44 + data.length) / 512) * 512;
data = Buffer.concat([data, Buffer.alloc(total - 44 - data.length)]);
const h = Buffer.alloc(44);
h.write('RIFF', 0);
h.writeUInt32LE(36 + data.length, 4);
h.write('WAVEfmt ', 8);
h.writeUInt32LE(16, 16);
h.writeUInt16LE(1, 20);
h.writeUInt16LE(1, 22);
h.writeUInt32LE(rate, 24);
h.writeUInt32LE(rate * 2, 28);
h.writeUInt16LE(2, 32);
h.writeUInt16LE(16, 34);
h.write('data', 36);
h.writeUInt32LE(data.length, 40);
writeFileSync(new URL('../examples/sounds/chime.wav', import.meta.url), Buffer.concat([h, data]));

const speeds = [...Array.from({ length: 17 }, (_, i) => 80 + i), ...Array.from({ length: 15 }, (_, i) => 95 - i)];
const lines = speeds.map((kmh, i) => {
  const us = 1700000000_000000 + i * 100_000;
  return `(${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}) can0 100#${kmh.toString(16).toUpperCase().padStart(2, '0')}00`;
});
writeFileSync(new URL('../examples/traces/vehicle-speed.candump', import.meta.url), `${lines.join('\n')}\n`);
