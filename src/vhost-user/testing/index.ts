// SPDX-License-Identifier: Apache-2.0
/** Test helpers for the vhost-user codec (independent byte builder, sample messages). Re-exports only. */
export * from './byte-builder.js';
export * from './samples.js';
