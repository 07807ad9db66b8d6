// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can on the AVP CAN bus, as processes: `avp canbus` with a node socket and a host socket,
 * `avp serve can --bus-socket <node>`, and AVP's vhost-user front-end playing the Linux driver
 * (there is no QEMU front-end). START joins the bus (the node opens); a frame from the driver
 * reaches a host program on the bus, and a frame from the host program reaches the driver's
 * receive queue, FD included; STOP leaves the bus (bus-off from the bus is unit-tested in devices/can).
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConformance } from '../devices/can/conformance.js';
import { VhostUserDriver } from '../conformance/driver.js';
import { spawnAvp, type AvpProcess } from './testing/backend-process.js';

const le16 = (n: number) => [n & 0xff, n >> 8];
const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const tx = (id: number, flags: number, sdu: number[]) => Uint8Array.from([...le16(1), ...le16(sdu.length), 0, 0, 0, 0, ...le32(flags), ...le32(id), ...sdu]);

test('virtio-can on the AVP CAN bus: START joins, frames both ways (FD too), STOP leaves', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-can-bus-'));
  const procs: AvpProcess[] = [];
  let d: VhostUserDriver | undefined;
  const host = { text: '' };
  let peer: ReturnType<typeof createConnection> | undefined;
  try {
    procs.push(await spawnAvp(['canbus', '--name', 'b', '--node', `socket=${join(dir, 'ecu.sock')},name=ecu`, '--host-socket', join(dir, 'host.sock')], /"msg":"serving canbus/, { label: 'canbus' }));
    procs.push(await spawnAvp(['serve', 'can', '--socket-path', join(dir, 'dev.sock'), '--bus-socket', join(dir, 'ecu.sock')], /"msg":"serving /, { label: 'can' }));
    const p = createConnection({ path: join(dir, 'host.sock') });
    peer = p;
    await new Promise<void>((resolve, reject) => {
      p.once('connect', resolve).once('error', reject);
    });
    p.setEncoding('latin1').on('data', (s: string) => (host.text += s));
    d = VhostUserDriver.connect(join(dir, 'dev.sock'), canConformance, { timeoutMs: 20_000 });
    const drv = d;
    drv.start({ queueSize: 16 });
    const result = (queue: number, out: Uint8Array): number => {
      const r = drv.in(1, 0xee);
      drv.request([drv.out(out), r], { queue });
      return drv.bytes(r)[0] ?? -1;
    };
    assert.equal(result(2, Uint8Array.from(le16(0x0201))), 0, 'START');
    await procs[0]!.waitLog(/ecu: channel open/);
    assert.equal(result(0, tx(0x123, 0, [0xca, 0xfe])), 0);
    assert.equal(result(0, tx(0x1abcd, 0x8000 | 0x4000, new Array<number>(12).fill(0x5a))), 0);
    for (let i = 0; i < 400 && !host.text.includes('D0001ABCD9'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(host.text, /t1232CAFE\r/);
    assert.match(host.text, new RegExp(`D0001ABCD9${'5A'.repeat(12)}\\r`));
    // Host → device: a classic frame, then an FD one (the bus speaks slcan's FD extension to the device).
    p.write('t7FF142\rd0010\r');
    await new Promise((r) => setTimeout(r, 0));
    for (const [len, id, flags, sdu] of [[17, 0x7ff, 0, [0x42]], [16, 0x001, 0x4000, []]] as const) {
      const buf = drv.in(16 + 64, 0xee);
      const used = drv.request([buf], { queue: 1 });
      const b = drv.bytes(buf);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      assert.deepEqual({ len: used.len, type: v.getUint16(0, true), flags: v.getUint32(8, true), id: v.getUint32(12, true), sdu: [...b.subarray(16, used.len)] }, { len, type: 0x0101, flags, id, sdu: [...sdu] });
    }
    assert.equal(result(2, Uint8Array.from(le16(0x0202))), 0, 'STOP');
    await procs[0]!.waitLog(/ecu: channel closed/);
    assert.equal(result(0, tx(0x100, 0, [])), 1, 'a frame after STOP is NOT_OK');
  } finally {
    d?.fe.close();
    peer?.destroy();
    for (const p of procs.reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
