// SPDX-License-Identifier: Apache-2.0
/**
 * Placing one received frame into a port's receive chains (VIRTIO 1.3 §5.1.6.3, §5.1.6.4).
 *
 * Owns: choosing the chains for a packet (one without VIRTIO_NET_F_MRG_RXBUF, as many as it needs
 * with it), the stash of chains popped for a frame that did not fit, and writing the header and
 * frame across them with `num_buffers` set (§5.1.6.4.1 "The device MUST set num_buffers to the
 * number of descriptors used to hold the incoming packet"), filling every chain but the last
 * completely ("MUST use all buffers but the last ... completely up to the full length of each
 * buffer supplied"), published with one used-index update.
 * Does not own: counting drops and notifying the guest (`model.ts`), what is forwarded (`switch.ts`).
 */
import type { DescriptorChain } from '../../queue/chain.js';
import type { Virtqueue as DeviceQueue } from '../../queue/virtqueue.js';
import { VIRTIO_NET_HDR_NUM_BUFFERS_OFF, VIRTIO_NET_HDR_SIZE } from './spec.js';

const HDR = VIRTIO_NET_HDR_SIZE;

/**
 * Copies src[from .. end) into the chain's device-writable buffers, in order, as far as they
 * reach; returns the bytes written. Buffer by buffer through `GuestMemory.write` (no cursor
 * objects on the hot path); the queue checked every buffer against guest memory.
 */
function fill(chain: DescriptorChain, src: Uint8Array, from: number, end: number): number {
  let off = from;
  for (const b of chain.writable) {
    if (off >= end) break;
    const take = Math.min(b.len, end - off);
    chain.memory.write(b.addr, src.subarray(off, off + take));
    off += take;
  }
  return off - from;
}

/** Called before a chain goes back to the guest unused (length 0); `unusable` when it was too small to use at all. */
export type ReturnedChain = (chain: DescriptorChain, unusable: boolean) => void;

/** Receive chains popped for a frame that did not fit, kept for the next frame (same queue only). */
export class RxChains {
  #stash: DescriptorChain[] = [];
  #stashQueue: DeviceQueue | undefined;

  /** Forgets the stash (the driver reset; its chains are gone with the ring). */
  clear(): void {
    this.#stash = [];
    this.#stashQueue = undefined;
  }

  /**
   * The receive chains for a packet of `need` bytes (header included): from the stash first, then
   * popped. Null when the queue runs out first: the chains popped so far stay stashed for the next
   * frame (they are never returned half-used). Without MRG_RXBUF the packet must fit one chain;
   * one that is too small is returned with used length 0. `returned` hears of every chain returned.
   */
  take(q: DeviceQueue, need: number, mrg: boolean, returned: ReturnedChain): DescriptorChain[] | null {
    const chains = this.#stashQueue === q ? this.#stash : [];
    this.#stash = [];
    this.#stashQueue = undefined;
    let k = 0;
    let have = 0;
    for (;;) {
      while (k < chains.length && have < need) {
        // Safe: k < chains.length.
        have += chains[k]!.writableLength;
        k++;
      }
      if (have >= need) break;
      if (!mrg && k > 0) {
        // Safe: k > 0 chains were taken; without MRG_RXBUF there is only ever one.
        const small = chains[0]!;
        returned(small, false);
        q.pushUsed(small.head, 0);
        return null;
      }
      const c = q.pop();
      if (c === null) {
        this.#stash = chains;
        this.#stashQueue = q;
        return null;
      }
      // The first chain must hold the whole header (Linux reads it from the first buffer).
      if (c.writableLength < (chains.length === 0 ? HDR : 1)) {
        returned(c, true);
        q.pushUsed(c.head, 0);
        continue;
      }
      chains.push(c);
    }
    if (k < chains.length) {
      this.#stash = chains.slice(k);
      this.#stashQueue = q;
    }
    return chains.slice(0, k);
  }
}

/** Writes header + frame (scratch[0 .. total)) across `chains` and publishes them at once. */
export function writeRx(q: DeviceQueue, chains: readonly DescriptorChain[], scratch: Uint8Array, total: number): void {
  const s = scratch;
  s.fill(0, 0, HDR);
  // num_buffers is a le16; chains.length <= queue size <= 32768.
  s[VIRTIO_NET_HDR_NUM_BUFFERS_OFF] = chains.length & 0xff;
  s[VIRTIO_NET_HDR_NUM_BUFFERS_OFF + 1] = chains.length >> 8;
  const only = chains.length === 1 ? chains[0] : undefined;
  if (only !== undefined) {
    fill(only, s, 0, total);
    q.pushUsed(only.head, total);
    return;
  }
  const used: Array<{ head: number; len: number }> = [];
  let off = 0;
  for (const c of chains) {
    const take = fill(c, s, off, total);
    used.push({ head: c.head, len: take });
    off += take;
  }
  q.pushUsedBatch(used);
}
