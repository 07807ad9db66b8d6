// SPDX-License-Identifier: Apache-2.0
/**
 * The request loop every queue-driven device shares (VIRTIO 1.3 §2.7.10 pattern): with
 * notifications disabled, pop and handle every available chain; re-enable notifications and
 * re-check for buffers that raced in; then send one used-buffer notification if the driver wants
 * it (EVENT_IDX `used_event`, or NO_INTERRUPT).
 * Does not own: what a chain means (the `handle` callback) or how notifications travel.
 */
import type { DescriptorChain } from '../queue/chain.js';
import type { DeviceContext } from './contract.js';

/**
 * Serves queue `index` until it is empty. `handle` returns the number of bytes it wrote into the
 * chain's writable part (the used length). Returns the number of chains served.
 */
export function serveQueue(ctx: DeviceContext, index: number, handle: (chain: DescriptorChain) => number): number {
  const q = ctx.queue(index);
  if (q === undefined) return 0;
  let served = 0;
  do {
    q.disableNotifications();
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      q.pushUsed(chain.head, handle(chain));
      served++;
    }
  } while (q.enableNotifications());
  if (q.needsNotification()) ctx.notify(index);
  return served;
}
