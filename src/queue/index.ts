// SPDX-License-Identifier: Apache-2.0
/** Split and packed virtqueues, device side and driver side. Re-exports only. */
export * from './errors.js';
export * from './chain.js';
export * from './rings.js';
export * from './split-device.js';
export type * from './inflight.js';
export * from './split-driver.js';
export * from './virtqueue.js';
export * from './packed-device.js';
export * from './packed-driver.js';
