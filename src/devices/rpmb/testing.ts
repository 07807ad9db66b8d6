// SPDX-License-Identifier: Apache-2.0
/** Fakes for virtio-rpmb tests: an in-memory state store that counts saves. */
import type { RpmbState, RpmbStore } from './host.js';
import { RPMB_CAPACITY_UNIT } from './spec.js';

export class MemoryRpmbStore implements RpmbStore {
  saves = 0;
  saved: { key: Uint8Array | null; writeCounter: number } | undefined;
  readonly #capacity: number;

  constructor(capacityUnits = 1) {
    this.#capacity = capacityUnits;
  }

  load(): RpmbState {
    return { key: null, writeCounter: 0, data: new Uint8Array(this.#capacity * RPMB_CAPACITY_UNIT) };
  }

  save(state: RpmbState): void {
    this.saves++;
    this.saved = { key: state.key === null ? null : state.key.slice(), writeCounter: state.writeCounter };
  }
}
