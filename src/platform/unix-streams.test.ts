// SPDX-License-Identifier: Apache-2.0
/**
 * The vsock device on real Unix sockets through the `unixStreams` capability: the hybrid handshake
 * and stream data both ways with kernel socket buffers filling up (back-pressure), driven by a
 * poll loop over the fds the device watches. Also: a stale socket file at `<uds>` is replaced, and
 * dispose removes the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHarness } from '../device/harness.js';
import { VsockDevice } from '../devices/vsock/model.js';
import { OP, VsockDriver, pattern } from '../devices/vsock/testing.js';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, SHUT_WR, close, closeQuiet, connectUnix, listenUnix, poll, readSome, setNonBlocking, shutdown, writeSome } from '../sys/index.js';
import { unixStreamOps } from './unix-streams.js';

/** One turn of a poll loop over what the device watches, with its interest; returns callbacks made. */
function pumpReal(h: DeviceHarness): number {
  const fds = [...new Set(h.reactor.watchedFds())];
  const entries = fds.map((fd) => {
    const i = h.reactor.interest(fd);
    return { fd, events: (i?.readable === true ? POLLIN : 0) | (i?.writable === true ? POLLOUT : 0) };
  });
  if (entries.length === 0) return 0;
  const revents = poll(entries, 0);
  let n = 0;
  fds.forEach((fd, i) => {
    const ev = revents[i] ?? 0;
    if (ev !== 0) n += h.reactor.fire(fd, { readable: (ev & POLLIN) !== 0, writable: (ev & POLLOUT) !== 0, hangup: (ev & (POLLHUP | POLLERR)) !== 0 });
  });
  return n;
}

test('vsock over real sockets: CONNECT/OK handshake, 512 KiB each way with full socket buffers, clean close', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-vsock-'));
  const uds = join(dir, 'v.vsock');
  const opened: number[] = [];
  t.after(() => {
    for (const fd of opened) closeQuiet(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const dev = new VsockDevice({ guestCid: 3, udsPath: uds, host: unixStreamOps });
  const h = new DeviceHarness(dev, { memorySize: 32 << 20, queueSize: 128 });
  const d = new VsockDriver(h, 3, { rxBuffers: 64 });
  const client = connectUnix(uds);
  opened.push(client);
  setNonBlocking(client, true);
  assert.equal(writeSome(client, new TextEncoder().encode('CONNECT 1234\n')), 13);
  for (let i = 0; i < 10 && pumpReal(h) > 0; i++);
  const [req] = d.recv();
  assert.equal(req?.hdr.op, OP.REQUEST);
  const hostPort = req?.hdr.src_port ?? 0;
  d.send(d.hdr({ op: OP.RESPONSE, src_port: 1234, dst_port: hostPort, buf_alloc: 262144 }));

  const size = 512 * 1024;
  const up = pattern(size, 11); // host → guest
  const down = pattern(size, 12); // guest → host
  let sentUp = 0;
  let sentDown = 0;
  let guestFwd = 0;
  const atGuest: Uint8Array[] = [];
  const atHost: Uint8Array[] = [];
  let hostGot = 0;
  let eof = false;
  const buf = new Uint8Array(65536);
  for (let round = 0; round < 100_000 && !(eof && guestFwd === size); round++) {
    if (sentUp < size) {
      const n = writeSome(client, up.subarray(sentUp, Math.min(size, sentUp + 65536)));
      if (n !== null) sentUp += n;
      if (sentUp === size) shutdown(client, SHUT_WR);
    }
    // The guest sends only within the device's credit (256 KiB window), like Linux.
    if (sentDown < size && sentDown - hostGot < 200_000) {
      const chunk = down.subarray(sentDown, Math.min(size, sentDown + 4096));
      d.send(d.hdr({ op: OP.RW, src_port: 1234, dst_port: hostPort, fwd_cnt: guestFwd }), chunk);
      sentDown += chunk.length;
      if (sentDown === size) d.send(d.hdr({ op: OP.SHUTDOWN, src_port: 1234, dst_port: hostPort, flags: 2, fwd_cnt: guestFwd }));
    }
    pumpReal(h);
    for (const p of d.recv()) {
      if (p.hdr.op === OP.RW) {
        atGuest.push(p.data);
        guestFwd += p.data.length;
        d.send(d.hdr({ op: OP.CREDIT_UPDATE, src_port: 1234, dst_port: hostPort, fwd_cnt: guestFwd }));
      }
    }
    for (;;) {
      const n = readSome(client, buf);
      if (n === null) break;
      if (n === 0) {
        eof = true;
        break;
      }
      if (hostGot === 0 && atHost.length === 0) {
        // The first bytes are the OK line.
        const text = new TextDecoder().decode(buf.subarray(0, n));
        const nl = text.indexOf('\n');
        assert.equal(text.slice(0, nl), `OK ${hostPort}`);
        atHost.push(buf.slice(nl + 1, n));
        hostGot += n - nl - 1;
        continue;
      }
      atHost.push(buf.slice(0, n));
      hostGot += n;
    }
  }
  const digest = (parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest('hex');
  assert.equal(guestFwd, size, 'host → guest: every byte');
  assert.equal(digest(atGuest), digest([up]));
  assert.equal(hostGot, size, 'guest → host: every byte');
  assert.equal(digest(atHost), digest([down]));
  assert.equal(eof, true, 'the host saw the guest\'s SHUTDOWN(SEND) as end of stream');
  const m = dev.metrics();
  assert.deepEqual([m.bytes.guestToHost, m.bytes.hostToGuest], [size, size]);
  assert.ok(m.creditStalls >= 0);
  dev.dispose();
  assert.equal(existsSync(uds), false, 'dispose removed the socket file');
});

test('vsock over real sockets: a stale socket file at <uds> is replaced; a live one is refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-vsock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const uds = join(dir, 'v.vsock');
  close(listenUnix(uds)); // a crashed back-end leaves the file behind
  const dev = new VsockDevice({ guestCid: 3, udsPath: uds, host: unixStreamOps });
  assert.throws(() => new VsockDevice({ guestCid: 4, udsPath: uds, host: unixStreamOps }), { code: 'VSOCK_LISTEN_FAILED' });
  dev.dispose();
  assert.equal(existsSync(uds), false);
});
