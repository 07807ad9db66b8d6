// SPDX-License-Identifier: Apache-2.0
/**
 * `avp serve console --socket PATH` as a process, driven by AVP's vhost-user front-end playing
 * Linux's multiport sequence (there is no QEMU front-end): a host program connected to the socket
 * is the console's other end. The device reports it with PORT_OPEN, the guest's output reaches it,
 * and what it writes reaches the guest. The socket is 0600 and removed on exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VhostUserDriver } from '../conformance/driver.js';
import { consoleConformance } from '../devices/console/conformance.js';
import { spawnAvp, type AvpProcess } from './testing/backend-process.js';

const msg = (id: number, event: number, value: number) => Uint8Array.of(id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24, event & 0xff, event >> 8, value & 0xff, value >> 8);

test('avp serve console --socket: a host program is the other end of port 0, both ways, with PORT_OPEN', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-console-sock-'));
  const hostSock = join(dir, 'console.sock');
  let p: AvpProcess | undefined;
  let client: Socket | undefined;
  let d: VhostUserDriver | undefined;
  try {
    p = await spawnAvp(['serve', 'console', '--socket-path', join(dir, 'dev.sock'), '--socket', hostSock], /"msg":"serving /, { label: 'console' });
    assert.equal(statSync(hostSock).mode & 0o777, 0o600);
    const c = createConnection({ path: hostSock });
    client = c;
    let got = '';
    c.setEncoding('utf8').on('data', (s: string) => (got += s));
    await new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject));
    d = VhostUserDriver.connect(join(dir, 'dev.sock'), consoleConformance, { timeoutMs: 20_000 });
    const drv = d;
    drv.start({ features: 0xffffffn | (1n << 32n) });
    const receive = (): number[] => {
      const buf = drv.in(64, 0xee);
      const used = drv.request([buf], { queue: 2 });
      const b = drv.bytes(buf);
      return [b[0] ?? 0, (b[4] ?? 0) | ((b[5] ?? 0) << 8), b[6] ?? 0, used.len];
    };
    drv.request([drv.out(msg(0xffffffff, 0, 1))], { queue: 3 }); // DEVICE_READY
    assert.deepEqual(receive(), [0, 1, 0, 8], 'PORT_ADD port 0');
    drv.request([drv.out(msg(0, 3, 1))], { queue: 3 }); // PORT_READY
    assert.deepEqual(receive(), [0, 4, 1, 8], 'CONSOLE_PORT');
    assert.deepEqual(receive().slice(0, 2), [0, 7], 'PORT_NAME');
    assert.deepEqual(receive(), [0, 6, 1, 8], 'PORT_OPEN 1: the host program is connected');
    drv.request([drv.out(new TextEncoder().encode('login: '))], { queue: 1 });
    for (let i = 0; i < 400 && got !== 'login: '; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(got, 'login: ');
    c.write('root\n');
    await new Promise((r) => setTimeout(r, 0));
    const rx = drv.in(32, 0xee);
    const used = drv.request([rx], { queue: 0 });
    assert.equal(new TextDecoder().decode(drv.bytes(rx).subarray(0, used.len)), 'root\n');
  } finally {
    d?.fe.close();
    client?.destroy();
    assert.equal(await p?.stop(), 0);
    assert.ok(!existsSync(hostSock), 'the console socket is removed on exit');
    rmSync(dir, { recursive: true, force: true });
  }
});
