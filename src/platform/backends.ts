// SPDX-License-Identifier: Apache-2.0
/**
 * Where the back-end worker entry lives, for callers that start back-end threads
 * (`BackendThread.start({ entry: BACKEND_WORKER_ENTRY, ... })`).
 */
export const BACKEND_WORKER_ENTRY = new URL('./backend-worker.js', import.meta.url);
