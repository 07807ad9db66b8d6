// SPDX-License-Identifier: Apache-2.0
/** virtio-i2c adapter with simulated devices. Re-exports only. */
export * from './spec.js';
export * from './errors.js';
export * from './host.js';
export * from './clients.js';
export * from './metrics.js';
export * from './model.js';
export * from './kind.js';
