// SPDX-License-Identifier: Apache-2.0
/** virtio-gpio device. Re-exports only. */
export * from './spec.js';
export * from './errors.js';
export * from './lines.js';
export * from './control.js';
export * from './metrics.js';
export * from './model.js';
export * from './kind.js';
