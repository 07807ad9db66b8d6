// SPDX-License-Identifier: Apache-2.0
/** vhost-user: wire constants, payload codecs, typed messages and the streaming parser. Re-exports only. */
export * from './protocol.js';
export * from './errors.js';
export * from './messages.js';
export * from './parser.js';
