// SPDX-License-Identifier: Apache-2.0
/**
 * RPMB frame helpers: building response frames and the HMAC-SHA256 over frames.
 *
 * Owns: the MAC rule (§5.19: HMAC-SHA256 with the 256-bit key over bytes 228..511 of each frame,
 * everything but `stuff` and `key_mac`, in frame order) and constant-time MAC comparison.
 * Does not own: the request rules (`model.ts`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { RPMB_FRAME_SIZE, RPMB_OFF_DATA, RPMB_OFF_KEY_MAC, type RpmbFrameFields, writeFrameFields } from './spec.js';

/** HMAC-SHA256 of `frames` (a whole number of 512-byte frames) under `key`. */
export function frameMac(key: Uint8Array, frames: Uint8Array): Uint8Array {
  const h = createHmac('sha256', key);
  for (let off = 0; off + RPMB_FRAME_SIZE <= frames.length; off += RPMB_FRAME_SIZE) h.update(frames.subarray(off + RPMB_OFF_DATA, off + RPMB_FRAME_SIZE));
  return new Uint8Array(h.digest());
}

/** True when the last frame's key_mac equals the MAC of `frames` (constant time). */
export function macMatches(key: Uint8Array, frames: Uint8Array): boolean {
  const last = frames.length - RPMB_FRAME_SIZE;
  const got = frames.subarray(last + RPMB_OFF_KEY_MAC, last + RPMB_OFF_KEY_MAC + 32);
  return timingSafeEqual(frameMac(key, frames), got);
}

/** Writes the MAC of `frames` into the last frame's key_mac. */
export function signFrames(key: Uint8Array, frames: Uint8Array): void {
  frames.set(frameMac(key, frames), frames.length - RPMB_FRAME_SIZE + RPMB_OFF_KEY_MAC);
}

/** A new 512-byte frame with the given fields (all else zero). */
export function newFrame(f: Partial<RpmbFrameFields> & { reqResp: number }): Uint8Array {
  const frame = new Uint8Array(RPMB_FRAME_SIZE);
  writeFrameFields(frame, { writeCounter: 0, address: 0, blockCount: 0, result: 0, ...f });
  return frame;
}
