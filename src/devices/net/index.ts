// SPDX-License-Identifier: Apache-2.0
/** virtio-net device and switch (VIRTIO 1.3 §5.1). Re-exports only. */
export * from './spec.js';
export * from './errors.js';
export * from './host.js';
export * from './mac-table.js';
export * from './metrics.js';
export * from './shaper.js';
export * from './model.js';
export * from './switch.js';
export * from './options.js';
export * from './kind.js';
