// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-entropy's part of the conformance suite (VIRTIO 1.3 §5.4; AVPS-RNG-01..04 in
 * shared/reference/avps-and-virtio-catalog.md §2.15), written against the transport-agnostic
 * `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe request (one device-writable buffer), the wrong-direction request (a
 * device-readable buffer only, which the device must leave alone), and the rng checks: bytes are
 * returned (§5.4.6.2 "The device MUST place one or more random bytes into the buffer"), the used
 * length stays within the buffer ("it MAY use less than the entire buffer length"), buffers split
 * over several descriptors are filled, and a statistical smoke test of the bytes (AVPS-RNG-04: not
 * a proof of genuine entropy, only a detector of constant, repeating or badly skewed output).
 * Does not own: running checks or any transport.
 */
import { fail, pass, reject, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { RNG_DEVICE_ID, RNG_REQUESTQ } from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.4.6.2 Device Requirements: Device Operation';
/** Value writable buffers are primed with, so untouched bytes can be told apart. */
const FILL = 0xee;

/** True when all bytes equal `value` (a constant buffer cannot be random beyond a few bytes). */
function allEqual(bytes: Uint8Array, value: number): boolean {
  return bytes.every((b) => b === value);
}

/**
 * Pearson's chi-square statistic of the byte histogram against the uniform distribution
 * (255 degrees of freedom). Random data stays far below 400 (p ≈ 1e-8 to exceed it).
 */
export function chiSquare(bytes: Uint8Array): number {
  const counts = new Array<number>(256).fill(0);
  for (const b of bytes) counts[b] = (counts[b] ?? 0) + 1;
  const expected = bytes.length / 256;
  return counts.reduce((sum, c) => sum + ((c - expected) * (c - expected)) / expected, 0);
}

/** Collects `total` random bytes with requests of at most 4 KiB (the device may return fewer). */
function gather(d: ConformanceDriver, total: number): Uint8Array | string {
  const out = new Uint8Array(total);
  let got = 0;
  for (let i = 0; got < total && i < 256; i++) {
    const buf = d.in(Math.min(4096, total - got), FILL);
    const used = d.request([buf]);
    if (used.len < 1 || used.len > buf.len) return `request ${i + 1}: used length ${used.len} for a ${buf.len}-byte buffer`;
    out.set(d.bytes(buf).subarray(0, used.len), got);
    got += used.len;
  }
  return got === total ? out : `only ${got} of ${total} bytes after 256 requests`;
}

const checks: DeviceCheck[] = [
  {
    id: 'rng.bytes',
    title: 'A request gets one or more random bytes',
    source: `${SPEC} ("The device MUST place one or more random bytes into the buffer"); AVPS-RNG-01, AVPS-RNG-02`,
    level: 'MUST',
    group: 'device',
    devices: ['rng'],
    run(d) {
      d.start();
      const buf = d.in(256, FILL);
      const used = d.request([buf]);
      if (used.len < 1) return fail('used length 0: no random byte was placed');
      if (used.len > buf.len) return fail(`used length ${used.len} for a ${buf.len}-byte buffer`);
      const bytes = d.bytes(buf).subarray(0, used.len);
      if (used.len >= 16 && allEqual(bytes, bytes[0] ?? FILL)) return fail(`the ${used.len} bytes returned are all 0x${(bytes[0] ?? 0).toString(16)}`);
      return pass(`${used.len} bytes`);
    },
  },
  {
    id: 'rng.used-len',
    title: 'A buffer split over three descriptors is filled and the used length stays within it',
    source: `${SPEC} ("it MAY use less than the entire buffer length"); VIRTIO 1.3 §2.7.4.1 (no assumption about the arrangement of descriptors)`,
    level: 'MUST',
    group: 'device',
    devices: ['rng'],
    run(d) {
      d.start();
      const bufs = [d.in(7, FILL), d.in(100, FILL), d.in(1000, FILL)];
      const total = bufs.reduce((n, b) => n + b.len, 0);
      const used = d.request(bufs);
      if (used.len < 1 || used.len > total) return fail(`used length ${used.len} for ${total} bytes of buffers`);
      return pass(`used length ${used.len} of ${total}`);
    },
  },
  {
    id: 'rng.randomness',
    title: 'The bytes look random: 16 KiB pass a byte-frequency test and do not repeat',
    source: 'AVPS-RNG-04 (bytes must be genuine entropy, never a predictable generator); statistical smoke test only',
    level: 'MUST',
    group: 'device',
    devices: ['rng'],
    run(d) {
      d.start({ queueSize: 64 });
      const bytes = gather(d, 16384);
      if (typeof bytes === 'string') return fail(bytes);
      const chi = chiSquare(bytes);
      if (chi > 400) return fail(`byte frequencies are far from uniform (chi-square ${chi.toFixed(0)} with 255 degrees of freedom; random data stays below 400)`);
      const blocks = new Set<string>();
      for (let i = 0; i + 16 <= bytes.length; i += 16) {
        const key = Buffer.from(bytes.subarray(i, i + 16)).toString('hex');
        if (blocks.has(key)) return fail(`the 16-byte block at offset ${i} repeats an earlier one`);
        blocks.add(key);
      }
      return pass(`chi-square ${chi.toFixed(0)} (255 degrees of freedom), no repeated 16-byte block`);
    },
  },
];

export const rngConformance: DeviceConformance = {
  device: 'rng',
  deviceId: RNG_DEVICE_ID,
  configSize: 0,
  probeQueue: RNG_REQUESTQ,
  probe(d) {
    const buf = d.in(64, FILL);
    return {
      buffers: [buf],
      verify: (used) => (used.len >= 1 && used.len <= buf.len ? null : `used length ${used.len} for a ${buf.len}-byte buffer`),
    };
  },
  wrongDirection(d) {
    // §5.4.6.1: the driver MUST NOT place driver-readable buffers; the device has nowhere to write.
    const buf = d.out(new Uint8Array(64).fill(0x5c));
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('the chain with only a device-readable buffer was not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a device-writable byte`);
        return pass('returned with used length 0; the device-readable buffer was left alone');
      },
    };
  },
  checks,
};
