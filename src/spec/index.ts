// SPDX-License-Identifier: Apache-2.0
/** VIRTIO constants and wire structs as codecs. Re-exports only. */
export * from './codec.js';
export * from './virtio.js';
export * from './split-ring.js';
export * from './packed-ring.js';
