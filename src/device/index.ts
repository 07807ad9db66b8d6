// SPDX-License-Identifier: Apache-2.0
/** The device contract, negotiation, status machine and in-process harness. Re-exports only. */
export * from './errors.js';
export * from './contract.js';
export * from './negotiation.js';
export * from './runner.js';
export * from './serve.js';
export * from './harness.js';
export * from './manual-reactor.js';
export * from './timer-queue.js';
