// SPDX-License-Identifier: Apache-2.0
/** virtio-fs device. Re-exports only. */
export * from './spec.js';
export * from './errors.js';
export * from './host.js';
export * from './metrics.js';
export * from './model.js';
export * from './native-host.js';
export * from './kind.js';
