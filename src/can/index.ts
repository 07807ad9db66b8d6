// SPDX-License-Identifier: Apache-2.0
/**
 * The CAN layer: frames, their timing on the wire, filters, the slcan and candump formats, and the
 * AVP CAN bus model. Pure: no I/O; the bus server (platform/canbus) and the virtio-can device use it.
 * Re-exports only.
 */
export * from './frame.js';
export * from './timing.js';
export * from './filter.js';
export * from './slcan.js';
export * from './candump.js';
export * from './bus.js';
export * from './errors.js';
