// SPDX-License-Identifier: Apache-2.0
/** virtio-vsock device (VIRTIO 1.3 §5.10). Re-exports only. */
export * from './spec.js';
export * from './errors.js';
export * from './host.js';
export * from './fabric.js';
export * from './metrics.js';
export * from './model.js';
export * from './options.js';
export * from './kind.js';
