// SPDX-License-Identifier: Apache-2.0
/** virtio-input: re-exports only. */
export { InputDevice, checkScript, type InputOptions } from './model.js';
export { inputKind } from './kind.js';
export { INPUT_TYPES, makeProfile, type InputProfile, type InputType } from './profiles.js';
export type { InputMetrics } from './metrics.js';
