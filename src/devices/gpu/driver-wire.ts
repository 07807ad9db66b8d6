// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu requests as a driver builds them (VIRTIO 1.3 §5.7.6): the 24-byte
 * `virtio_gpu_ctrl_hdr` and the u32 fields after it, and `virtio_gpu_mem_entry` lists. Written
 * field by field with DataView, independently of the device's own code (spec.ts, commands.ts), so
 * that the conformance suite (conformance.ts) and the unit-test driver (testing.ts) check the
 * device against the spec rather than against itself. Both use this one copy.
 * Does not own: reading responses, or sending anything.
 */

/** A request: header (`type`, `flags`, `fence_id`), then u32 `fields`, then `extra` bytes. */
export function gpuRequest(type: number, fields: readonly number[] = [], extra: Uint8Array = new Uint8Array(0), opts: { flags?: number; fenceId?: bigint } = {}): Uint8Array {
  const b = new Uint8Array(24 + 4 * fields.length + extra.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, opts.flags ?? 0, true);
  v.setBigUint64(8, opts.fenceId ?? 0n, true);
  fields.forEach((f, i) => v.setUint32(24 + 4 * i, f >>> 0, true));
  b.set(extra, 24 + 4 * fields.length);
  return b;
}

/** `virtio_gpu_mem_entry` list: `{ addr u64, length u32, padding u32 }` each. */
export function memEntries(entries: ReadonlyArray<{ addr: number | bigint; length: number }>): Uint8Array {
  const b = new Uint8Array(16 * entries.length);
  const v = new DataView(b.buffer);
  entries.forEach((e, i) => {
    v.setBigUint64(16 * i, BigInt(e.addr), true);
    v.setUint32(16 * i + 8, e.length, true);
  });
  return b;
}
