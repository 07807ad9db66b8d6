// SPDX-License-Identifier: Apache-2.0
/** The AVP CAN bus service (`avp canbus`, manifest `buses:`). Re-exports only. */
export * from './config.js';
export * from './server.js';
export * from './replay.js';
export * from './slcan-port.js';
export * from './socketcan.js';
