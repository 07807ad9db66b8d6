// SPDX-License-Identifier: Apache-2.0
/** Guest memory: bounds-checked 64-bit guest-physical access. Re-exports only. */
export * from './errors.js';
export * from './guest-memory.js';
export * from './allocator.js';
