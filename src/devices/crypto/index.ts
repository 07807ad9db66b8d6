// SPDX-License-Identifier: Apache-2.0
/** virtio-crypto device. Re-exports only. */
export * from './spec.js';
export * from './sessions.js';
export * from './qemu-session.js';
export * from './metrics.js';
export * from './model.js';
export * from './kind.js';
