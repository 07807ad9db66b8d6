// SPDX-License-Identifier: Apache-2.0
/** virtio-gpu 2D: re-exports only. */
export { GpuDevice, type GpuOptions } from './model.js';
export { gpuKind } from './kind.js';
export type { GpuMetrics } from './metrics.js';
export { decodePng, encodePng } from './pixels.js';
