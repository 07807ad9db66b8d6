// SPDX-License-Identifier: Apache-2.0
/**
 * The EDID a virtio-gpu scanout reports (GET_EDID, VIRTIO 1.3 §5.7.6.8, feature VIRTIO_GPU_F_EDID):
 * one 128-byte VESA E-EDID 1.4 base block whose preferred detailed timing is the scanout's size at
 * 60 Hz, with the monitor name "AVP Virtual". QEMU's front-end does not supply an EDID for a
 * vhost-user back-end to pass on unless the display socket's EDID protocol feature is used, so the
 * back-end makes its own, as QEMU's built-in device does (hw/display/edid-generate.c).
 *
 * Owns: the block layout (VESA E-EDID Release A2, §3) and its checksum. Does not own: which size a
 * scanout has.
 */

/** The block is 128 bytes; GET_EDID returns it in a 1024-byte field with its size. */
export const EDID_BLOCK_SIZE = 128;
/** Largest active size a detailed timing descriptor holds (12 bits). */
export const EDID_MAX_ACTIVE = 4095;

/** Manufacturer id: three letters of 5 bits each ("AVP"), big-endian. */
function manufacturer(id: string): number {
  return [...id].reduce((v, ch) => (v << 5) | (ch.charCodeAt(0) - 64), 0);
}

/** An 18-byte display descriptor with a text payload (tag 0xFC name, 0xFF serial). */
function textDescriptor(tag: number, text: string): Uint8Array {
  const d = new Uint8Array(18);
  d[3] = tag;
  const bytes = new TextEncoder().encode(text.slice(0, 13));
  d.set(bytes, 5);
  // "terminated with 0Ah and padded with 20h" when shorter than 13 bytes.
  if (bytes.length < 13) {
    d[5 + bytes.length] = 0x0a;
    d.fill(0x20, 6 + bytes.length);
  }
  return d;
}

/**
 * The detailed timing descriptor of `width` × `height` at 60 Hz, with fixed porches in the manner of
 * CVT reduced blanking (160 pixels, at least 23 lines of blanking).
 */
function detailedTiming(width: number, height: number): Uint8Array {
  const hfront = 48;
  const hsync = 32;
  const hblank = 160;
  const vfront = 3;
  const vsync = 5;
  const vblank = Math.max(23, Math.ceil(height * 0.03));
  const clock10k = Math.min(0xffff, Math.ceil(((width + hblank) * (height + vblank) * 60) / 10_000));
  // Image size in mm at 96 dpi.
  const wmm = Math.round((width * 25.4) / 96);
  const hmm = Math.round((height * 25.4) / 96);
  const d = new Uint8Array(18);
  d[0] = clock10k & 0xff;
  d[1] = clock10k >> 8;
  d[2] = width & 0xff;
  d[3] = hblank & 0xff;
  d[4] = ((width >> 8) << 4) | (hblank >> 8);
  d[5] = height & 0xff;
  d[6] = vblank & 0xff;
  d[7] = ((height >> 8) << 4) | (vblank >> 8);
  d[8] = hfront & 0xff;
  d[9] = hsync & 0xff;
  d[10] = ((vfront & 0xf) << 4) | (vsync & 0xf);
  d[11] = ((hfront >> 8) << 6) | ((hsync >> 8) << 4) | ((vfront >> 4) << 2) | (vsync >> 4);
  d[12] = wmm & 0xff;
  d[13] = hmm & 0xff;
  d[14] = (((wmm >> 8) & 0xf) << 4) | ((hmm >> 8) & 0xf);
  // Digital separate sync, both polarities positive.
  d[17] = 0x1e;
  return d;
}

/** The EDID base block for a `width` × `height` scanout (each 1..4095), serial `serial`. */
export function makeEdid(width: number, height: number, serial: number): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > EDID_MAX_ACTIVE || height > EDID_MAX_ACTIVE) {
    // Our own bug if it happens: the options schema bounds the sizes.
    throw new RangeError(`EDID size ${width}x${height} outside 1..${EDID_MAX_ACTIVE}`);
  }
  const e = new Uint8Array(EDID_BLOCK_SIZE);
  e.set([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00], 0);
  const m = manufacturer('AVP');
  e[8] = m >> 8;
  e[9] = m & 0xff;
  e[10] = 0x01; // product code 0x0001, little-endian
  new DataView(e.buffer).setUint32(12, serial >>> 0, true);
  e[16] = 1; // week
  e[17] = 2025 - 1990; // model year
  e[18] = 1; // EDID 1.4
  e[19] = 4;
  e[20] = 0x80; // digital input, colour depth and interface undefined
  e[21] = Math.max(1, Math.round((width * 2.54) / 96)); // size in cm at 96 dpi
  e[22] = Math.max(1, Math.round((height * 2.54) / 96));
  e[23] = 120; // gamma 2.2
  e[24] = 0x06; // sRGB default colour space, preferred timing is native
  // sRGB chromaticity coordinates (red, green, blue, white point).
  e.set([0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54], 25);
  // No established timings (35-37); standard timings unused (0x0101 each).
  e.fill(0x01, 38, 54);
  e.set(detailedTiming(width, height), 54);
  e.set(textDescriptor(0xfc, 'AVP Virtual'), 72);
  e.set(textDescriptor(0xff, `AVP-${serial}`), 90);
  e.set(Uint8Array.of(0, 0, 0, 0x10), 108); // dummy descriptor
  e[126] = 0; // no extension blocks
  const sum = e.subarray(0, 127).reduce((s, b) => s + b, 0);
  e[127] = (256 - (sum % 256)) % 256;
  return e;
}
