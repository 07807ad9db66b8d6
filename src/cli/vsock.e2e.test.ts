// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: `avp serve vsock` serving two stock Linux 6.1 guests under QEMU 7.2 from one process
 * (group mode, `--vm`), with the guests' own virtio-vsock driver and socat (AF_VSOCK) in the guest.
 *
 * One back-end, three VMs configured (CID 3 and 4 booted, CID 5 never booted), two boots at once:
 * - host → guest: the test connects to VM 3's `<uds>`, sends `CONNECT 1234`, reads `OK <port>`, and
 *   echoes 1 MiB through socat's echo server in the guest; checksums match;
 * - guest → host: VM 3 connects to host port 5000, which the test serves on `<uds>_5000` with an
 *   echo server; 1 MiB each way; the guest's checksums of what it sent and got back match, and
 *   match the host's;
 * - guest ↔ guest: VM 4 connects to VM 3 port 1234 and echoes 1 MiB; checksums match;
 * - allow-list: VM 4 connecting to CID 5 (a group member VM 4 does not allow) gets "Connection
 *   reset by peer", and the back-end counts it as `notAllowed`.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { startVm, type QemuVm, type VmDevice, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const BOOT_MS = 300_000;
const MIB = 1 << 20;

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];
const vms: QemuVm[] = [];
const servers: Server[] = [];

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function vm(devices: readonly VmDevice[], script: string, name: string): VmSpec {
  return { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(script)], name };
}

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-vsock-'));
});

after(async () => {
  await Promise.all(vms.map((v) => v.kill()));
  await Promise.all(backends.map((b) => b.stop()));
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

/** An echo server on a Unix socket: what it received, hashed, once the client ended. */
function echoServer(path: string): { server: Server; received: Promise<{ bytes: number; sha: string }> } {
  let resolveReceived: (v: { bytes: number; sha: string }) => void = () => {};
  const received = new Promise<{ bytes: number; sha: string }>((resolve) => {
    resolveReceived = resolve;
  });
  const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    const h = createHash('sha256');
    let bytes = 0;
    sock.on('data', (chunk: Buffer) => {
      h.update(chunk);
      bytes += chunk.length;
      sock.write(chunk);
    });
    sock.on('end', () => {
      sock.end();
      resolveReceived({ bytes, sha: h.digest('hex') });
    });
    sock.on('error', () => {});
  });
  server.listen(path);
  servers.push(server);
  return { server, received };
}

/**
 * Connects to a hybrid-vsock socket, asks for guest `port`, checks the `OK` line, sends `data`,
 * half-closes, and returns everything the guest sent back (after the OK line) until it closed.
 */
function hybridExchange(udsPath: string, port: number, data: Uint8Array, timeoutMs: number): Promise<{ ok: string; reply: Buffer }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path: udsPath, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ok: string | undefined;
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`vsock exchange with port ${port} timed out; ok=${ok ?? '-'}, got ${chunks.reduce((n, c) => n + c.length, 0)} bytes`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(`CONNECT ${port}\n`));
    sock.on('data', (chunk: Buffer) => {
      if (ok !== undefined) {
        chunks.push(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      ok = head.subarray(0, nl).toString('latin1');
      chunks.push(head.subarray(nl + 1));
      sock.end(data);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      sock.destroy();
      if (ok === undefined) reject(new Error(`port ${port}: closed before the OK line (the guest refused)`));
      else resolve({ ok, reply: Buffer.concat(chunks) });
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Connects to guest `port` through the hybrid socket, retrying while the guest refuses (its listener may not be up yet). */
async function hybridExchangeRetrying(udsPath: string, port: number, data: Uint8Array, deadline: number): Promise<{ ok: string; reply: Buffer }> {
  for (;;) {
    try {
      return await hybridExchange(udsPath, port, data, Math.max(1000, deadline - Date.now()));
    } catch (e: unknown) {
      if (Date.now() > deadline || !(e instanceof Error) || !/refused|closed before/.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const WAIT_VSOCK = 'avp-wait /dev/vsock 20 || exit 3';

test('e2e: vsock host ↔ guest (both ways) and guest ↔ guest through one avp serve vsock process, 1 MiB each, allow-list enforced', async () => {
  const uds3 = join(dir, 'vm3.vsock');
  const uds4 = join(dir, 'vm4.vsock');
  const sock4 = join(dir, 'vm4.sock');
  const sock5 = join(dir, 'vm5.sock');
  const hostEcho = echoServer(`${uds3}_5000`);
  const backend = await startBackend('vsock', [
    '--guest-cid', '3', '--uds-path', uds3, '--allow-peer', '4',
    '--vm', `socket=${sock4},cid=4,uds=${uds4},allow=3`,
    '--vm', `socket=${sock5},cid=5,allow=3+4`,
  ]);
  backends.push(backend);

  // VM 3: an echo server on port 1234 (for the host and for VM 4), then 1 MiB to host port 5000
  // and back; stays up until the host sends "done" to port 9999.
  const script3 = `${WAIT_VSOCK}
socat VSOCK-LISTEN:1234,reuseaddr,fork PIPE &
head -c ${MIB} /dev/urandom > /tmp/d
avp-kv g2h_sent "$(sha256sum < /tmp/d | cut -c1-64)"
if socat -t 60 -T 120 'OPEN:/tmp/d!!CREATE:/tmp/e' VSOCK-CONNECT:2:5000 2>/tmp/err; then :; else avp-kv g2h_error "$(tail -1 /tmp/err)"; fi
avp-kv g2h_back "$(sha256sum < /tmp/e | cut -c1-64)"
avp-kv g2h_back_bytes "$(wc -c < /tmp/e)"
avp-say listening
avp-kv done "$(socat -T 200 -u VSOCK-LISTEN:9999 STDOUT)"
`;
  // VM 4: 1 MiB to VM 3's echo server (retrying until it listens), then a peer it does not allow.
  const script4 = `${WAIT_VSOCK}
head -c ${MIB} /dev/urandom > /tmp/d
avp-kv g2g_sent "$(sha256sum < /tmp/d | cut -c1-64)"
# VM 3's kernel resets a connect that comes before its listener is up (ECONNRESET), which
# socat's retry= does not retry (it retries refusals only): retry the whole exchange.
ok=0
for i in $(seq 90); do
  if socat -t 60 -T 120 'OPEN:/tmp/d!!CREATE:/tmp/e' VSOCK-CONNECT:3:1234 2>/tmp/err; then ok=1; break; fi
  sleep 1
done
[ $ok = 1 ] || avp-kv g2g_error "$(tail -1 /tmp/err)"
avp-kv g2g_back "$(sha256sum < /tmp/e | cut -c1-64)"
if socat -u OPEN:/dev/null VSOCK-CONNECT:5:1234 2>/tmp/deny; then avp-kv deny connected; else avp-kv deny "$(tail -1 /tmp/deny)"; fi
`;
  const a = await startVm(vm([vhostUserDevice('vsock', backend.socket, { guestCid: 3 })], script3, 'avp-vsock-3'));
  vms.push(a);
  const b = await startVm(vm([vhostUserDevice('vsock', sock4, { guestCid: 4 })], script4, 'avp-vsock-4'));
  vms.push(b);
  const deadline = Date.now() + BOOT_MS;

  // Guest → host, then host → guest (VM 3's echo server).
  await a.waitForLine(/AVP-GUEST: listening/, BOOT_MS);
  const fromGuest = await hostEcho.received;
  const hostData = randomBytes(MIB);
  const ex = await hybridExchangeRetrying(uds3, 1234, hostData, deadline);
  assert.match(ex.ok, /^OK \d+$/, 'the hybrid handshake answers OK <hostport>');
  assert.equal(ex.reply.length, MIB, 'host → guest: every byte came back');
  assert.equal(sha256(ex.reply), sha256(hostData), 'host → guest: checksums match');
  // VM 4 talks to VM 3's echo server: VM 3 must stay up until VM 4 is done, then it may finish.
  await b.waitForLine(/AVP-GUEST: EXIT (\d+)/, Math.max(1000, deadline - Date.now()));
  await hybridExchangeRetrying(uds3, 9999, Buffer.from('done'), deadline).catch(() => undefined);
  await a.waitForLine(/AVP-GUEST: EXIT (\d+)/, Math.max(1000, deadline - Date.now()));
  const kv3 = new Map([...a.lines].flatMap((l) => [...l.matchAll(/AVP-GUEST: KV ([\w.-]+)=(.*)$/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const)));
  const kv4 = new Map([...b.lines].flatMap((l) => [...l.matchAll(/AVP-GUEST: KV ([\w.-]+)=(.*)$/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const)));

  assert.equal(kv3.get('g2h_error'), undefined, `guest → host socat: ${kv3.get('g2h_error') ?? ''}`);
  assert.equal(fromGuest.bytes, MIB, 'guest → host: the host received 1 MiB');
  assert.equal(fromGuest.sha, kv3.get('g2h_sent'), 'guest → host: the host got what the guest sent');
  assert.equal(kv3.get('g2h_back_bytes'), String(MIB));
  assert.equal(kv3.get('g2h_back'), kv3.get('g2h_sent'), 'guest → host → guest: the echo matches');
  assert.equal(kv3.get('done'), 'done');

  assert.equal(kv4.get('g2g_error'), undefined, `guest → guest socat: ${kv4.get('g2g_error') ?? ''}`);
  assert.equal(kv4.get('g2g_back'), kv4.get('g2g_sent'), 'guest 4 → guest 3 → guest 4: the echo matches');
  assert.match(kv4.get('deny') ?? '', /Connection reset by peer/, 'a peer outside the allow-list is reset');

  // The back-end's own account, through SIGUSR1.
  backend.child.kill('SIGUSR1');
  const line = await backend.waitLog(/"msg":"metrics"/, 30_000);
  const metrics = (JSON.parse(line) as { metrics: Record<string, { resets?: { notAllowed?: number }; bytes?: Record<string, number> }> }).metrics;
  assert.ok((metrics['vsock-4']?.resets?.notAllowed ?? 0) >= 1, `VM 4's device counted the refused peer: ${line}`);
  assert.ok((metrics['vsock']?.bytes?.['guestToHost'] ?? 0) >= MIB, 'VM 3 sent 1 MiB to the host');
  assert.ok((metrics['vsock']?.bytes?.['peerToGuest'] ?? 0) >= MIB, 'VM 3 got 1 MiB from VM 4');
});
