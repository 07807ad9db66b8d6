// SPDX-License-Identifier: Apache-2.0
/** virtio-can (VIRTIO 1.4 "CAN Device"). Re-exports only. */
export * from './spec.js';
export * from './model.js';
export * from './host.js';
export * from './bus-link.js';
export * from './errors.js';
export { canConformance } from './conformance.js';
export { canKind } from './kind.js';
